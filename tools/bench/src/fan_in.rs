//! The 02:00 fan-in: 300 tenants' nightly backups due at the same minute (the bench's current
//! minute, so the reaper judges the runs by real time), fired by one scheduler tick and
//! worked on the strict worker host (the template's timeout, batch size and reserved
//! concurrency of 10, and the deployed per-workspace limit: an MSP's tenants share one
//! workspace). The reaper ticks beside it with a dispatch deadline far shorter than the
//! backlog. Every run must complete, none `run.stale`, none dispatched again, and no Graph
//! URL read twice for one tenant; the queue waits are the figure.

use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use tenantops_core::{Outcome, ReasonCode, RunId};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_local::worker_host::WorkerHost;
use tenantops_tests::TestStack;
use tenantops_tests::tenants::sim_serving;

use crate::fleet;

/// Tenants with a nightly backup, unless `TENANTOPS_BENCH_FAN_IN_TENANTS` says otherwise.
const TENANTS: usize = 300;
/// Device configurations per tenant (a small tenant's nightly backup).
const OBJECTS_PER_TENANT: usize = 20;
/// Given up after this long.
const LIMIT: Duration = Duration::from_secs(40 * 60);

fn tenants() -> usize {
    std::env::var("TENANTOPS_BENCH_FAN_IN_TENANTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(TENANTS)
}

pub async fn fan_in() -> anyhow::Result<Value> {
    let n = tenants();
    let stack = TestStack::new().await;
    let ws = stack.demo.workspace_id;
    let owner = stack.users().owner.clone();
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws, &owner, n - 1).await);
    let counts = [("deviceManagement/deviceConfigurations", OBJECTS_PER_TENANT)];
    let mut worker = stack
        .worker_with(sim_serving(&tenants, &counts), RetryPolicy::default())
        .await;
    worker.deps.fairness = tenantops_worker::Fairness::default();
    let host = WorkerHost::from_template()?;

    // Every schedule is due at this minute.
    let minute = Utc::now().duration_trunc(TimeDelta::minutes(1))?;
    let at = minute.format("%H:%M").to_string();
    let schedules: Vec<_> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| crate::scheduler::schedule(&stack, t.id, i, minute, &at))
        .collect();
    let keys: Vec<_> = schedules
        .iter()
        .filter_map(|s| Some((s.tenant_id?, s.id)))
        .collect();
    crate::scheduler::seed(&stack, schedules.into_iter()).await?;
    let deps = tenantops_scheduler::Deps {
        store: stack.store().clone(),
    };
    let fired_at = Utc::now();
    let fired =
        tenantops_scheduler::handle(&tenantops_scheduler::ScheduledEvent::at(minute), &deps)
            .await?;
    anyhow::ensure!(fired.fired == n, "the tick fired {} of {n}", fired.fired);
    let mut ids: Vec<RunId> = Vec::with_capacity(n);
    for (tenant, id) in keys {
        let s = stack
            .store()
            .schedule(ws, tenant, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("schedule {id} vanished"))?;
        ids.push(
            s.last_run_id
                .ok_or_else(|| anyhow::anyhow!("schedule {id} fired no run"))?,
        );
    }

    let worked = fleet::work(&stack, &worker, &host, &ids, LIMIT).await?;
    let succeeded = worked
        .runs
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded)
        .count();
    let stale = worked
        .runs
        .iter()
        .filter(|r| r.failures.iter().any(|f| f.code == ReasonCode::RunStale))
        .count();
    let claims: u32 = worked.runs.iter().map(|r| r.attempts).sum();
    let requests = worker.sim.requests();
    let twice = crate::graph_log::read_twice(&requests);
    anyhow::ensure!(
        succeeded == n && stale == 0 && twice.is_empty(),
        "{succeeded} of {n} succeeded, {stale} stale, {} URLs read twice",
        twice.len()
    );
    Ok(json!({
        "tenants": n,
        "objects_per_tenant": OBJECTS_PER_TENANT,
        "succeeded": succeeded,
        "run_stale": stale,
        "claims": claims,
        "urls_read_twice": twice.len(),
        "seconds": worked.seconds,
        "runs_per_minute": n as f64 / worked.seconds * 60.0,
        "queue_wait": fleet::queue_wait(&worked.runs, fired_at),
        "worker": {
            "timeout_s": host.limits.timeout.as_secs(),
            "batch_size": host.limits.batch_size,
            "concurrency": host.limits.concurrency,
            "per_workspace": worker.deps.fairness.per_workspace,
            "invocations": worked.invocations,
            "invocations_killed": worked.invocations_killed,
        },
        "reaper_dispatch_deadline_s": fleet::DISPATCH_DEADLINE.as_secs(),
        "backlog_over_dispatch_deadline": worked.seconds / fleet::DISPATCH_DEADLINE.as_secs_f64(),
        "reaper": fleet::reaper_json(&worked.reaper),
    }))
}
