//! What the reaper asks of the store: the active runs past its thresholds (a query of the
//! sparse GSI3, never a Scan), and the conditional writes that postpone, re-dispatch or fail
//! them. Every write restates what the reaper saw (the run's GSI3 time, which every claim and
//! hand-back moves and every finish removes, and its dispatch generation), so a worker that
//! moved the run meanwhile wins and two reapers cannot both act.
//!
//! GSI3 holds when a run is due to move (a queued run's latest dispatch, a running run's lease
//! end or resume time), not a deadline: the reaper adds its [`Thresholds`] when it queries, so
//! they are its configuration alone, and the API, scheduler and worker need none of it.

use chrono::{DateTime, Duration, Utc};
use tenantops_core::{Failure, Outcome, ReasonCode, Run, RunStatus, Transition};

use crate::dispatch::{DISPATCH, RunMessage, dispatch_is, dispatch_of};
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{Index, Item, from_item, number_attr, string_attr, string_of};
use crate::keys;
use crate::runs::status_attr;
use crate::table::{Query, Store};
use crate::transitions::Seen;

/// How many times the reaper dispatched the run again.
const REDISPATCHES: &str = "redispatches";
/// The token of the reaper's latest re-dispatch mark, so the SDK's retry of a mark whose answer
/// was lost recognises its own write instead of taking it for another reaper's.
const REDISPATCH_TOKEN: &str = "redispatch_token";

/// The reaper's thresholds (its configuration; the defaults are the deployed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// How long a queued run may wait after its latest dispatch before the reaper looks at it.
    pub dispatch_deadline: Duration,
    /// How long a running run may sit past its lease (or its hand-back's resume time) before
    /// the reaper looks at it: longer than the work queue's visibility timeout (900 s), so a
    /// crashed worker's message is redelivered and re-claimed first.
    pub stale_grace: Duration,
    /// How many times the reaper dispatches a run again, each time after a sighting with no
    /// message waiting in the queue, before such a sighting fails it `run.stale`.
    pub max_redispatches: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            dispatch_deadline: Duration::minutes(15),
            stale_grace: Duration::minutes(20),
            max_redispatches: 2,
        }
    }
}

impl Thresholds {
    /// How long a run of this status may sit past its GSI3 time.
    fn of(&self, status: RunStatus) -> Duration {
        match status {
            RunStatus::Queued => self.dispatch_deadline,
            _ => self.stale_grace,
        }
    }
}

/// An active run that the index showed past its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleRun {
    pub run: Run,
    /// Its GSI3 sort key as seen (time and id); writes require it unchanged.
    pub seen: String,
    /// Its dispatch generation as seen.
    pub dispatch: u32,
    /// How many times the reaper dispatched it again.
    pub redispatches: u32,
}

fn number_of(item: &Item, attr: &str) -> u32 {
    match item.get(attr) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

impl Store {
    /// Up to `limit` runs of one GSI3 shard past their threshold as of `now`, the longest
    /// overdue first. The index is eventually consistent; the writes below are not fooled by
    /// it, since each restates what it saw as a condition.
    pub async fn stale_runs(
        &self,
        shard: u8,
        now: DateTime<Utc>,
        thresholds: &Thresholds,
        limit: usize,
    ) -> Result<Vec<StaleRun>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The shorter threshold bounds the query; the longer one is applied per status below.
        // Overdue runs sort first, so the page is never filled by runs that are not.
        let shortest = thresholds.dispatch_deadline.min(thresholds.stale_grace);
        let mut p = Placeholders::default();
        let key_cond = format!(
            "{} AND {} <= {}",
            p.eq(keys::GSI3_PK, string_attr(keys::active_runs(shard))),
            p.name(keys::GSI3_SK),
            p.value(string_attr(keys::active_sort_until(now - shortest))),
        );
        let q = Query::new(Some(Index::Gsi3), key_cond, p);
        let (items, _) = self.query_filling(q.unbounded(), limit, None).await?;
        let mut stale = Vec::new();
        for item in items {
            let seen = string_of(&item, keys::GSI3_SK).cloned().unwrap_or_default();
            let dispatch = dispatch_of(&item);
            let redispatches = number_of(&item, REDISPATCHES);
            let run: Run = from_item("run", item)?;
            if seen <= keys::active_sort_until(now - thresholds.of(run.status)) {
                stale.push(StaleRun {
                    run,
                    seen,
                    dispatch,
                    redispatches,
                });
            }
        }
        Ok(stale)
    }

    /// Leaves a stale run to the backlog its message may be waiting in: its GSI3 time becomes
    /// `now`, so the reaper looks again a threshold later, if it is still as seen. `false`: it
    /// moved meanwhile.
    pub async fn postpone(&self, stale: &StaleRun, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let update = Changes::default()
            .set_top(
                keys::GSI3_SK,
                string_attr(keys::active_sort(now, stale.run.id)),
            )
            .render(&mut p);
        let cond = format!(
            "{} AND {}",
            p.eq("status", status_attr(stale.run.status)),
            p.eq(keys::GSI3_SK, string_attr(stale.seen.clone())),
        );
        self.update_where(&keys::run(stale.run.id), update, cond, p)
            .await
    }

    /// Raises a stale run's dispatch generation (superseding every message sent for it so
    /// far), counts the re-dispatch and gives it a new GSI3 time of `now`, if it is still as
    /// seen. `Some`: the message to send now; `None`: it moved (claimed, finished, or another
    /// reaper got there first), so nothing must be sent.
    pub async fn mark_redispatched(
        &self,
        stale: &StaleRun,
        now: DateTime<Utc>,
    ) -> Result<Option<RunMessage>, StoreError> {
        let next = stale.dispatch.saturating_add(1);
        let token = string_attr(ulid::Ulid::new().to_string());
        let mut p = Placeholders::default();
        let update = Changes::default()
            .set_top(DISPATCH, number_attr(next))
            .set_top(
                REDISPATCHES,
                number_attr(stale.redispatches.saturating_add(1)),
            )
            .set_top(REDISPATCH_TOKEN, token.clone())
            .set_top(
                keys::GSI3_SK,
                string_attr(keys::active_sort(now, stale.run.id)),
            )
            .render(&mut p);
        let cond = format!(
            "{} AND (({} AND {}) OR {})",
            p.eq("status", status_attr(stale.run.status)),
            p.eq(keys::GSI3_SK, string_attr(stale.seen.clone())),
            dispatch_is(&mut p, stale.dispatch),
            p.eq(REDISPATCH_TOKEN, token),
        );
        let marked = self
            .update_where(&keys::run(stale.run.id), update, cond, p)
            .await?;
        Ok(marked.then_some(RunMessage {
            run_id: stale.run.id,
            dispatch: next,
        }))
    }

    /// Finishes a stale run `failed` with `run.stale` (freeing a while-active identity in the
    /// same transaction) if it is still as seen. `None`: it moved meanwhile, and stands.
    pub async fn fail_stale(
        &self,
        stale: &StaleRun,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, StoreError> {
        self.fail_with(
            &stale.run,
            Seen::Deadline(&stale.seen),
            ReasonCode::RunStale,
            now,
        )
        .await
    }

    /// Finishes a run whose message (of generation `dispatch`) exhausted its receives
    /// `failed` with `worker.exhausted`, unless it already finished, a worker holds a live
    /// lease on it, or a later dispatch superseded that message. `None`: it stands.
    pub async fn fail_exhausted(
        &self,
        run: &Run,
        dispatch: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, StoreError> {
        self.fail_with(
            run,
            Seen::NoLiveLease(now, dispatch),
            ReasonCode::WorkerExhausted,
            now,
        )
        .await
    }

    async fn fail_with(
        &self,
        run: &Run,
        seen: Seen<'_>,
        code: ReasonCode,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, StoreError> {
        let finish = Transition::Finish {
            now,
            outcome: Outcome::Failed,
            failures: vec![Failure::of(code)],
        };
        match self
            .transition_checked(run, None, Some(seen), &finish)
            .await
        {
            Ok(()) => {
                let mut done = run.clone();
                // The condition just proved the finish legal from the state it saw.
                let _ = done.apply(&finish);
                Ok(Some(done))
            }
            Err(StoreError::TransitionRefused) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
