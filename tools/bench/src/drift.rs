//! A drift check of a 3,000-object tenant with 50 changed objects: the tenant generated over
//! the backup's Intune types (as the backup benchmarks spread it), backed up once as the
//! baseline, then 50 objects changed in graph-sim (one field each, spread over the types), then
//! one `drift.check` of every backup type driven to its end through the worker, against
//! graph-sim's default (Microsoft's documented) throttling.
//!
//! Measured for the check alone (graph-sim's log and the S3 call log are cleared after the
//! baseline): wall time, Graph requests (by type, list pages and object reads, and the audit
//! log), and S3 calls by operation. A changed object costs one S3 read (its baseline snapshot);
//! an unchanged one costs none, and no S3 write at all is expected from a check that fits one
//! invocation (a long diff would add one). The report's counts are checked, not assumed: 50
//! changed, nothing added or removed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_core::Run;
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::{TestStack, WorkerHarness};

pub const OBJECTS: usize = 3_000;
pub const CHANGED: usize = 50;
/// Given up after this long (each of the two runs).
const LIMIT: Duration = Duration::from_secs(900);

/// Starts `start` and drains the worker until the run finishes (hand-backs come back after
/// their Retry-After).
async fn run_to_end(
    stack: &TestStack,
    worker: &WorkerHarness,
    start: Value,
) -> anyhow::Result<(Run, f64)> {
    let run_id = stack.start(start).await;
    let wall = Instant::now();
    loop {
        worker.drain().await;
        if !stack.run(&run_id).await.status.is_active() {
            break;
        }
        anyhow::ensure!(wall.elapsed() < LIMIT, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((stack.run(&run_id).await, wall.elapsed().as_secs_f64()))
}

/// Changes one field of `CHANGED` objects, taken round-robin over the types with objects.
fn change_objects(worker: &WorkerHarness, paths: &[&str]) -> usize {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let mut changed = 0;
        let mut index = 0;
        while changed < CHANGED && index < OBJECTS {
            for path in paths {
                if changed == CHANGED {
                    break;
                }
                let Some(c) = t.collections.get_mut(*path) else {
                    continue;
                };
                if let Some(o) = c.objects.get_mut(index) {
                    o["description"] = json!(format!("changed by the drift bench {changed}"));
                    changed += 1;
                }
            }
            index += 1;
        }
        changed
    })
}

fn by_operation(calls: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.clone()).or_default() += 1;
    }
    out
}

pub async fn drift_3000() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let (types, empty) = crate::backup::backup_types();
    let counts = crate::graph_run::spread(&types, &empty, OBJECTS);
    let worker = stack.worker(&counts, RetryPolicy::default()).await;
    let (backup, backup_seconds) = run_to_end(
        &stack,
        &worker,
        json!({ "type": "backup_schedule.run_now" }),
    )
    .await?;
    anyhow::ensure!(
        backup.result.is_some(),
        "the baseline backup recorded no set: {:?}",
        backup.failures
    );
    let paths: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(p, _)| *p)
        .collect();
    let changed = change_objects(&worker, &paths);
    anyhow::ensure!(
        changed == CHANGED,
        "only {changed} objects could be changed"
    );

    worker.sim.clear_requests();
    stack.s3_calls.take();
    let (run, seconds) = run_to_end(&stack, &worker, json!({ "type": "drift.check" })).await?;
    let s3 = by_operation(&stack.s3_calls.take());
    let result = run.result.clone().unwrap_or(Value::Null);
    let number = |k: &str| result.get(k).and_then(Value::as_u64).unwrap_or(0);
    let objects = number("changed") + number("unchanged") + number("added");
    let requests = worker.sim.requests();
    let graph = crate::graph_log::cost(&requests, seconds, objects);
    let audit_log = requests
        .iter()
        .filter(|r| r.path.ends_with("/deviceManagement/auditEvents"))
        .count();
    let reads = s3.get("GetObject").copied().unwrap_or(0);
    let writes = s3.get("PutObject").copied().unwrap_or(0);
    Ok(json!({
        "objects_generated": OBJECTS,
        "objects_changed": CHANGED,
        "objects_compared": objects,
        "outcome": run.outcome.as_str(),
        "report": {
            "changed": number("changed"),
            "added": number("added"),
            "removed": number("removed"),
            "unchanged": number("unchanged"),
        },
        "counts_as_expected": number("changed") == CHANGED as u64
            && number("added") == 0
            && number("removed") == 0,
        "seconds": seconds,
        "objects_per_second": objects as f64 / seconds,
        "graph_requests": graph["requests"],
        "graph_requests_per_object": graph["requests_per_object"],
        "audit_log_requests": audit_log,
        "intune_budget_use": graph["intune_budget_use"],
        "throttled_429": graph["throttled_429"],
        "requests_inside_retry_after": graph["requests_inside_retry_after"],
        "urls_read_twice": graph["urls_read_twice"],
        "by_type": graph["by_type"],
        "s3_reads": reads,
        "s3_writes": writes,
        "s3_calls": s3,
        "attempts": run.attempts,
        "failed_objects": run.counters.failed,
        "failures": run.failures.iter().take(10).collect::<Vec<_>>(),
        "baseline_backup_seconds": backup_seconds,
    }))
}
