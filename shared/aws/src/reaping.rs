//! What the reaper asks of the store: the active runs past their deadline (a query of the
//! sparse GSI3, never a Scan), and the conditional writes that re-dispatch or fail them. Every
//! write restates what the reaper saw (the run's deadline, which every claim and hand-back
//! moves and every finish removes), so a worker that moved the run meanwhile wins and two
//! reapers cannot both act.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use chrono::{DateTime, Utc};
use tenantops_core::{Failure, Outcome, ReasonCode, Run, RunStatus, Transition};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::keys;
use crate::store::{DISPATCH_DEADLINE, Item, Seen, Store, from_item, s};

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
        let mut p = Placeholders::default();
        let key_cond = format!(
            "{} = {} AND {} <= {}",
            p.name(keys::GSI3_PK),
            p.value(s(keys::active_runs(shard))),
            p.name(keys::GSI3_SK),
            p.value(s(keys::active_sort_until(now))),
        );
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let want = limit.saturating_sub(found.len());
            if want == 0 {
                break;
            }
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI3)
                .key_condition_expression(&key_cond)
                .set_expression_attribute_names(p.names())
                .set_expression_attribute_values(p.values())
                .scan_index_forward(true)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let seen = item
                    .get(keys::GSI3_SK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let redispatched = item.contains_key(REDISPATCHED);
                let run: Run = from_item("run", item)?;
                found.push(StaleRun {
                    run,
                    seen,
                    redispatched,
                });
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(found)
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
        let mut p = Placeholders::default();
        let token = p.value(s(ulid::Ulid::new().to_string()));
        let mark = p.name(REDISPATCHED);
        let deadline = p.name(keys::GSI3_SK);
        let update = format!(
            "SET {mark} = {token}, {deadline} = {}",
            p.value(s(keys::active_sort(now + DISPATCH_DEADLINE, stale.run.id))),
        );
        let cond = format!(
            "{} = {} AND (({deadline} = {} AND attribute_not_exists({mark})) OR {mark} = {token})",
            p.name("status"),
            p.value(s(RunStatus::Queued.as_str())),
            p.value(s(stale.seen.clone())),
        );
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(keys::run(stale.run.id).to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::dynamo("UpdateItem", e)),
        }
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
