//! A backup of a large tenant (20,000 objects unless `TENANTOPS_BENCH_LARGE_BACKUP_OBJECTS`
//! says otherwise; about 11 minutes on the 2-core bench machine) run as Lambda runs it: on the strict worker host with the template's real
//! timeout (120 s), batch size and concurrency, so the run crosses many invocations, each
//! checkpointing at the margin and continuing in a new message. Against graph-sim with its
//! default (Microsoft's documented) throttling.
//!
//! Completeness is checked, not assumed: the set's manifest must name every generated object
//! exactly once, and graph-sim's log must show no GET served twice (no page or object read
//! again by a continuation).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_core::BackupSetId;
use tenantops_core::backup::ManifestEntry;
use tenantops_graph::throttle::RetryPolicy;
use tenantops_local::worker_host::WorkerHost;
use tenantops_tests::TestStack;

/// The tenant's size when the environment does not say.
pub const OBJECTS: usize = 20_000;
/// Overrides [`OBJECTS`] (e.g. to measure the largest size that fits a bench run).
pub const OBJECTS_ENV: &str = "TENANTOPS_BENCH_LARGE_BACKUP_OBJECTS";
/// Given up after this long (a bench run, not a soak test).
const LIMIT: Duration = Duration::from_secs(30 * 60);

pub fn objects() -> usize {
    std::env::var(OBJECTS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(OBJECTS)
}

pub async fn large_backup(objects: usize) -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let (types, empty) = crate::backup::backup_types();
    let counts = crate::graph_run::spread(&types, &empty, objects);
    let worker = stack.worker(&counts, RetryPolicy::default()).await;
    let host = WorkerHost::from_template()?;
    let run_id = stack
        .start(json!({ "type": "backup_schedule.run_now" }))
        .await;
    let wall = Instant::now();
    let (mut invocations, mut killed) = (0usize, 0usize);
    loop {
        let drained = worker.drain_on(&host).await;
        invocations += drained.invocations;
        killed += drained.timed_out;
        if !stack.run(&run_id).await.status.is_active() {
            break;
        }
        anyhow::ensure!(
            wall.elapsed() < LIMIT,
            "the run did not finish within {LIMIT:?}"
        );
        // A hand-back (throttle) makes its message visible again later.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = wall.elapsed().as_secs_f64();
    let run = stack.run(&run_id).await;
    let set: BackupSetId = run
        .result
        .as_ref()
        .and_then(|r| r.get("backup_set_id"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the run recorded no backup set: {:?}", run.result))?;
    let key = tenantops_aws::snapshots::manifest_key(run.workspace_id, run.tenant_id, set);
    let manifest = stack
        .snapshots
        .get(&key)
        .await
        .map_err(|e| anyhow::anyhow!("reading the manifest: {e}"))?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&manifest)?;
    let distinct: HashSet<(&str, &str)> = entries
        .iter()
        .map(|e| (e.object_type.as_str(), e.object_id.as_str()))
        .collect();
    let requests = worker.sim.requests();
    let graph = crate::graph_log::cost(&requests, seconds, distinct.len() as u64);
    Ok(json!({
        "objects_generated": objects,
        "manifest_entries": entries.len(),
        "distinct_objects": distinct.len(),
        "complete": entries.len() == objects && distinct.len() == objects,
        "outcome": run.outcome.as_str(),
        "failed_objects": run.counters.failed,
        "seconds": seconds,
        "objects_per_second": distinct.len() as f64 / seconds,
        "timeout_s": host.limits.timeout.as_secs(),
        "batch_size": host.limits.batch_size,
        "concurrency": host.limits.concurrency,
        "invocations": invocations,
        "invocations_killed": killed,
        "claims": run.attempts,
        "graph": graph,
    }))
}
