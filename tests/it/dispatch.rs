//! Dispatch failure: the run exists, the message does not; the run must not stay queued.

use serde_json::json;
use tenantops_tests::{ApiCall, TestStack};

#[tokio::test]
async fn a_failed_send_fails_the_run_releases_its_lock_and_names_it() {
    let stack = TestStack::new().await;
    let missing_queue = format!("{}-missing", stack.resources.queue_url);
    let broken = stack.with_queue_url(&missing_queue);
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let body = json!({ "type": "directory_groups.sync" }).to_string();

    let failed = stack
        .call_with(&broken, ApiCall::post(path.clone(), body.clone()).by(owner))
        .await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert_eq!(failed.code(), "dispatch.failed");
    let run_id = failed.body["run_id"]
        .as_str()
        .expect("the problem names the run")
        .to_owned();
    assert_eq!(failed.body["run_url"], format!("/v1/operations/{run_id}"));

    let view = stack
        .call(ApiCall::get(format!("/v1/operations/{run_id}")).by(owner))
        .await;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["run"]["status"], "completed");
    assert_eq!(view.body["run"]["outcome"], "failed");
    assert_eq!(view.body["run"]["failures"][0]["code"], "dispatch.failed");

    let retry = stack.call(ApiCall::post(path, body).by(owner)).await;
    assert_eq!(
        retry.status, 202,
        "the identity is free again: {}",
        retry.body
    );
    assert_ne!(retry.run_id(), run_id);
    assert_eq!(stack.queued_messages().await, 1);
}

/// A send that SQS reported failed may still have been delivered: a worker that claimed the
/// run keeps it, and only a run nobody claimed is failed `dispatch.failed`.
#[tokio::test]
async fn a_send_reported_failed_but_delivered_does_not_fail_the_run_a_worker_claimed() {
    let stack = TestStack::new().await;
    let store = stack.store();
    let claimed_id: tenantops_core::RunId = stack
        .start(json!({ "type": "inventory.sync" }))
        .await
        .parse()
        .unwrap();
    let unclaimed_id: tenantops_core::RunId = stack
        .start(json!({ "type": "directory_groups.sync" }))
        .await
        .parse()
        .unwrap();
    // What the start path held when the send "failed": the runs as created.
    let as_created = store.get_run(claimed_id).await.unwrap().unwrap();
    let unclaimed = store.get_run(unclaimed_id).await.unwrap().unwrap();
    // The message arrived after all, and a worker claimed the first run.
    let claim = tenantops_core::Transition::Claim {
        now: chrono::Utc::now(),
        lease: chrono::TimeDelta::minutes(5),
    };
    store
        .claim_dispatched(&as_created, "worker-1", &claim, 0)
        .await
        .unwrap();

    let now = chrono::Utc::now();
    assert!(!store.fail_undispatched(&as_created, now).await.unwrap());
    let kept = store.get_run(claimed_id).await.unwrap().unwrap();
    assert_eq!(kept.status, tenantops_core::RunStatus::Running);
    assert!(kept.failures.is_empty());

    assert!(store.fail_undispatched(&unclaimed, now).await.unwrap());
    let failed = store.get_run(unclaimed_id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.failures[0].code.as_str()),
        (tenantops_core::RunStatus::Completed, "dispatch.failed")
    );
}
