//! What the many-run benchmarks share: many runs worked as Lambda works them (the strict
//! worker host: the template's timeout, batch size and reserved concurrency, with the
//! deployed per-workspace limit) while the reaper ticks beside them with a dispatch deadline
//! far shorter than the backlog, so that a backlog mistaken for loss would show as a
//! re-dispatch or a `run.stale`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantops_core::{Run, RunId};
use tenantops_local::worker_host::WorkerHost;
use tenantops_reaper::Tick;
use tenantops_tests::{TestStack, WorkerHarness};

/// The reaper's dispatch deadline in these benchmarks: every backlog here lasts many times
/// longer, so each queued run is overdue many times before it is claimed.
pub const DISPATCH_DEADLINE: Duration = Duration::from_secs(10);
/// How often the reaper ticks (EventBridge ticks it every minute in AWS).
const REAPER_EVERY: Duration = Duration::from_secs(5);
/// How often the unfinished runs are read: every read competes with the measured work on
/// the one DynamoDB Local (reading 500 runs every second saturated it), and the figures come
/// from the runs' own timestamps, not from when the bench noticed.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// What working a fleet of runs to their end took.
pub struct Worked {
    pub runs: Vec<Run>,
    pub seconds: f64,
    pub invocations: usize,
    pub invocations_killed: usize,
    pub reaper: Tick,
}

fn add(total: &mut Tick, t: &Tick) {
    total.waiting += t.waiting;
    total.redispatched += t.redispatched;
    total.failed_stale += t.failed_stale;
    total.exhausted += t.exhausted;
    total.moved += t.moved;
    total.dead_letters += t.dead_letters;
    total.errors += t.errors;
}

/// Works the queue on `host` until every one of `ids` has finished (or `limit` passed),
/// ticking the reaper every few seconds.
pub async fn work(
    stack: &TestStack,
    worker: &WorkerHarness,
    host: &WorkerHost,
    ids: &[RunId],
    limit: Duration,
) -> anyhow::Result<Worked> {
    let mut reaper = stack.reaper();
    reaper.thresholds.dispatch_deadline = chrono::TimeDelta::from_std(DISPATCH_DEADLINE)?;
    let wall = Instant::now();
    let mut total = Tick::default();
    let (mut invocations, mut killed) = (0, 0);
    let mut last_tick = Instant::now();
    let mut last_check = Instant::now();
    // Only runs not yet seen finished are read again: DynamoDB Local serves the workers
    // too, and reading every run each round would compete with the work measured.
    let mut unfinished: Vec<RunId> = ids.to_vec();
    loop {
        let drained = host.drain(&worker.deps).await?;
        invocations += drained.invocations;
        killed += drained.timed_out;
        if last_tick.elapsed() >= REAPER_EVERY {
            add(
                &mut total,
                &tenantops_reaper::tick(Utc::now(), &reaper).await,
            );
            last_tick = Instant::now();
        }
        if last_check.elapsed() >= CHECK_EVERY {
            last_check = Instant::now();
            let mut still = Vec::with_capacity(unfinished.len());
            for run in runs(stack, &unfinished).await? {
                if run.status.is_active() {
                    still.push(run.id);
                }
            }
            unfinished = still;
        }
        if unfinished.is_empty() {
            return Ok(Worked {
                runs: runs(stack, ids).await?,
                seconds: wall.elapsed().as_secs_f64(),
                invocations,
                invocations_killed: killed,
                reaper: total,
            });
        }
        anyhow::ensure!(
            wall.elapsed() < limit,
            "{} of {} runs did not finish within {limit:?}",
            unfinished.len(),
            ids.len()
        );
        // Deferred and handed-back messages become visible again later.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The runs `ids`, read consistently.
pub async fn runs(stack: &TestStack, ids: &[RunId]) -> anyhow::Result<Vec<Run>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let run = stack
            .store()
            .get_run(*id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run {id} vanished"))?;
        out.push(run);
    }
    Ok(out)
}

/// How long each of `runs` waited from `since` until its first claim, as p50/p99/max in
/// seconds.
pub fn queue_wait(runs: &[Run], since: DateTime<Utc>) -> Value {
    let mut waits: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.started_at)
        .map(|s| (s - since).num_milliseconds() as f64 / 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let at = |p: f64| {
        waits
            .get(((waits.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    json!({ "n": waits.len(), "p50_s": at(0.5), "p99_s": at(0.99), "max_s": at(1.0) })
}

/// The reaper's totals, as reported.
pub fn reaper_json(t: &Tick) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}
