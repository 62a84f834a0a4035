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

#[tokio::test]
async fn a_new_start_costs_one_transaction_and_one_send_and_a_dedupe_hit_one_call() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;

    let new = stack
        .call(ApiCall::post(path.clone(), inventory()).by(owner))
        .await;
    assert_eq!(new.status, 202);
    assert_eq!(stack.dynamodb_calls.take(), vec!["TransactWriteItems"]);
    assert_eq!(stack.sqs_calls.take(), vec!["SendMessage"]);

    let hit = stack.call(ApiCall::post(path, inventory()).by(owner)).await;
    assert_eq!(hit.status, 200);
    assert_eq!(stack.dynamodb_calls.take(), vec!["TransactWriteItems"]);
    assert!(stack.sqs_calls.take().is_empty());
}

#[tokio::test]
async fn every_start_writes_an_audit_entry() {
    let stack = TestStack::new().await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let started = stack
        .call(ApiCall::post(path, inventory()).by(&stack.users().operator))
        .await;
    assert_eq!(started.status, 202);
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
