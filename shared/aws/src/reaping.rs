//! What the reaper asks of the store: the active runs past their deadline (a query of the
//! sparse GSI3, never a Scan), and the conditional writes that re-dispatch or fail them. Every
//! write restates what the reaper saw (the run's deadline, which every claim and hand-back
//! moves and every finish removes), so a worker that moved the run meanwhile wins and two
//! reapers cannot both act.

use chrono::{DateTime, Utc};
use tenantops_core::{Failure, Outcome, ReasonCode, Run, RunStatus, Transition};

use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{Index, from_item, string_attr, string_of};
use crate::keys;
use crate::runs::DISPATCH_DEADLINE;
use crate::table::{Query, Store};
use crate::transitions::Seen;

/// The run attribute that records the reaper's one re-dispatch.
const REDISPATCHED: &str = "redispatched";

/// An active run that the index showed past its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleRun {
    pub run: Run,
    /// Its GSI3 sort key as seen (deadline and id); writes require it unchanged.
    pub seen: String,
    /// The reaper already dispatched it once more.
    pub redispatched: bool,
}

impl Store {
    /// Up to `limit` runs of one GSI3 shard whose deadline is at or before `now`, oldest
    /// deadline first. The index is eventually consistent; the writes below are not fooled by
    /// it, since each restates what it saw as a condition.
    pub async fn stale_runs(
        &self,
        shard: u8,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StaleRun>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut p = Placeholders::default();
        let key_cond = format!(
            "{} AND {} <= {}",
            p.eq(keys::GSI3_PK, string_attr(keys::active_runs(shard))),
            p.name(keys::GSI3_SK),
            p.value(string_attr(keys::active_sort_until(now))),
        );
        let q = Query::new(Some(Index::Gsi3), key_cond, p);
        let (items, _) = self.query_filling(q.unbounded(), limit, None).await?;
        items
            .into_iter()
            .map(|item| {
                let seen = string_of(&item, keys::GSI3_SK).cloned().unwrap_or_default();
                let redispatched = item.contains_key(REDISPATCHED);
                Ok(StaleRun {
                    run: from_item("run", item)?,
                    seen,
                    redispatched,
                })
            })
            .collect()
    }

    /// Marks a stale queued run re-dispatched and gives it a new dispatch deadline from
    /// `now`, if it is still queued, as seen, and was never re-dispatched. `false`: it moved
    /// (claimed, finished, or another reaper got there first), so nothing must be sent.
    /// The mark is this call's own token, so the SDK's retry of a mark whose answer was lost
    /// recognises its own write instead of taking it for another reaper's.
    pub async fn mark_redispatched(
        &self,
        stale: &StaleRun,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let token = string_attr(ulid::Ulid::new().to_string());
        let deadline = keys::active_sort(now + DISPATCH_DEADLINE, stale.run.id);
        let mut p = Placeholders::default();
        let update = Changes::default()
            .set(&[REDISPATCHED], token.clone())
            .set(&[keys::GSI3_SK], string_attr(deadline))
            .render(&mut p);
        let mark = p.name(REDISPATCHED);
        let cond = format!(
            "{} AND (({} AND attribute_not_exists({mark})) OR {mark} = {})",
            p.eq("status", string_attr(RunStatus::Queued.as_str())),
            p.eq(keys::GSI3_SK, string_attr(stale.seen.clone())),
            p.value(token),
        );
        self.update_where(&keys::run(stale.run.id), update, cond, p)
            .await
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

    /// Finishes a run whose message exhausted its receives `failed` with `worker.exhausted`,
    /// unless it already finished or a worker holds a live lease on it (a duplicate message,
    /// such as the reaper's re-dispatch, is being worked on). `None`: it stands.
    pub async fn fail_exhausted(
        &self,
        run: &Run,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, StoreError> {
        self.fail_with(
            run,
            Seen::NoLiveLease(now),
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
