//! Cooperative cancel: `POST /v1/operations/{run}/cancel` on queued, cancelled, completed and
//! foreign runs.

use serde_json::json;
use tenantops_aws::AuditQuery;
use tenantops_core::{Outcome, RunId, RunStatus};
use tenantops_tests::{ApiCall, Reply, TestStack};

fn sync() -> serde_json::Value {
    json!({ "type": "inventory.sync" })
}

async fn cancel(stack: &TestStack, run: &str, user: &tenantops_core::UserId) -> Reply {
    stack
        .call(ApiCall::post(format!("/v1/operations/{run}/cancel"), "").by(user))
        .await
}

async fn cancelled_entries(stack: &TestStack) -> usize {
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: Some("operation.cancelled".to_owned()),
            tenant: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    entries.len()
}

#[tokio::test]
async fn a_queued_run_is_cancelled_at_once_and_frees_its_identity() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;

    let r = cancel(&stack, &run, owner).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.run_id(), run);
    assert_eq!(r.body["run"]["status"], "completed");
    assert_eq!(r.body["run"]["outcome"], "cancelled");
    assert_eq!(r.body["links"]["view"], format!("/v1/operations/{run}"));
    let stored = stack.run(&run).await;
    assert_eq!(
        (stored.status, stored.outcome),
        (RunStatus::Completed, Outcome::Cancelled)
    );
    assert!(stored.completed_at.is_some());
    assert_eq!(cancelled_entries(&stack).await, 1);

    // The identity is free: the same start is a new run.
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let again = stack
        .call(ApiCall::post(path, sync().to_string()).by(owner))
        .await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_ne!(again.run_id(), run);
}

#[tokio::test]
async fn cancelling_twice_answers_the_run_and_audits_once() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;
    let first = cancel(&stack, &run, owner).await;
    let second = cancel(&stack, &run, owner).await;
    assert_eq!((first.status, second.status), (200, 200), "{}", second.body);
    assert_eq!(second.body["run"], first.body["run"]);
    assert_eq!(cancelled_entries(&stack).await, 1);
}

#[tokio::test]
async fn foreign_and_unknown_runs_are_not_found_like_the_viewer() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let run = stack.start(sync()).await;
    let unknown = RunId::new().to_string();
    for (id, user) in [
        (run.as_str(), &users.outsider),
        (unknown.as_str(), &users.owner),
        ("not-a-run-id", &users.owner),
    ] {
        let r = cancel(&stack, id, user).await;
        let viewed = stack
            .call(ApiCall::get(format!("/v1/operations/{id}")).by(user))
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.code(), "run.not_found");
        assert_eq!(r.body["detail"], viewed.body["detail"]);
        assert_eq!(viewed.status, 404);
    }
    assert_eq!(stack.run(&run).await.status, RunStatus::Queued);
    assert_eq!(cancelled_entries(&stack).await, 0);
}

#[tokio::test]
async fn readonly_is_forbidden_naming_the_start_capability() {
    let stack = TestStack::new().await;
    let run = stack.start(sync()).await;
    let r = cancel(&stack, &run, &stack.users().readonly).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.code(), "auth.forbidden");
    let needed = tenantops_core::OperationType::InventorySync
        .spec()
        .start_capability
        .to_string();
    assert!(
        r.body["detail"].as_str().unwrap().contains(&needed),
        "{}",
        r.body
    );
    assert_eq!(stack.run(&run).await.status, RunStatus::Queued);
    assert_eq!(cancelled_entries(&stack).await, 0);
}

#[tokio::test]
async fn a_run_completed_otherwise_is_a_conflict() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;
    stack.finish(&run, Outcome::Succeeded).await;
    let r = cancel(&stack, &run, owner).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "run.already_completed");
    assert_eq!(stack.run(&run).await.outcome, Outcome::Succeeded);
    assert_eq!(cancelled_entries(&stack).await, 0);
}
