//! Run transitions: one conditional transaction on the run and its lock per state-machine
//! step. The lock's run copy moves in step, the active index (GSI3) is kept in the same
//! write, and a finish frees a while-active identity.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use tenantops_core::identity::lock_kind_of;
use tenantops_core::state::TransitionKind;
use tenantops_core::{Counters, LockKind, Outcome, Run, RunStatus, Transition};

use crate::audit::AuditEntry;
use crate::dispatch::dispatch_is;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{number_attr, string_attr, string_of, time_attr};
use crate::keys;
use crate::runs::{FINISH_CODE, IDEMPOTENCY_WINDOW, status_attr};
use crate::table::Store;
use crate::transactions::{
    MemberGuard, Rejection, WriteError, committed, committed_guarded, failed_at,
};

/// The run's attribute (and its lock copy's) that records a cancel request.
const CANCEL_REQUESTED: &str = "cancel_requested_at";

/// What a reaper's write restates of the run it saw.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seen<'a> {
    /// Its active-index sort key (due time and id) is unchanged.
    Deadline(&'a str),
    /// No worker holds a live lease on it at this time (queued, or its lease has expired),
    /// and its dispatch generation is this one.
    NoLiveLease(DateTime<Utc>, u32),
    /// Its dispatch generation is this one (a worker's claim with a message of it).
    Dispatch(u32),
    /// It is still queued (a cancel finishes only a run no worker has claimed).
    Queued,
    /// Nobody asked it to stop (a worker's checkpoint); the run's old image comes back on
    /// failure, to tell a cancel request from a lost lease.
    NoCancelRequest,
}

/// What a worker's checkpoint found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progressed {
    /// The counters moved.
    Moved,
    /// A cancel was requested: the counters stay as they were, and the run is to stop.
    CancelRequested,
}

impl Store {
    /// Applies a state-machine transition with a conditional transaction on the run and its
    /// lock: the lock's run copy moves in step, and the terminal transition deletes a
    /// while-active lock (freeing the identity) or keeps strict and idempotency locks.
    pub async fn transition(&self, run: &Run, t: &Transition) -> Result<(), StoreError> {
        self.transition_as(run, None, t).await
    }

    /// A transition by the worker holding (or, for a claim, taking) the run's lease as
    /// `worker`: a claim records it, and every later transition requires it, so a worker
    /// whose lease expired and was re-claimed cannot move the run any more.
    pub async fn transition_as(
        &self,
        run: &Run,
        worker: Option<&str>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        self.transition_checked(run, worker, None, t).await
    }

    /// A transition that also requires what the reaper `seen` to still hold, so that it acts
    /// only on the run as it found it.
    pub(crate) async fn transition_checked(
        &self,
        run: &Run,
        worker: Option<&str>,
        seen: Option<Seen<'_>>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        match self.transition_items(run, worker, seen, t)? {
            Some(items) => committed(self.transact(items).await?),
            None => Ok(()),
        }
    }

    /// Cancels a queued run: finishes it `cancelled` with its lock, its active index and
    /// `audit` in one transaction, only while it is still queued and `guard` holds. A run
    /// that is no longer queued is refused with [`Rejection::Conflict`].
    pub async fn cancel_queued(
        &self,
        run: &Run,
        now: DateTime<Utc>,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let finish = Transition::Finish {
            now,
            outcome: Outcome::Cancelled,
            failures: Vec::new(),
        };
        let mut items = vec![self.member_check(run.workspace_id, guard)?];
        items.extend(
            self.transition_items(run, None, Some(Seen::Queued), &finish)?
                .unwrap_or_default(),
        );
        items.push(self.put_audit(audit)?);
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }

    /// Asks a running run to stop: records `cancel_requested_at` on the run and its lock's
    /// copy with `audit`, only while it is running, no cancel was requested yet and `guard`
    /// holds; otherwise [`Rejection::Conflict`]. Its worker stops at its next checkpoint
    /// ([`Store::progress_unless_cancelled`]).
    pub async fn request_cancel(
        &self,
        run: &Run,
        now: DateTime<Utc>,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let changes = Changes::default().set(&[CANCEL_REQUESTED], time_attr(now));
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.eq("status", status_attr(RunStatus::Running)),
            p.absent(CANCEL_REQUESTED)
        );
        let update = changes.render(&mut p);
        let mut lp = Placeholders::default();
        let lock_cond = lp.eq("run_id", string_attr(run.id.to_string()));
        let lock_update = changes.render_under(Some("run"), &mut lp);
        let items = vec![
            self.member_check(run.workspace_id, guard)?,
            self.tx_update(&keys::run(run.id), update, cond, p, false)?,
            self.tx_update(
                &keys::lock(&run.identity),
                lock_update,
                lock_cond,
                lp,
                false,
            )?,
            self.put_audit(audit)?,
        ];
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }

    /// A worker's checkpoint: moves the counters by `delta` as the lease holder `worker`,
    /// unless a cancel was requested, which the answer says. A lost lease is
    /// [`StoreError::TransitionRefused`]. A zero `delta` writes nothing and checks nothing.
    pub async fn progress_unless_cancelled(
        &self,
        run: &Run,
        worker: &str,
        delta: Counters,
    ) -> Result<Progressed, StoreError> {
        let t = Transition::Progress { delta };
        let Some(items) =
            self.transition_items(run, Some(worker), Some(Seen::NoCancelRequest), &t)?
        else {
            return Ok(Progressed::Moved);
        };
        let Some(reasons) = self.transact(items).await? else {
            return Ok(Progressed::Moved);
        };
        // Still running under our lease, so the failed part was the cancel request.
        let requested = failed_at(&reasons, 0)
            .and_then(|r| r.item())
            .is_some_and(|old| {
                string_of(old, "status").map(String::as_str) == Some(RunStatus::Running.as_str())
                    && string_of(old, "lease_owner").map(String::as_str) == Some(worker)
                    && old.contains_key(CANCEL_REQUESTED)
            });
        if requested {
            Ok(Progressed::CancelRequested)
        } else {
            Err(StoreError::TransitionRefused)
        }
    }

    /// The items of a transition's transaction; `None`: it changes nothing.
    pub(crate) fn transition_items(
        &self,
        run: &Run,
        worker: Option<&str>,
        seen: Option<Seen<'_>>,
        t: &Transition,
    ) -> Result<Option<Vec<TransactWriteItem>>, StoreError> {
        let kind = lock_kind_of(run.operation);
        let (mut changes, mut lock_changes) = changes_of(run, t);
        if changes.is_empty() {
            return Ok(None);
        }
        changes = active_index_changes(changes, run, t);
        if let (Some(w), TransitionKind::Claim) = (worker, t.kind()) {
            changes = changes.set(&["lease_owner"], string_attr(w));
            lock_changes = lock_changes.set(&["lease_owner"], string_attr(w));
        }
        let mut p = Placeholders::default();
        let update = changes.render(&mut p);
        let allowed = t
            .kind()
            .allowed_from()
            .iter()
            .filter(|st| !(t.kind() == TransitionKind::Claim && **st == RunStatus::Running))
            .map(|st| status_attr(*st));
        let mut cond = p.one_of("status", allowed);
        let status = p.name("status");
        if let Transition::Claim { now, .. } = t {
            // A running run may be re-claimed only once its lease has expired.
            cond = format!(
                "({cond}) OR ({status} = {} AND {} < {})",
                p.value(status_attr(RunStatus::Running)),
                p.name("lease_expires_at"),
                p.value(time_attr(*now))
            );
        }
        if t.kind() == TransitionKind::Claim {
            // The claim resumes from the checkpoint the caller read (its counters become the
            // run's): it restates that checkpoint, so a checkpoint saved since (by a worker
            // whose lease had expired) refuses the claim instead of being resumed wrongly.
            let seen_checkpoint = match &run.checkpoint {
                Some(c) => format!(
                    "{} = {}",
                    p.path(&["checkpoint", "saved_at"]),
                    p.value(time_attr(c.saved_at))
                ),
                None => p.absent("checkpoint"),
            };
            cond = format!("({cond}) AND {seen_checkpoint}");
        }
        if let (Some(w), false) = (worker, t.kind() == TransitionKind::Claim) {
            cond = format!("({cond}) AND {}", p.eq("lease_owner", string_attr(w)));
        }
        match seen {
            Some(Seen::Deadline(sk)) => {
                cond = format!("({cond}) AND {}", p.eq(keys::GSI3_SK, string_attr(sk)));
            }
            Some(Seen::NoLiveLease(now, generation)) => {
                let lease = p.name("lease_expires_at");
                cond = format!(
                    "({cond}) AND ({status} = {} OR attribute_not_exists({lease}) OR {lease} < {}) AND {}",
                    p.value(status_attr(RunStatus::Queued)),
                    p.value(time_attr(now)),
                    dispatch_is(&mut p, generation),
                );
            }
            Some(Seen::Dispatch(generation)) => {
                cond = format!("({cond}) AND {}", dispatch_is(&mut p, generation));
            }
            Some(Seen::Queued) => {
                cond = format!(
                    "({cond}) AND {}",
                    p.eq("status", status_attr(RunStatus::Queued))
                );
            }
            Some(Seen::NoCancelRequest) => {
                cond = format!("({cond}) AND {}", p.absent(CANCEL_REQUESTED));
            }
            None => {}
        }
        let return_old = matches!(seen, Some(Seen::NoCancelRequest));
        let run_update = self.tx_update(&keys::run(run.id), update, cond, p, return_old)?;

        let mut lp = Placeholders::default();
        let lock_cond = lp.eq("run_id", string_attr(run.id.to_string()));
        let lock_key = keys::lock(&run.identity);
        let finishing = t.kind() == TransitionKind::Finish;
        let lock_write = if finishing && kind == LockKind::WhileActive {
            self.tx_delete(&lock_key, lock_cond, lp, false)?
        } else {
            if let (true, LockKind::Idempotent, Transition::Finish { now, .. }) =
                (finishing, kind, t)
            {
                let expires = (*now + IDEMPOTENCY_WINDOW).timestamp();
                lock_changes = lock_changes.set_top(keys::TTL, number_attr(expires));
            }
            let update = lock_changes.render_under(Some("run"), &mut lp);
            self.tx_update(&lock_key, update, lock_cond, lp, false)?
        };
        Ok(Some(vec![run_update, lock_write]))
    }
}

/// The run item's GSI3 changes (never the lock's copy): a claim and a hand-back move the
/// time the run is due back by (its lease's end, its resume time; the reaper adds its grace
/// when it queries), a finish leaves the index; progress and reports keep it.
fn active_index_changes(changes: Changes, run: &Run, t: &Transition) -> Changes {
    let deadline = match t {
        Transition::Claim { now, lease } => *now + *lease,
        Transition::Yield { resume_at, .. } => *resume_at,
        Transition::Finish { .. } => {
            return changes.remove_top(keys::GSI3_PK).remove_top(keys::GSI3_SK);
        }
        Transition::Progress { .. } | Transition::Report { .. } | Transition::Checkpoint { .. } => {
            return changes;
        }
    };
    changes
        .set_top(
            keys::GSI3_PK,
            string_attr(keys::active_runs(keys::active_shard(run.id))),
        )
        .set_top(
            keys::GSI3_SK,
            string_attr(keys::active_sort(deadline, run.id)),
        )
}

/// A record as an attribute, or `fallback` if it does not map (it always does).
fn record_attr<T: serde::Serialize>(v: &T, fallback: AttributeValue) -> AttributeValue {
    serde_dynamo::to_attribute_value::<_, AttributeValue>(v).unwrap_or(fallback)
}

/// The run-item and lock-copy changes of a transition of `run`.
fn changes_of(run: &Run, t: &Transition) -> (Changes, Changes) {
    let c = match t {
        Transition::Claim { now, lease } => Changes::default()
            .set(&["status"], status_attr(RunStatus::Running))
            .set_if_absent(&["started_at"], time_attr(*now))
            .set(&["lease_expires_at"], time_attr(*now + *lease))
            .increment(&["attempts"], 1)
            .set(
                &["counters"],
                record_attr(
                    &run.checkpoint
                        .as_ref()
                        .map(|c| c.counters)
                        .unwrap_or_default(),
                    AttributeValue::Null(true),
                ),
            ),
        Transition::Checkpoint { checkpoint } => Changes::default()
            .set(
                &["counters"],
                record_attr(&checkpoint.counters, AttributeValue::Null(true)),
            )
            .set(
                &["checkpoint"],
                record_attr(checkpoint, AttributeValue::Null(true)),
            ),
        Transition::Progress { delta } => {
            let mut c = Changes::default();
            for (path, by) in [
                (&["counters", "total"][..], delta.total),
                (&["counters", "processed"][..], delta.processed),
                (&["counters", "succeeded"][..], delta.succeeded),
                (&["counters", "failed"][..], delta.failed),
                (&["counters", "skipped"][..], delta.skipped),
            ] {
                if by > 0 {
                    c = c.increment(path, i64::try_from(by).unwrap_or(i64::MAX));
                }
            }
            c
        }
        Transition::Yield { now, .. } => {
            Changes::default().set(&["lease_expires_at"], time_attr(*now))
        }
        Transition::Report { result } => {
            Changes::default().set(&["result"], record_attr(result, AttributeValue::Null(true)))
        }
        Transition::Finish {
            now,
            outcome,
            failures,
        } => {
            let c = Changes::default()
                .set(&["status"], status_attr(RunStatus::Completed))
                .set(&["outcome"], string_attr(outcome.as_str()))
                .set(&["completed_at"], time_attr(*now))
                .remove(&["lease_expires_at"])
                .remove(&["checkpoint"])
                .append(
                    &["failures"],
                    record_attr(failures, AttributeValue::L(Vec::new())),
                );
            // Why a run failed, as one top-level attribute, so a list can filter the problem
            // class `stale` inside its query (a filter cannot search a list of maps).
            match (outcome, failures.first()) {
                (Outcome::Failed, Some(first)) => {
                    c.set(&[FINISH_CODE], string_attr(first.code.as_str()))
                }
                _ => c,
            }
        }
    };
    (c.clone(), c)
}
