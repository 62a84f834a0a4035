//! What the many-run benchmarks share: many runs worked as Lambda works them (the strict
//! worker host: the template's timeout, batch size and reserved concurrency, with the
//! deployed per-workspace limit) while the reaper ticks beside them with a dispatch deadline
//! far shorter than the backlog, so that a backlog mistaken for loss would show as a
//! re-dispatch or a `run.stale`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantops_core::{Run, RunId};
use tenantops_local::worker_host::{Invocation, WorkerHost};
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
/// How long a poller's receive waits for messages (SQS long polling).
const POLL_WAIT: Duration = Duration::from_secs(1);

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

/// Runs a pass created, and which of them must finish before the pass ends.
pub struct Started<T> {
    /// Every run the pass reports on.
    pub ids: Vec<RunId>,
    /// The pass ends when these have finished (the others may still be queued).
    pub until: Vec<RunId>,
    /// Whatever else the creation wants back (e.g. when it started what).
    pub with: T,
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
    let created = async {
        Ok(Started {
            ids: ids.to_vec(),
            until: ids.to_vec(),
            with: (),
        })
    };
    Ok(work_while(stack, worker, host, created, limit).await?.1)
}

/// Works the queue as the event-source mapping does (`concurrency` pollers, each invoking
/// as soon as its last invocation returned) from before `create` starts its runs until the
/// runs it names in `until` have finished, ticking the reaper every few seconds all along.
/// The pollers and the checks run side by side, so a queue that never empties (deferred
/// messages come back every few seconds) cannot keep the pass from ending.
pub async fn work_while<T>(
    stack: &TestStack,
    worker: &WorkerHarness,
    host: &WorkerHost,
    create: impl Future<Output = anyhow::Result<Started<T>>>,
    limit: Duration,
) -> anyhow::Result<(T, Worked)> {
    let mut reaper = stack.reaper();
    reaper.thresholds.dispatch_deadline = chrono::TimeDelta::from_std(DISPATCH_DEADLINE)?;
    let wall = Instant::now();
    let stop = AtomicBool::new(false);
    let invocations = AtomicUsize::new(0);
    let killed = AtomicUsize::new(0);
    let poller = || async {
        while !stop.load(Ordering::Relaxed) {
            match host.invoke(&worker.deps, POLL_WAIT).await {
                Ok(None) => {}
                Ok(Some(invocation)) => {
                    invocations.fetch_add(1, Ordering::Relaxed);
                    if matches!(invocation, Invocation::TimedOut { .. }) {
                        killed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        anyhow::Ok(())
    };
    let checker = async {
        let checked = check(stack, &reaper, create, &stop, wall, limit).await;
        stop.store(true, Ordering::Relaxed);
        checked
    };
    let (polled, checked) = tokio::join!(
        futures::future::join_all((0..host.limits.concurrency).map(|_| poller())),
        checker
    );
    for p in polled {
        p?;
    }
    let (with, ids, reaped) = checked?;
    Ok((
        with,
        Worked {
            runs: runs(stack, &ids).await?,
            seconds: wall.elapsed().as_secs_f64(),
            invocations: invocations.into_inner(),
            invocations_killed: killed.into_inner(),
            reaper: reaped,
        },
    ))
}

/// The reaper's ticks and the reads of unfinished runs, beside the pollers: while `create`
/// starts the runs, then until its `until` runs have finished.
async fn check<T>(
    stack: &TestStack,
    reaper: &tenantops_reaper::Deps,
    create: impl Future<Output = anyhow::Result<Started<T>>>,
    stop: &AtomicBool,
    wall: Instant,
    limit: Duration,
) -> anyhow::Result<(T, Vec<RunId>, Tick)> {
    let mut total = Tick::default();
    let tick = |total: &mut Tick, t: Tick| add(total, &t);
    let mut create = std::pin::pin!(create);
    let started = loop {
        tokio::select! {
            created = &mut create => break created?,
            () = tokio::time::sleep(REAPER_EVERY) => {
                tick(&mut total, tenantops_reaper::tick(Utc::now(), reaper).await);
            }
        }
    };
    let mut last_tick = Instant::now();
    let mut last_check = Instant::now();
    // Only runs not yet seen finished are read again: DynamoDB Local serves the workers
    // too, and reading every run each round would compete with the work measured.
    let mut unfinished = started.until.clone();
    loop {
        anyhow::ensure!(
            !stop.load(Ordering::Relaxed),
            "a worker poll failed (its error follows)"
        );
        if last_tick.elapsed() >= REAPER_EVERY {
            tick(&mut total, tenantops_reaper::tick(Utc::now(), reaper).await);
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
            return Ok((started.with, started.ids, total));
        }
        anyhow::ensure!(
            wall.elapsed() < limit,
            "{} of {} runs did not finish within {limit:?}",
            unfinished.len(),
            started.until.len()
        );
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
