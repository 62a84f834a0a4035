//! Starvation: one workspace bursts 500 run-now backups (one per tenant: run-now is deduped
//! per tenant and limited by the per-tenant quota, so a burst of distinct runs spans
//! tenants), then another workspace starts one inventory sync. The worker works the queue
//! from before the burst (as at a real 02:00, the mapping polls all along) on the strict host
//! with the deployed per-workspace limit (`starvation`), and without it
//! (`starvation_unlimited`: the limit lifted to the worker's whole concurrency, as before
//! fairness); `cargo xtask bench starvation` runs both, each on fresh emulators, and prints
//! the ratio. The other workspace's wait is the figure; a pass ends when its sync is done.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};
use tenantops_core::{Outcome, RunId};
use tenantops_graph::registry::ObjectType;
use tenantops_graph::throttle::RetryPolicy;
use tenantops_local::worker_host::WorkerHost;
use tenantops_tests::tenants::sim_serving;
use tenantops_tests::{ApiCall, TestStack};
use tenantops_worker::Fairness;

use crate::fleet;

/// Run-now starts in the burst, unless `TENANTOPS_BENCH_STARVATION_BURST` says otherwise.
const BURST: usize = 500;
/// Objects per tenant, spread over the Intune backup types.
const OBJECTS_PER_TENANT: usize = 15;
/// Graph's latency in this bench: Intune's list and item reads answer in roughly 100-300 ms,
/// so runs wait on Graph, not on the host's CPU. Without it, every run here is bound by the
/// two cores the emulators share, and the worker's slots, which the limit divides, are not
/// what runs wait for.
const GRAPH_LATENCY: Duration = Duration::from_millis(150);
/// Given up after this long (each pass).
const LIMIT: Duration = Duration::from_secs(30 * 60);

fn burst() -> usize {
    std::env::var("TENANTOPS_BENCH_STARVATION_BURST")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BURST)
}

/// The pass with the deployed per-workspace limit.
pub async fn starvation() -> anyhow::Result<Value> {
    pass(burst(), &WorkerHost::from_template()?, Fairness::default()).await
}

/// The pass with the limit lifted to the worker's whole concurrency (no fairness).
pub async fn starvation_unlimited() -> anyhow::Result<Value> {
    let host = WorkerHost::from_template()?;
    let fairness = Fairness {
        per_workspace: u32::try_from(host.limits.concurrency)?,
        ..Fairness::default()
    };
    pass(burst(), &host, fairness).await
}

/// One burst and the other workspace's start, worked to the end with `fairness`.
async fn pass(n: usize, host: &WorkerHost, fairness: Fairness) -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let (ws_a, owner_a) = (stack.demo.workspace_id, stack.users().owner.clone());
    let (ws_b, owner_b) = (
        stack.demo.other_workspace_id,
        stack.users().outsider.clone(),
    );
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws_a, &owner_a, n - 1).await);
    let b_tenant = stack
        .connect(ws_b, stack.demo.other_tenant_id, &owner_b)
        .await;
    // Run-now backs up every backup-capable type and the sync lists every inventory type:
    // all are present, the Intune ones with objects (Conditional Access allows one request a
    // second, which would measure that limit instead).
    let (types, empty) = crate::backup::backup_types();
    let mut counts = crate::graph_run::spread(&types, &empty, OBJECTS_PER_TENANT);
    for t in ObjectType::inventory() {
        if !counts.iter().any(|(path, _)| *path == t.path) {
            counts.push((t.path, 0));
        }
    }
    let mut all = tenants.clone();
    all.push(b_tenant.clone());
    let mut worker = stack
        .worker_with(sim_serving(&all, &counts), RetryPolicy::default())
        .await;
    worker.deps.fairness = fairness;
    worker.sim.set_delay(GRAPH_LATENCY);

    let run_now = json!({ "type": "backup_schedule.run_now" }).to_string();
    let create = async {
        let burst_at = Utc::now();
        let replies: Vec<_> = futures::stream::iter(&tenants)
            .map(|t| {
                stack
                    .call(ApiCall::post(stack.start_path(ws_a, t.id), run_now.clone()).by(&owner_a))
            })
            .buffered(16)
            .collect()
            .await;
        let mut ids: Vec<RunId> = Vec::with_capacity(n + 1);
        for r in &replies {
            anyhow::ensure!(
                r.status == 202,
                "a run-now answered {}: {}",
                r.status,
                r.body
            );
            ids.push(r.run_id().parse()?);
        }
        let sync = json!({ "type": "inventory.sync" }).to_string();
        let b_at = Utc::now();
        let b = stack
            .call(ApiCall::post(stack.start_path(ws_b, b_tenant.id), sync).by(&owner_b))
            .await;
        anyhow::ensure!(
            b.status == 202,
            "the other workspace's start answered {}",
            b.status
        );
        let b: RunId = b.run_id().parse()?;
        ids.push(b);
        Ok(fleet::Started {
            ids,
            until: vec![b],
            with: (burst_at, b_at),
        })
    };
    let ((burst_at, b_at), worked) =
        fleet::work_while(&stack, &worker, host, create, LIMIT).await?;
    let (b_run, a_runs) = worked
        .runs
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("no runs"))?;
    anyhow::ensure!(
        b_run.outcome == Outcome::Succeeded,
        "the other workspace's sync ended {:?}: {:?}",
        b_run.outcome,
        b_run.failures
    );
    let failed = a_runs
        .iter()
        .filter(|r| !r.status.is_active() && r.outcome != Outcome::Succeeded)
        .count();
    let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
    let b_started = b_run
        .started_at
        .ok_or_else(|| anyhow::anyhow!("the other workspace's run never started"))?;
    let b_done = b_run
        .completed_at
        .ok_or_else(|| anyhow::anyhow!("the other workspace's run never completed"))?;
    // What the burst got meanwhile: its runs started before the sync was, and done by the
    // time it was.
    let started_before = a_runs
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s <= b_started))
        .count();
    let done_by = a_runs
        .iter()
        .filter(|r| r.completed_at.is_some_and(|c| c <= b_done))
        .count();
    Ok(json!({
        "runs_in_burst": n,
        "objects_per_tenant": OBJECTS_PER_TENANT,
        "graph_latency_ms": GRAPH_LATENCY.as_millis(),
        "per_workspace": fairness.per_workspace,
        "other_workspace": {
            "wait_s": secs(b_started - b_at),
            "done_after_s": secs(b_done - b_at),
        },
        "burst": {
            "queued_in_s": secs(b_at - burst_at),
            "started_before_the_other": started_before,
            "done_when_the_other_was": done_by,
            "failed": failed,
            "queue_wait_of_started": fleet::queue_wait(a_runs, burst_at),
        },
        "seconds": worked.seconds,
        "worker": {
            "timeout_s": host.limits.timeout.as_secs(),
            "batch_size": host.limits.batch_size,
            "concurrency": host.limits.concurrency,
            "invocations": worked.invocations,
            "invocations_killed": worked.invocations_killed,
        },
        "reaper": fleet::reaper_json(&worked.reaper),
    }))
}
