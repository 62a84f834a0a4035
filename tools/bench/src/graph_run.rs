//! What the Graph-bound benchmarks share: a generated tenant with objects spread over some
//! types, one run driven to its end through the worker (hand-backs included), and what it
//! cost against Microsoft's documented Intune budget.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_graph::registry::ObjectType;
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::TestStack;

use crate::graph_log::INTUNE_BUDGET_PER_S;

/// `objects` spread evenly over `types` (the first takes the remainder), and the `empty`
/// types present with none: graph-sim's counts per collection path.
pub fn spread<'a>(
    types: &[&'a ObjectType],
    empty: &[&'a ObjectType],
    objects: usize,
) -> Vec<(&'a str, usize)> {
    let per_type = objects / types.len().max(1);
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = if i == 0 {
                objects - per_type * (types.len() - 1)
            } else {
                per_type
            };
            (t.path, n)
        })
        .chain(empty.iter().map(|t| (t.path, 0)))
        .collect()
}

/// Starts `start` on a tenant with `objects` spread over `types` (and the `empty` types
/// present but empty) and drives the run to its end.
pub async fn measure(
    types: &[&ObjectType],
    empty: &[&ObjectType],
    objects: usize,
    start: Value,
    limit: Duration,
) -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let counts = spread(types, empty, objects);
    let worker = stack.worker(&counts, RetryPolicy::default()).await;
    let run_id = stack.start(start).await;
    let wall = Instant::now();
    // Runs handed back come back after their Retry-After: keep draining until it finishes.
    loop {
        worker.drain().await;
        if !stack.run(&run_id).await.status.is_active() {
            break;
        }
        anyhow::ensure!(wall.elapsed() < limit, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let run = stack.run(&run_id).await;
    let requests = worker.sim.requests();
    let cost = crate::graph_log::cost(&requests, elapsed, run.counters.processed);
    let graph: Vec<_> = requests
        .into_iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .collect();
    let intune = graph
        .iter()
        .filter(|r| {
            r.path.contains("/deviceManagement/") || r.path.contains("/deviceAppManagement/")
        })
        .count();
    Ok(json!({
        "objects": run.counters.processed,
        "outcome": run.outcome.as_str(),
        "seconds": elapsed,
        "objects_per_second": run.counters.processed as f64 / elapsed,
        "graph_requests": graph.len(),
        "graph_requests_per_object": cost["requests_per_object"],
        "urls_read_twice": cost["urls_read_twice"],
        "by_type": cost["by_type"],
        "requests_per_second": graph.len() as f64 / elapsed,
        "intune_requests_per_second": intune as f64 / elapsed,
        "intune_budget_use": (intune as f64 / elapsed) / INTUNE_BUDGET_PER_S,
        "throttled_429": graph.iter().filter(|r| r.status == 429).count(),
        "requests_inside_retry_after": worker.sim.requests_inside_retry_after().len(),
        "attempts": run.attempts,
        // What went wrong, by code and type (no payloads: failures are sanitized).
        "failures": run.failures.iter().take(10).collect::<Vec<_>>(),
        "failed_objects": run.counters.failed,
    }))
}
