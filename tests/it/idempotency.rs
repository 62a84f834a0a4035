//! Unique-per-click starts and the `Idempotency-Key` header.

use serde_json::json;
use tenantops_core::Outcome;
use tenantops_tests::{ApiCall, TestStack};

fn run_now() -> String {
    json!({ "type": "backup_schedule.run_now" }).to_string()
}

#[tokio::test]
async fn run_now_twice_without_a_key_creates_two_runs() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let a = stack
        .call(ApiCall::post(path.clone(), run_now()).by(owner))
        .await;
    let b = stack.call(ApiCall::post(path, run_now()).by(owner)).await;
    assert_eq!((a.status, b.status), (202, 202));
    assert_ne!(a.run_id(), b.run_id());
}

#[tokio::test]
async fn replaying_an_idempotency_key_returns_the_same_run_even_after_it_finished() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let call = || {
        ApiCall::post(path.clone(), run_now())
            .by(owner)
            .header("idempotency-key", "click-42")
    };
    let first = stack.call(call()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let replay = stack.call(call()).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body["deduplicated"], true);
    assert_eq!(replay.run_id(), first.run_id());

    stack.finish(&first.run_id(), Outcome::Succeeded).await;
    let after = stack.call(call()).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.run_id(), first.run_id());
    assert_eq!(after.body["run"]["outcome"], "succeeded");
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_refused_and_changes_nothing() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let first = stack
        .call(
            ApiCall::post(path.clone(), run_now())
                .by(owner)
                .header("idempotency-key", "k1"),
        )
        .await;
    assert_eq!(first.status, 202);
    // A different, valid request: a backup of a schedule's scope instead of every type.
    let schedule = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/backup-schedules",
                    stack.demo.workspace_id, stack.demo.tenant_id
                ),
                json!({
                    "name": "Nightly",
                    "cadence": {"kind": "daily", "at": "02:30"},
                    "timezone": "Europe/Berlin",
                    "retention": {"keep_last": 7},
                })
                .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(schedule.status, 201, "{}", schedule.body);
    let before = stack.snapshot().await;
    let other_body = json!({
        "type": "backup_schedule.run_now",
        "params": { "backup_schedule_id": schedule.body["schedule"]["id"] }
    })
    .to_string();
    let reused = stack
        .call(
            ApiCall::post(path, other_body)
                .by(owner)
                .header("idempotency-key", "k1"),
        )
        .await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.code(), "idempotency_key.reused");
    assert_eq!(stack.snapshot().await, before);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let a = stack
        .call(
            ApiCall::post(path.clone(), run_now())
                .by(&stack.users().owner)
                .header("idempotency-key", "same"),
        )
        .await;
    let b = stack
        .call(
            ApiCall::post(path, run_now())
                .by(&stack.users().operator)
                .header("idempotency-key", "same"),
        )
        .await;
    assert_eq!((a.status, b.status), (202, 202));
    assert_ne!(a.run_id(), b.run_id());
}

#[tokio::test]
async fn concurrent_replays_of_one_key_create_one_run() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let replies = futures::future::join_all((0..16).map(|_| {
        stack.call(
            ApiCall::post(path.clone(), run_now())
                .by(owner)
                .header("idempotency-key", "burst"),
        )
    }))
    .await;
    assert_eq!(replies.iter().filter(|r| r.status == 202).count(), 1);
    let ids: std::collections::HashSet<_> = replies.iter().map(|r| r.run_id()).collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_key_that_is_not_visible_ascii_is_refused_not_ignored() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    for key in ["ключ", "café", "ключ"] {
        let reply = stack
            .call(
                ApiCall::post(path.clone(), run_now())
                    .by(owner)
                    .header("idempotency-key", key),
            )
            .await;
        assert_eq!(reply.status, 400, "{key}: {}", reply.body);
        assert_eq!(reply.code(), "idempotency_key.invalid");
    }
    let runs = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations",
                stack.demo.workspace_id
            ))
            .by(owner),
        )
        .await;
    assert_eq!(runs.status, 200);
    assert_eq!(
        runs.body["items"].as_array().map(Vec::len),
        Some(0),
        "no run started"
    );
}
