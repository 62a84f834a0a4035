//! The reaper: an EventBridge-scheduled Lambda (every 5 minutes) that makes sure no run is
//! left queued or running forever, that no run is failed while its message waits in the
//! queue, and that no exhausted work message is forgotten.
//!
//! Per tick: read the work queue's backlog once, then query each shard of the sparse
//! active-runs index (GSI3) for runs past the reaper's thresholds (never a Scan): a queued
//! run a dispatch deadline after its latest dispatch, a running one a grace after its lease
//! or resume time. While messages wait in the queue, such a run's message may be one of them:
//! it is postponed, never re-dispatched or failed (backlog is not loss). With none waiting,
//! its message is not in the queue to be received: it is dispatched again under a new
//! dispatch generation, which supersedes every earlier message (a worker acknowledges those
//! without work), at most `max_redispatches` times; the next such sighting finishes it
//! `failed` with `run.stale` (its while-active lock released in the same transaction), its
//! initiator notified and the `Completed` event published. Before all that, the worker's
//! dead-letter queue is drained: each message's run is failed `worker.exhausted` unless it
//! already finished, a worker holds a live lease on it, or a later dispatch superseded the
//! message; only handled messages are deleted. Every write is conditional on what the reaper
//! saw, so concurrent ticks, retries and live workers are safe. See ARCHITECTURE.md, "The
//! reaper".

pub mod config;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantops_aws::events::LifecycleEvents;
use tenantops_aws::keys::ACTIVE_SHARDS;
use tenantops_aws::queue::Deleted;
use tenantops_aws::reaping::StaleRun;
pub use tenantops_aws::reaping::Thresholds;
use tenantops_aws::{
    Backlog, DeadLetters, Dispatcher, Received, RunMessage, Store, StoreError, announce_completed,
};
use tenantops_core::{Run, RunStatus};
use tracing::Instrument;

/// Stale runs handled per index shard per tick; the next tick continues.
pub const RUNS_PER_SHARD: usize = 100;
/// Dead letters handled per tick; the next tick continues.
pub const DEAD_LETTERS_PER_TICK: usize = 50;
/// How long a received dead letter stays hidden from another tick while this one handles it.
const DEAD_LETTER_VISIBILITY: Duration = Duration::from_secs(60);

/// What the reaper needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// Sends to the work queue (re-dispatches) and reads its backlog.
    pub dispatcher: Dispatcher,
    /// The work queue's dead-letter queue, drained every tick.
    pub dead_letters: DeadLetters,
    pub events: LifecycleEvents,
    /// When a run is overdue, and how often it is dispatched again (configuration).
    pub thresholds: Thresholds,
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tick {
    /// Overdue runs left to the backlog their message may be waiting in (looked at again a
    /// threshold later).
    pub waiting: usize,
    /// Overdue runs dispatched again under a new dispatch generation.
    pub redispatched: usize,
    /// Runs finished `failed` with `run.stale`.
    pub failed_stale: usize,
    /// Runs finished `failed` with `worker.exhausted`.
    pub exhausted: usize,
    /// Stale sightings that had moved on by the time of the write (a worker or another
    /// reaper was first).
    pub moved: usize,
    /// Dead letters handled and deleted.
    pub dead_letters: usize,
    /// Errors met (logged); what failed is retried by a later tick.
    pub errors: usize,
}

/// A tick that met errors. Returned as the invocation's error, so the function's `Errors`
/// alarm sees it.
#[derive(Debug, thiserror::Error)]
#[error("the reaper met {} errors this tick (see the log): {tick:?}", tick.errors)]
pub struct TickError {
    pub tick: Tick,
}

#[derive(Debug, thiserror::Error)]
enum ReapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the re-dispatch failed (a later tick dispatches again): {0}")]
    Dispatch(#[from] tenantops_aws::DispatchError),
}

/// The Lambda handler. The scheduled event carries nothing the reaper needs; "now" is the
/// clock's.
pub async fn handle(_event: serde_json::Value, deps: &Deps) -> Result<Tick, TickError> {
    let tick = tick(Utc::now(), deps).await;
    if tick.errors > 0 {
        return Err(TickError { tick });
    }
    Ok(tick)
}

/// One pass as of `now`: the dead-letter queue, then overdue runs of every shard.
pub async fn tick(now: DateTime<Utc>, deps: &Deps) -> Tick {
    let mut tick = Tick::default();
    // Dead letters first: a run whose current message exhausted its receives is failed
    // `worker.exhausted` for what it is, before its overdue sighting could dispatch it again.
    drain_dead_letters(now, deps, &mut tick).await;
    // Read once, before any re-dispatch of this tick adds to it. Without it no overdue run's
    // fate is decided: the next tick reads again.
    match deps.dispatcher.backlog().await {
        Ok(backlog) => {
            tracing::info!(
                visible = backlog.visible,
                in_flight = backlog.in_flight,
                delayed = backlog.delayed,
                "work queue backlog"
            );
            reap_overdue(now, backlog, deps, &mut tick).await;
        }
        Err(e) => {
            tracing::error!(error = %e, code = ?e.code, "could not read the work queue's backlog; overdue runs wait for the next tick");
            tick.errors += 1;
        }
    }
    tracing::info!(
        waiting = tick.waiting,
        redispatched = tick.redispatched,
        failed_stale = tick.failed_stale,
        exhausted = tick.exhausted,
        moved = tick.moved,
        dead_letters = tick.dead_letters,
        errors = tick.errors,
        "reaper tick"
    );
    tick
}

async fn reap_overdue(now: DateTime<Utc>, backlog: Backlog, deps: &Deps, tick: &mut Tick) {
    for shard in 0..ACTIVE_SHARDS {
        let stale = match deps
            .store
            .stale_runs(shard, now, &deps.thresholds, RUNS_PER_SHARD)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(shard, error = %e, "could not query stale runs");
                tick.errors += 1;
                continue;
            }
        };
        for s in stale {
            let span = run_span(&s.run);
            reap(&s, backlog, now, deps, tick).instrument(span).await;
        }
    }
}

fn run_span(run: &Run) -> tracing::Span {
    tracing::info_span!(
        "run",
        run_id = %run.id,
        tenant = %run.tenant_id,
        workspace = %run.workspace_id,
        r#type = %run.operation,
    )
}

async fn reap(
    stale: &StaleRun,
    backlog: Backlog,
    now: DateTime<Utc>,
    deps: &Deps,
    tick: &mut Tick,
) {
    match reap_one(stale, backlog, now, deps).await {
        Ok(Reaped::Waiting) => {
            tracing::info!(
                status = %stale.run.status,
                "overdue while messages wait in the queue; left to the backlog"
            );
            tick.waiting += 1;
        }
        Ok(Reaped::Redispatched) => {
            tracing::warn!(
                status = %stale.run.status,
                generation = stale.dispatch + 1,
                "overdue with no message waiting in the queue; dispatched again"
            );
            tick.redispatched += 1;
        }
        Ok(Reaped::Failed) => {
            tracing::warn!(status = %stale.run.status, "stale; finished failed (run.stale)");
            tick.failed_stale += 1;
        }
        Ok(Reaped::Moved) => {
            tracing::info!("moved on since it was seen stale; left alone");
            tick.moved += 1;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not reap the run");
            tick.errors += 1;
        }
    }
}

enum Reaped {
    Waiting,
    Redispatched,
    Failed,
    Moved,
}

async fn reap_one(
    stale: &StaleRun,
    backlog: Backlog,
    now: DateTime<Utc>,
    deps: &Deps,
) -> Result<Reaped, ReapError> {
    if backlog.visible > 0 || backlog.delayed > 0 {
        // Backlog is not loss: its message may be one of those waiting, or one sent with a
        // delay (a worker defers a run of a workspace at its concurrency limit that way, and
        // the run stays queued meanwhile). The counts are approximate, but only this branch
        // trusts a non-zero one, and it changes nothing but when the reaper looks again.
        return Ok(match deps.store.postpone(stale, now).await? {
            true => Reaped::Waiting,
            false => Reaped::Moved,
        });
    }
    // No message waits to be received, and its own was sent (or became visible again) at
    // least a threshold ago, far beyond the counts' lag of about a minute: it is lost (a
    // purge, a send that failed after the start committed), in the dead-letter queue (drained
    // below), or in flight with a worker that has not claimed. Dispatching again under a new
    // generation recovers the first and cannot duplicate work in the others: a superseded
    // message is acknowledged without work, and only the current one can claim.
    if stale.redispatches < deps.thresholds.max_redispatches {
        // Mark first, conditionally, so only one reaper sends.
        let Some(message) = deps.store.mark_redispatched(stale, now).await? else {
            return Ok(Reaped::Moved);
        };
        deps.dispatcher.send_message(message).await?;
        return Ok(Reaped::Redispatched);
    }
    match deps.store.fail_stale(stale, Utc::now()).await? {
        Some(done) => {
            announce_completed(&deps.events, &deps.store, &done).await;
            Ok(Reaped::Failed)
        }
        None => Ok(Reaped::Moved),
    }
}

/// What became of one dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadLetter {
    /// Its run was failed `worker.exhausted`.
    Exhausted,
    /// Its run had finished, a worker holds a live lease on it, or a later dispatch
    /// superseded the message: nothing to do.
    Standing,
    /// Not a run message, or a run that does not exist: nothing can ever handle it.
    Unusable,
}

async fn drain_dead_letters(now: DateTime<Utc>, deps: &Deps, tick: &mut Tick) {
    let mut received = 0;
    while received < DEAD_LETTERS_PER_TICK {
        let letters = match deps.dead_letters.receive(DEAD_LETTER_VISIBILITY).await {
            Ok(letters) => letters,
            Err(e) => {
                tracing::error!(error = %e, code = ?e.code, "could not receive from the dead-letter queue");
                tick.errors += 1;
                return;
            }
        };
        if letters.is_empty() {
            return;
        }
        received += letters.len();
        let mut handled = Vec::new();
        for letter in letters {
            let span = tracing::info_span!("dead_letter", message_id = %letter.message_id);
            match dead_letter(&letter, now, deps)
                .instrument(span.clone())
                .await
            {
                Ok(what) => {
                    span.in_scope(|| tracing::info!(outcome = ?what, "dead letter handled"));
                    if what == DeadLetter::Exhausted {
                        tick.exhausted += 1;
                    }
                    handled.push(letter);
                }
                // Not deleted: it stays in the dead-letter queue for the next tick.
                Err(e) => {
                    span.in_scope(
                        || tracing::error!(error = %e, "could not handle the dead letter"),
                    );
                    tick.errors += 1;
                }
            }
        }
        if handled.is_empty() {
            continue;
        }
        match deps.dead_letters.delete(&handled).await {
            Ok(Deleted { deleted, failed }) => {
                if failed > 0 {
                    tracing::error!(failed, "could not delete some handled dead letters");
                    tick.errors += 1;
                }
                tick.dead_letters += deleted;
            }
            Err(e) => {
                // They come back after the visibility timeout and are handled again (a
                // finished run is left alone), then deleted.
                tracing::error!(error = %e, code = ?e.code, "could not delete handled dead letters");
                tick.errors += 1;
            }
        }
    }
}

async fn dead_letter(
    letter: &Received,
    now: DateTime<Utc>,
    deps: &Deps,
) -> Result<DeadLetter, StoreError> {
    let Some(message) = letter
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<RunMessage>(b).ok())
    else {
        tracing::error!("the dead letter is not a run message; dropped");
        return Ok(DeadLetter::Unusable);
    };
    let Some(dispatched) = deps.store.get_dispatched(message.run_id).await? else {
        tracing::error!(run_id = %message.run_id, "the dead letter names no run; dropped");
        return Ok(DeadLetter::Unusable);
    };
    let span = run_span(&dispatched.run);
    async {
        let run = &dispatched.run;
        if run.status == RunStatus::Completed || dispatched.supersedes(&message) {
            return Ok(DeadLetter::Standing);
        }
        // The read only finds the run's lock; the finish itself is conditional on the run
        // not having finished meanwhile, on no live lease, and on the message's generation.
        match deps
            .store
            .fail_exhausted(run, message.dispatch, now)
            .await?
        {
            Some(done) => {
                tracing::warn!(
                    "its message exhausted its receives; finished failed (worker.exhausted)"
                );
                announce_completed(&deps.events, &deps.store, &done).await;
                Ok(DeadLetter::Exhausted)
            }
            None => Ok(DeadLetter::Standing),
        }
    }
    .instrument(span)
    .await
}
