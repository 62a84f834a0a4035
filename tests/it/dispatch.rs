//! Dispatch: a committed run's first work message is the relay's to send, from the table's
//! stream. A start answers with its run whatever SQS does; a send that fails leaves the run
//! queued, and the relay's retry dispatches it once SQS answers again.

use serde_json::json;
use tenantops_aws::AuditQuery;
use tenantops_aws::starts::START_ACTION;
use tenantops_core::{Outcome, RunStatus};
use tenantops_tests::{ApiCall, TestStack};

#[tokio::test]
async fn a_run_whose_message_cannot_be_sent_waits_queued_and_is_worked_once_sqs_is_back() {
    let stack = TestStack::new().await;
    let missing = format!("{}-missing", stack.resources.queue_url);
    stack.relay_to(&missing).await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let body = json!({ "type": "directory_groups.sync" }).to_string();

    let started = stack
        .call(ApiCall::post(path.clone(), body.clone()).by(owner))
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.run_id();
    assert!(stack.try_settle().await.is_err(), "the send fails");
    assert_eq!(stack.queued_messages().await, 0);
    let run = stack.run(&id).await;
    assert_eq!(run.status, RunStatus::Queued);
    // The identity stays held: a second click is the same run, not a second one.
    let again = stack.call(ApiCall::post(path, body).by(owner)).await;
    assert_eq!((again.status, again.run_id()), (200, id.clone()));

    let worker = stack
        .worker(
            &[("groups", 3)],
            tenantops_graph::throttle::RetryPolicy::default(),
        )
        .await;
    stack.relay_to(&stack.resources.queue_url).await;
    assert_eq!(stack.settle().await, 1, "the retry relays the run");
    assert_eq!(worker.drain().await, 1);
    let done = stack.run(&id).await;
    assert_eq!((done.outcome, done.attempts), (Outcome::Succeeded, 1));
    // The retried batch wrote the start's audit entry again, not a second one.
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: Some(START_ACTION.into()),
            tenant: None,
            limit: 10,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
}
