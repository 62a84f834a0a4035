//! The isolation matrix: every route × {owner, readonly, outsider, no token} × {own ids,
//! the other workspace's ids}. Not a member: 404. Member without the capability: 403.

use serde_json::json;
use tenantops_core::UserId;
use tenantops_tests::{ApiCall, TestStack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Readonly,
    Outsider,
    Anonymous,
}

const EVERYONE: [Who; 4] = [Who::Owner, Who::Readonly, Who::Outsider, Who::Anonymous];

fn user(stack: &TestStack, who: Who) -> Option<&UserId> {
    let u = stack.users();
    match who {
        Who::Owner => Some(&u.owner),
        Who::Readonly => Some(&u.readonly),
        Who::Outsider => Some(&u.outsider),
        Who::Anonymous => None,
    }
}

async fn create(
    stack: &TestStack,
    by: &UserId,
    ws: impl std::fmt::Display,
    t: impl std::fmt::Display,
    ty: &str,
) -> String {
    let r = stack
        .call(ApiCall::post(stack.start_path(ws, t), json!({ "type": ty }).to_string()).by(by))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.run_id()
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_design_says() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let sync_run = create(
        &stack,
        &stack.users().owner,
        d.workspace_id,
        d.tenant_id,
        "inventory.sync",
    )
    .await;
    let verify_run = create(
        &stack,
        &stack.users().owner,
        d.workspace_id,
        d.tenant_id,
        "provider_connection.verify",
    )
    .await;
    let foreign_run = create(
        &stack,
        &stack.users().outsider,
        d.other_workspace_id,
        d.other_tenant_id,
        "inventory.sync",
    )
    .await;
    let missing_run = tenantops_core::RunId::new().to_string();
    let body = json!({ "type": "inventory.sync" }).to_string();

    // (label, call, expected status for owner, readonly, outsider, anonymous)
    let cases: Vec<(&str, ApiCall, [u16; 4])> = vec![
        (
            "start in own workspace",
            ApiCall::post(stack.start_path(d.workspace_id, d.tenant_id), body.clone()),
            [200, 403, 404, 401],
        ),
        (
            "start in other workspace",
            ApiCall::post(
                stack.start_path(d.other_workspace_id, d.other_tenant_id),
                body.clone(),
            ),
            [404, 404, 200, 401],
        ),
        (
            "start on other workspace's tenant via own workspace",
            ApiCall::post(
                stack.start_path(d.workspace_id, d.other_tenant_id),
                body.clone(),
            ),
            [404, 403, 404, 401],
        ),
        (
            "start on own tenant via other workspace",
            ApiCall::post(
                stack.start_path(d.other_workspace_id, d.tenant_id),
                body.clone(),
            ),
            [404, 404, 404, 401],
        ),
        (
            "view own sync run",
            ApiCall::get(format!("/v1/operations/{sync_run}")),
            [200, 403, 404, 401],
        ),
        (
            "view own verify run",
            ApiCall::get(format!("/v1/operations/{verify_run}")),
            [200, 200, 404, 401],
        ),
        (
            "view other workspace's run",
            ApiCall::get(format!("/v1/operations/{foreign_run}")),
            [404, 404, 200, 401],
        ),
        (
            "view missing run",
            ApiCall::get(format!("/v1/operations/{missing_run}")),
            [404, 404, 404, 401],
        ),
        (
            "list own workspace",
            ApiCall::get(format!("/v1/workspaces/{}/operations", d.workspace_id)),
            [200, 200, 404, 401],
        ),
        (
            "list other workspace",
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations",
                d.other_workspace_id
            )),
            [404, 404, 200, 401],
        ),
        (
            "list own workspace, other tenant",
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations?tenant={}",
                d.workspace_id, d.other_tenant_id
            )),
            [200, 200, 404, 401],
        ),
        (
            "list other workspace, own tenant",
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations?tenant={}",
                d.other_workspace_id, d.tenant_id
            )),
            [404, 404, 200, 401],
        ),
    ];

    let mut failures = Vec::new();
    for (label, call, expected) in &cases {
        for (who, want) in EVERYONE.iter().zip(expected) {
            let mut c = call.clone();
            c.user = user(&stack, *who);
            let got = stack.call(c).await;
            if got.status != *want {
                failures.push(format!(
                    "{label} as {who:?}: want {want}, got {} {}",
                    got.status, got.body
                ));
            }
            if got.status >= 400 && got.status != 401 {
                assert_eq!(
                    got.content_type, "application/problem+json",
                    "{label} as {who:?}"
                );
                assert!(!got.code().is_empty(), "{label} as {who:?} has a code");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "isolation matrix:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_foreign_run_and_a_missing_run_look_the_same_to_a_non_member() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let foreign = create(
        &stack,
        &stack.users().outsider,
        d.other_workspace_id,
        d.other_tenant_id,
        "inventory.sync",
    )
    .await;
    let owner = &stack.users().owner;
    let a = stack
        .call(ApiCall::get(format!("/v1/operations/{foreign}")).by(owner))
        .await;
    let b = stack
        .call(ApiCall::get(format!("/v1/operations/{}", tenantops_core::RunId::new())).by(owner))
        .await;
    assert_eq!((a.status, b.status), (404, 404));
    assert_eq!(a.body, b.body, "same status, same body");
    assert_eq!(a.code(), "run.not_found");
}

#[tokio::test]
async fn read_only_members_list_only_the_runs_they_may_view() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    create(&stack, owner, d.workspace_id, d.tenant_id, "inventory.sync").await;
    let verify = create(
        &stack,
        owner,
        d.workspace_id,
        d.tenant_id,
        "provider_connection.verify",
    )
    .await;
    create(
        &stack,
        owner,
        d.workspace_id,
        d.tenant_id,
        "backup_schedule.run_now",
    )
    .await;
    let list = stack
        .call(
            ApiCall::get(format!("/v1/workspaces/{}/operations", d.workspace_id))
                .by(&stack.users().readonly),
        )
        .await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![verify.as_str()]);
    let filtered = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations?type=inventory.sync",
                d.workspace_id
            ))
            .by(&stack.users().readonly),
        )
        .await;
    assert_eq!(filtered.status, 403);
    assert_eq!(filtered.code(), "auth.forbidden");
}
