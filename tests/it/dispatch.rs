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
