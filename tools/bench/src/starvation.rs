//! Starvation: one workspace bursts 500 run-now backups (one per tenant: run-now is deduped
//! per tenant and limited by the per-tenant quota, so a burst of distinct runs spans
//! tenants), then another workspace starts one inventory sync. Worked on the strict worker
//! host with the deployed per-workspace limit, and again on a fresh stack with the limit
//! lifted to the worker's whole concurrency (as before fairness), in the same invocation on
//! the same emulators; the second workspace's wait is the figure, and the ratio between the
//! two is printed.

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
/// Given up after this long (each of the two passes).
const LIMIT: Duration = Duration::from_secs(30 * 60);

fn burst() -> usize {
    std::env::var("TENANTOPS_BENCH_STARVATION_BURST")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BURST)
}

pub async fn starvation() -> anyhow::Result<Value> {
    let n = burst();
    let host = WorkerHost::from_template()?;
    // Without the limit first: DynamoDB Local slows as tables accumulate, so the pass that
    // matters runs on the slower emulator.
    let unlimited = pass(
        n,
        &host,
        Fairness {
            per_workspace: u32::try_from(host.limits.concurrency)?,
            ..Fairness::default()
        },
    )
    .await?;
    let limited = pass(n, &host, Fairness::default()).await?;
    let wait = |v: &Value| v["other_workspace"]["wait_s"].as_f64().unwrap_or(0.0);
    let ratio = wait(&unlimited) / wait(&limited).max(0.001);
    eprintln!(
        "tenantops-bench: starvation: the other workspace waited {:.1} s with the \
         per-workspace limit, {:.1} s without it ({ratio:.1}x)",
        wait(&limited),
        wait(&unlimited)
    );
    Ok(json!({
        "burst": n,
        "objects_per_tenant": OBJECTS_PER_TENANT,
        "with_workspace_limit": limited,
        "without_workspace_limit": unlimited,
        "other_workspace_wait_ratio": ratio,
    }))
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

    let run_now = json!({ "type": "backup_schedule.run_now" }).to_string();
    let burst_at = Utc::now();
    let replies: Vec<_> = futures::stream::iter(&tenants)
        .map(|t| {
            stack.call(ApiCall::post(stack.start_path(ws_a, t.id), run_now.clone()).by(&owner_a))
        })
        .buffered(16)
        .collect()
        .await;
    let mut burst: Vec<RunId> = Vec::with_capacity(n);
    for r in &replies {
        anyhow::ensure!(
            r.status == 202,
            "a run-now answered {}: {}",
            r.status,
            r.body
        );
        burst.push(r.run_id().parse()?);
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

    let mut ids = burst.clone();
    ids.push(b);
    let worked = fleet::work(&stack, &worker, host, &ids, LIMIT).await?;
    let (b_run, a_runs) = worked
        .runs
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("no runs"))?;
    let succeeded = worked
        .runs
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded)
        .count();
    anyhow::ensure!(
        succeeded == n + 1,
        "{succeeded} of {} runs succeeded; e.g. {:?}",
        n + 1,
        worked
            .runs
            .iter()
            .find(|r| r.outcome != Outcome::Succeeded)
            .map(|r| (r.outcome, &r.failures))
    );
    let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
    let b_started = b_run
        .started_at
        .ok_or_else(|| anyhow::anyhow!("the other workspace's run never started"))?;
    let a_last = a_runs.iter().filter_map(|r| r.completed_at).max();
    Ok(json!({
        "per_workspace": fairness.per_workspace,
        "other_workspace": {
            "wait_s": secs(b_started - b_at),
            "done_after_s": b_run.completed_at.map(|c| secs(c - b_at)),
        },
        "burst": {
            "queue_wait": fleet::queue_wait(a_runs, burst_at),
            "all_done_after_s": a_last.map(|c| secs(c - burst_at)),
        },
        "seconds": worked.seconds,
        "worker_invocations": worked.invocations,
        "reaper": fleet::reaper_json(&worked.reaper),
    }))
}
