//! Starting runs: while-active dedupe at the database, and what a start costs.

use futures::future::join_all;
use serde_json::json;
use tenantops_core::{Outcome, Transition};
use tenantops_tests::{ApiCall, TestStack};

fn inventory() -> String {
    json!({ "type": "inventory.sync" }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_simultaneous_starts_create_exactly_one_run() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let replies = join_all((0..64).map(|_| {
        let call = ApiCall::post(path.clone(), inventory()).by(owner);
        stack.call(call)
    }))
    .await;

    let created: Vec<_> = replies.iter().filter(|r| r.status == 202).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one 202: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let id = created[0].run_id();
    for r in &replies {
        assert!(
            r.status == 202 || r.status == 200,
            "unexpected {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.run_id(), id, "every caller gets the one run");
        assert_eq!(r.body["deduplicated"], json!(r.status == 200));
    }
    let runs = stack
        .snapshot()
        .await
        .into_keys()
        .filter(|(pk, _)| pk.starts_with("RUN#"))
        .count();
    assert_eq!(runs, 1, "one run item in the table");
    assert_eq!(stack.queued_messages().await, 1, "one message dispatched");
}

#[tokio::test]
async fn second_start_while_active_returns_the_same_run() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let first = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["run"]["status"], "queued");
    assert_eq!(
        first.body["links"]["view"],
        format!("/v1/operations/{}", first.run_id())
    );
    let second = stack.call(ApiCall::post(path, inventory()).by(owner)).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body["deduplicated"], true);
    assert_eq!(second.run_id(), first.run_id());
}

#[tokio::test]
async fn a_dedupe_hit_reports_the_runs_current_state() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let first = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    let run = stack
        .store()
        .get_run(first.run_id().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now();
    stack
        .store()
        .transition(
            &run,
            &Transition::Claim {
                now,
                lease: chrono::Duration::minutes(5),
            },
        )
        .await
        .unwrap();
    let delta = tenantops_core::Counters {
        total: 10,
        processed: 4,
        succeeded: 4,
        ..Default::default()
    };
    stack
        .store()
        .transition(&run, &Transition::Progress { delta })
        .await
        .unwrap();

    let again = stack.call(ApiCall::post(path, inventory()).by(owner)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["run"]["status"], "running");
    assert_eq!(again.body["run"]["attempts"], 1);
    assert_eq!(again.body["run"]["counters"]["processed"], 4);
    assert_eq!(again.body["run"]["counters"]["total"], 10);
}

#[tokio::test]
async fn a_finished_run_frees_its_identity_for_a_new_run() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let first = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    stack.finish(&first.run_id(), Outcome::Succeeded).await;
    let second = stack.call(ApiCall::post(path, inventory()).by(owner)).await;
    assert_eq!(second.status, 202);
    assert_ne!(second.run_id(), first.run_id());
}

/// A start of an identity that may be held reads first: a dedupe hit is that one read, a new
/// start the read and the transaction. A start whose identity is new by construction (a click
/// without `Idempotency-Key`) is the transaction alone. The API sends nothing: the relay does.
#[tokio::test]
async fn a_new_start_costs_at_most_two_calls_and_a_dedupe_hit_one_read() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;

    let new = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    assert_eq!(new.status, 202);
    assert_eq!(
        stack.dynamodb_calls.take(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    assert!(stack.sqs_calls.take().is_empty());

    let hit = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    assert_eq!((hit.status, hit.run_id()), (200, new.run_id()));
    assert_eq!(stack.dynamodb_calls.take(), vec!["BatchGetItem"]);
    assert!(stack.sqs_calls.take().is_empty());

    let schedule = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/backup-schedules",
                    stack.demo.workspace_id, stack.demo.tenant_id
                ),
                json!({"name": "Nightly", "cadence": {"kind": "daily", "at": "02:30"}, "retention": {"keep_last": 3}})
                    .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(schedule.status, 201, "{}", schedule.body);
    stack.dynamodb_calls.take();
    let run_now = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules/{}/run-now",
        stack.demo.workspace_id,
        stack.demo.tenant_id,
        schedule.body["schedule"]["id"].as_str().unwrap()
    );
    let fresh = stack.call(ApiCall::post(run_now, "{}").by(owner)).await;
    assert_eq!(fresh.status, 202, "{}", fresh.body);
    // The route reads its schedule first; the start itself is the transaction alone.
    let calls = stack.dynamodb_calls.take();
    assert_eq!(calls.last().map(String::as_str), Some("TransactWriteItems"));
    assert!(!calls.iter().any(|c| c == "BatchGetItem"), "{calls:?}");
    assert!(stack.sqs_calls.take().is_empty());
}

/// What the read answers, the transaction would have answered: a caller who may not see the
/// run is refused as before, never handed it from the read.
#[tokio::test]
async fn the_dedupe_read_answers_only_a_member_with_the_capability() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let users = stack.users();
    let held = stack
        .call(ApiCall::post(path.clone(), inventory()).by(&users.owner))
        .await;
    assert_eq!(held.status, 202);
    for (who, status) in [(&users.readonly, 403), (&users.outsider, 404)] {
        let r = stack
            .call(ApiCall::post(path.clone(), inventory()).by(who))
            .await;
        assert_eq!(r.status, status, "{who}: {}", r.body);
        assert!(r.body.get("run").is_none());
    }
    let other = stack.start_path(stack.demo.other_workspace_id, stack.demo.tenant_id);
    let r = stack
        .call(ApiCall::post(other, inventory()).by(&users.outsider))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let operator = stack
        .call(ApiCall::post(path, inventory()).by(&users.operator))
        .await;
    assert_eq!((operator.status, operator.run_id()), (200, held.run_id()));
}

#[tokio::test]
async fn every_start_writes_an_audit_entry() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let started = stack
        .call(ApiCall::post(path, inventory()).by(&stack.users().operator))
        .await;
    assert_eq!(started.status, 202);
    // It follows from the table's stream (the relay).
    stack.settle().await;
    let audit: Vec<String> = stack
        .snapshot()
        .await
        .into_iter()
        .filter(|((pk, _), _)| pk == &format!("WS#{}#AUDIT", stack.demo.workspace_id))
        .map(|(_, item)| item)
        .filter(|item| item.contains("operation.start"))
        .collect();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].contains(&started.run_id()));
    assert!(audit[0].contains(stack.users().operator.as_str()));
}
