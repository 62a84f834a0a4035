//! The dedupe storm: many identical starts at once must create exactly one run.

use std::time::Instant;

use serde_json::{Value, json};
use tenantops_tests::{ApiCall, TestStack};

pub const STORM: usize = 1_000;

/// `STORM` concurrent `inventory.sync` starts for one tenant through the gateway: one 202,
/// the rest 200 with the same run; the wall time of the whole storm and the AWS calls it cost.
pub async fn dedupe_storm() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let owner = stack.users().owner.clone();
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let body = json!({ "type": "inventory.sync" }).to_string();
    stack.dynamodb_calls.take();
    stack.sqs_calls.take();

    let wall = Instant::now();
    let replies = futures::future::join_all(
        (0..STORM).map(|_| stack.call(ApiCall::post(path.clone(), body.clone()).by(&owner))),
    )
    .await;
    let elapsed = wall.elapsed();

    let created = replies.iter().filter(|r| r.status == 202).count();
    let deduplicated = replies.iter().filter(|r| r.status == 200).count();
    let mut run_ids: Vec<String> = replies
        .iter()
        .filter(|r| r.status == 200 || r.status == 202)
        .map(|r| r.run_id())
        .collect();
    run_ids.sort();
    run_ids.dedup();
    let runs_in_table = stack
        .store()
        .list_runs(&tenantops_aws::RunQuery {
            workspace: Some(stack.demo.workspace_id),
            tenant: Some(stack.demo.tenant_id),
            types: None,
            status: None,
            active: None,
            problem: None,
            limit: 100,
            after: None,
        })
        .await?
        .items
        .len();
    anyhow::ensure!(
        created == 1 && deduplicated == STORM - 1 && run_ids.len() == 1 && runs_in_table == 1,
        "storm broke dedupe: {created} created, {deduplicated} deduplicated, {} distinct ids, \
         {runs_in_table} runs stored",
        run_ids.len()
    );
    let dynamo = stack.dynamodb_calls.take();
    let sqs = stack.sqs_calls.take();
    Ok(json!({
        "starts": STORM,
        "created": created,
        "deduplicated": deduplicated,
        "distinct_runs": run_ids.len(),
        "runs_stored": runs_in_table,
        "wall_ms": elapsed.as_secs_f64() * 1000.0,
        "starts_per_second": STORM as f64 / elapsed.as_secs_f64(),
        "dynamodb_calls": dynamo.len(),
        "sqs_calls": sqs.len(),
    }))
}
