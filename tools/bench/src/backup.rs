//! Backup throughput: a backup of every backup-capable type of a generated tenant, through the
//! worker against graph-sim with Microsoft's documented throttling. Unlike an inventory sync
//! (one request per page), a backup reads every object (settings, definition values, script
//! content, assignments), so it is bound by the Graph budget: this is where the client's use
//! of the budget shows.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_graph::registry::{Budget, ObjectType};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::TestStack;

pub const BACKUP_OBJECTS: usize = 1_000;

pub async fn backup_throughput() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    // Objects in Intune types only (an ad-hoc backup also lists the empty Conditional Access
    // collections): Conditional Access allows one request per second per tenant, which would
    // measure that limit instead of the worker.
    let types: Vec<&ObjectType> = ObjectType::inventory()
        .filter(|t| t.backup && t.budget == Budget::Intune)
        .collect();
    let per_type = BACKUP_OBJECTS / types.len();
    let counts: Vec<(&str, usize)> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = if i == 0 {
                BACKUP_OBJECTS - per_type * (types.len() - 1)
            } else {
                per_type
            };
            (t.path, n)
        })
        .collect();
    let worker = stack.worker(&counts, RetryPolicy::default()).await;
    let run_id = stack
        .start(json!({ "type": "backup_schedule.run_now" }))
        .await;
    let wall = Instant::now();
    loop {
        worker.drain().await;
        let run = stack.run(&run_id).await;
        if !run.status.is_active() {
            break;
        }
        anyhow::ensure!(
            wall.elapsed() < Duration::from_secs(900),
            "the backup did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let run = stack.run(&run_id).await;
    let graph: Vec<_> = worker
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .collect();
    let intune = graph
        .iter()
        .filter(|r| {
            r.path.contains("/deviceManagement/") || r.path.contains("/deviceAppManagement/")
        })
        .count();
    let intune_budget_per_s = 1000.0 / 20.0;
    Ok(json!({
        "objects": run.counters.processed,
        "outcome": run.outcome.as_str(),
        "seconds": elapsed,
        "objects_per_second": run.counters.processed as f64 / elapsed,
        "graph_requests": graph.len(),
        "requests_per_second": graph.len() as f64 / elapsed,
        "intune_requests_per_second": intune as f64 / elapsed,
        "intune_budget_use": (intune as f64 / elapsed) / intune_budget_per_s,
        "throttled_429": graph.iter().filter(|r| r.status == 429).count(),
        "requests_inside_retry_after": worker.sim.requests_inside_retry_after().len(),
        "attempts": run.attempts,
    }))
}
