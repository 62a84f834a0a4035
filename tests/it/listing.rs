//! Listing runs: newest first, filters, cursor pagination.

use serde_json::json;
use tenantops_core::Outcome;
use tenantops_tests::{ApiCall, TestStack};

#[tokio::test]
async fn pages_walk_every_run_newest_first_with_filters() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let path = stack.start_path(d.workspace_id, d.tenant_id);
    let mut created = Vec::new();
    for _ in 0..5 {
        let r = stack
            .call(
                ApiCall::post(
                    path.clone(),
                    json!({"type": "backup_schedule.run_now"}).to_string(),
                )
                .by(owner),
            )
            .await;
        assert_eq!(r.status, 202);
        created.push(r.run_id());
    }
    let sync = stack
        .call(ApiCall::post(path.clone(), json!({"type": "inventory.sync"}).to_string()).by(owner))
        .await;
    created.push(sync.run_id());
    // One foreign run that must never show up.
    stack
        .call(
            ApiCall::post(
                stack.start_path(d.other_workspace_id, d.other_tenant_id),
                json!({"type": "inventory.sync"}).to_string(),
            )
            .by(&stack.users().outsider),
        )
        .await;

    let list = format!("/v1/workspaces/{}/operations", d.workspace_id);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("{list}?limit=2&cursor={c}"),
            None => format!("{list}?limit=2"),
        };
        let page = stack.call(ApiCall::get(q).by(owner)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination must end");
    }
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let only = |q: &str| stack.call(ApiCall::get(format!("{list}?{q}")).by(owner));
    let by_type = only("type=inventory.sync").await;
    assert_eq!(by_type.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_type.body["items"][0]["id"], sync.run_id());

    stack.finish(&sync.run_id(), Outcome::Succeeded).await;
    let done = only("status=completed").await;
    assert_eq!(done.body["items"].as_array().unwrap().len(), 1);
    let active = only("active=true&limit=100").await;
    assert_eq!(active.body["items"].as_array().unwrap().len(), 5);
    let inactive = only("active=false").await;
    assert_eq!(inactive.body["items"][0]["id"], sync.run_id());
    let tenant = only(&format!("tenant={}", d.tenant_id)).await;
    assert_eq!(tenant.body["items"].as_array().unwrap().len(), 6);
    let foreign_tenant = only(&format!("tenant={}", d.other_tenant_id)).await;
    assert_eq!(foreign_tenant.status, 200);
    assert!(foreign_tenant.body["items"].as_array().unwrap().is_empty());
}
