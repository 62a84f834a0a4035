//! The reaper: an EventBridge-scheduled Lambda (every 5 minutes) that makes sure no run is
//! left queued or running forever, and that no exhausted work message is forgotten.
//!
//! Per tick: query each shard of the sparse active-runs index (GSI3) for runs past their
//! deadline (never a Scan). A queued run whose message may have been lost is dispatched once
//! more; on its next sighting, and for a running run whose lease and redelivery grace both
//! passed, the run is finished `failed` with `run.stale` (its while-active lock released in the
//! same transaction), its initiator notified and the `Completed` event published. Then the
//! worker's dead-letter queue is drained: each message's run is failed `worker.exhausted`
//! unless it already finished or a worker holds a live lease on it, and only handled messages are deleted. Every write is
//! conditional on what the reaper saw, so concurrent ticks, retries and live workers are safe.

pub mod config;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantops_aws::events::LifecycleEvents;
use tenantops_aws::keys::ACTIVE_SHARDS;
use tenantops_aws::queue::Deleted;
use tenantops_aws::reaping::StaleRun;
use tenantops_aws::{
    DeadLetters, Dispatcher, Received, RunMessage, Store, StoreError, announce_completed,
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
    /// Sends to the work queue (the one re-dispatch of a queued run).
    pub dispatcher: Dispatcher,
    /// The work queue's dead-letter queue, drained every tick.
    pub dead_letters: DeadLetters,
    pub events: LifecycleEvents,
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tick {
    /// Queued runs dispatched once more.
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
    #[error("the re-dispatch failed (the next tick fails the run): {0}")]
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

/// One pass as of `now`: stale runs of every shard, then the dead-letter queue.
pub async fn tick(now: DateTime<Utc>, deps: &Deps) -> Tick {
    let mut tick = Tick::default();
    for shard in 0..ACTIVE_SHARDS {
        let stale = match deps.store.stale_runs(shard, now, RUNS_PER_SHARD).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(shard, error = %e, "could not query stale runs");
                tick.errors += 1;
                continue;
            }
        };
        for s in stale {
            let span = run_span(&s.run);
            reap(&s, now, deps, &mut tick).instrument(span).await;
        }
    }
    drain_dead_letters(now, deps, &mut tick).await;
    tracing::info!(
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

fn run_span(run: &Run) -> tracing::Span {
    tracing::info_span!(
        "run",
        run_id = %run.id,
        tenant = %run.tenant_id,
        workspace = %run.workspace_id,
        r#type = %run.operation,
    )
}

async fn reap(stale: &StaleRun, now: DateTime<Utc>, deps: &Deps, tick: &mut Tick) {
    match reap_one(stale, now, deps).await {
        Ok(Reaped::Redispatched) => {
            tracing::warn!("queued past its dispatch deadline; dispatched once more");
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
    Redispatched,
    Failed,
    Moved,
}

async fn reap_one(stale: &StaleRun, now: DateTime<Utc>, deps: &Deps) -> Result<Reaped, ReapError> {
    if stale.run.status == RunStatus::Queued && !stale.redispatched {
        // Its message may have been lost (a send that failed after the start committed, a
        // purge): mark first, conditionally, so only one reaper sends.
        if !deps.store.mark_redispatched(stale, now).await? {
            return Ok(Reaped::Moved);
        }
        deps.dispatcher.send(stale.run.id).await?;
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
    /// Its run had finished, or a worker holds a live lease on it (a duplicate message is
    /// being worked on): nothing to do.
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
    let Some(RunMessage { run_id }) = letter
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
    else {
        tracing::error!("the dead letter is not a run message; dropped");
        return Ok(DeadLetter::Unusable);
    };
    let Some(run) = deps.store.get_run(run_id).await? else {
        tracing::error!(run_id = %run_id, "the dead letter names no run; dropped");
        return Ok(DeadLetter::Unusable);
    };
    let span = run_span(&run);
    async {
        if run.status == RunStatus::Completed {
            return Ok(DeadLetter::Standing);
        }
        // The read only finds the run's lock; the finish itself is conditional on the run
        // not having finished meanwhile and on no live lease.
        match deps.store.fail_exhausted(&run, now).await? {
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
