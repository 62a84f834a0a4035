//! The run state machine: queued → running → completed, one terminal transition only.
//!
//! The store enforces the same rules with DynamoDB condition expressions built from
//! [`TransitionKind::allowed_from`]; this pure model is what the property tests exercise.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::identity::Identity;
use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::params::OperationParams;
use crate::run::{
    Checkpoint, Counters, Failure, Initiator, Outcome, Run, RunContext, RunStatus, Trigger,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    Claim,
    Progress,
    Report,
    Checkpoint,
    Yield,
    Finish,
}

impl TransitionKind {
    /// The statuses a transition may start from. A claim of a `running` run additionally
    /// requires its lease to have expired.
    pub fn allowed_from(self) -> &'static [RunStatus] {
        match self {
            TransitionKind::Claim => &[RunStatus::Queued, RunStatus::Running],
            TransitionKind::Progress
            | TransitionKind::Report
            | TransitionKind::Checkpoint
            | TransitionKind::Yield => &[RunStatus::Running],
            TransitionKind::Finish => &[RunStatus::Queued, RunStatus::Running],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A worker takes the run until `now + lease`; the attempt's counters start from the
    /// run's checkpoint (its work resumes there), or at zero.
    Claim { now: DateTime<Utc>, lease: Duration },
    /// Counters move forward by these amounts.
    Progress { delta: Counters },
    /// The run's findings (replacing earlier ones).
    Report { result: serde_json::Value },
    /// The lease holder saves where the work stands; the run's counters become the
    /// checkpoint's in the same write.
    Checkpoint { checkpoint: Checkpoint },
    /// The worker hands the run back (e.g. a long throttle): the lease ends now, so the
    /// message's next delivery, due at `resume_at`, may claim it again (until then the run
    /// is waiting, not stale).
    Yield {
        now: DateTime<Utc>,
        resume_at: DateTime<Utc>,
    },
    /// The run ends; the outcome must not be `pending`.
    Finish {
        now: DateTime<Utc>,
        outcome: Outcome,
        failures: Vec<Failure>,
    },
}

impl Transition {
    pub fn kind(&self) -> TransitionKind {
        match self {
            Transition::Claim { .. } => TransitionKind::Claim,
            Transition::Progress { .. } => TransitionKind::Progress,
            Transition::Yield { .. } => TransitionKind::Yield,
            Transition::Report { .. } => TransitionKind::Report,
            Transition::Checkpoint { .. } => TransitionKind::Checkpoint,
            Transition::Finish { .. } => TransitionKind::Finish,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a {from} run cannot take a {kind:?} transition")]
    NotAllowed {
        from: RunStatus,
        kind: TransitionKind,
    },
    #[error("the run is leased to another worker until {0}")]
    Leased(DateTime<Utc>),
    #[error("a finished run needs an outcome other than pending")]
    PendingOutcome,
}

/// What a new run is made of.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub params: &'a OperationParams,
    pub identity: &'a Identity,
    pub initiator: Initiator,
    pub trigger: Trigger,
}

impl Run {
    /// A new run with a fresh id, `queued`, as the API or the scheduler creates it.
    pub fn queued(new: NewRun<'_>, now: DateTime<Utc>) -> Run {
        Run::queued_with_scope(new, None, now)
    }

    /// A new run limited to these object types (`context.target_scope = {"types": [...]}`).
    /// Backups always name their types: a schedule's scope, or every backup type.
    pub fn queued_with_scope(new: NewRun<'_>, types: Option<&[String]>, now: DateTime<Utc>) -> Run {
        Run {
            id: RunId::new(),
            workspace_id: new.workspace_id,
            tenant_id: new.tenant_id,
            operation: new.params.operation(),
            status: RunStatus::Queued,
            outcome: Outcome::Pending,
            identity: new.identity.key.clone(),
            initiator: new.initiator,
            params: new.params.to_value(),
            context: context_of(new.params, new.trigger, types),
            counters: Counters::default(),
            failures: Vec::new(),
            created_at: now,
            started_at: None,
            completed_at: None,
            lease_expires_at: None,
            attempts: 0,
            cancel_requested_at: None,
            result: None,
            checkpoint: None,
        }
    }

    /// Applies `t` if the state machine allows it.
    pub fn apply(&mut self, t: &Transition) -> Result<(), TransitionError> {
        let kind = t.kind();
        if !kind.allowed_from().contains(&self.status) {
            return Err(TransitionError::NotAllowed {
                from: self.status,
                kind,
            });
        }
        match t {
            Transition::Claim { now, lease } => {
                if self.status == RunStatus::Running {
                    match self.lease_expires_at {
                        Some(until) if until > *now => return Err(TransitionError::Leased(until)),
                        _ => {}
                    }
                }
                self.status = RunStatus::Running;
                self.started_at.get_or_insert(*now);
                self.lease_expires_at = Some(*now + *lease);
                self.attempts += 1;
                // Work resumes from the checkpoint (restarts without one), and so do the
                // counters: progress after the checkpoint was not saved with it.
                self.counters = self
                    .checkpoint
                    .as_ref()
                    .map(|c| c.counters)
                    .unwrap_or_default();
            }
            Transition::Yield { now, .. } => self.lease_expires_at = Some(*now),
            Transition::Report { result } => self.result = Some(result.clone()),
            Transition::Checkpoint { checkpoint } => {
                self.counters = checkpoint.counters;
                self.checkpoint = Some(checkpoint.clone());
            }
            Transition::Progress { delta } => {
                let c = &mut self.counters;
                c.total += delta.total;
                c.processed += delta.processed;
                c.succeeded += delta.succeeded;
                c.failed += delta.failed;
                c.skipped += delta.skipped;
            }
            Transition::Finish {
                now,
                outcome,
                failures,
            } => {
                if *outcome == Outcome::Pending {
                    return Err(TransitionError::PendingOutcome);
                }
                self.status = RunStatus::Completed;
                self.outcome = *outcome;
                self.completed_at = Some(*now);
                self.lease_expires_at = None;
                // A finished run resumes nothing.
                self.checkpoint = None;
                self.failures.extend(failures.iter().cloned());
            }
        }
        Ok(())
    }
}

fn context_of(params: &OperationParams, trigger: Trigger, types: Option<&[String]>) -> RunContext {
    let mut ctx = RunContext {
        trigger,
        target_scope: match types {
            Some(t) => json!({ "types": t }),
            None => json!("tenant"),
        },
        provider_connection_id: None,
        backup_schedule_id: None,
        scheduled_for: None,
        restore_id: None,
        retry_of: None,
        batch_id: None,
    };
    params.type_params().fill_context(&mut ctx);
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Click;
    use crate::operation::OperationType;
    use crate::reason::ReasonCode;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn fresh() -> Run {
        let p = OperationParams::parse(OperationType::InventorySync, None).expect("defaults");
        let (ws, t) = (WorkspaceId::new(), TenantId::new());
        let identity = Identity::derive(ws, t, &p, &Click::Nonce(ulid::Ulid::new()));
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid");
        Run::queued(
            NewRun {
                workspace_id: ws,
                tenant_id: t,
                params: &p,
                identity: &identity,
                initiator: Initiator::Scheduler,
                trigger: Trigger::Manual,
            },
            now,
        )
    }

    fn transition() -> impl Strategy<Value = Transition> {
        let at = (1_700_000_000i64..1_700_100_000)
            .prop_map(|s| Utc.timestamp_opt(s, 0).single().expect("valid"));
        let outcome = prop_oneof![
            Just(Outcome::Pending),
            Just(Outcome::Succeeded),
            Just(Outcome::PartiallySucceeded),
            Just(Outcome::Failed),
            Just(Outcome::Cancelled),
        ];
        prop_oneof![
            (at.clone(), 1i64..3_600).prop_map(|(now, s)| Transition::Claim {
                now,
                lease: Duration::seconds(s)
            }),
            (0u64..50, 0u64..50).prop_map(|(p, s)| Transition::Progress {
                delta: Counters {
                    total: p + s,
                    processed: p,
                    succeeded: s,
                    ..Counters::default()
                }
            }),
            (at.clone(), 0u64..500).prop_map(|(saved_at, n)| Transition::Checkpoint {
                checkpoint: Checkpoint {
                    counters: Counters {
                        total: n,
                        processed: n,
                        ..Counters::default()
                    },
                    state: json!({ "next": n }),
                    saved_at,
                }
            }),
            at.clone().prop_map(|now| Transition::Yield {
                now,
                resume_at: now
            }),
            (at, outcome).prop_map(|(now, outcome)| Transition::Finish {
                now,
                outcome,
                failures: vec![Failure::of(ReasonCode::GraphUnavailable)],
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_the_run_consistent(ts in prop::collection::vec(transition(), 0..30)) {
            let mut run = fresh();
            let mut finished: Option<Run> = None;
            for t in &ts {
                let before = run.clone();
                let applied = run.apply(t).is_ok();
                if !applied {
                    prop_assert_eq!(&run, &before, "a refused transition changes nothing");
                }
                prop_assert!(run.attempts >= before.attempts);
                if let Some(done) = &finished {
                    prop_assert!(!applied, "nothing applies after the terminal transition");
                    prop_assert_eq!(&run, done);
                }
                if run.status == RunStatus::Completed && finished.is_none() {
                    finished = Some(run.clone());
                }
                prop_assert_eq!(run.outcome == Outcome::Pending, run.status != RunStatus::Completed);
                prop_assert_eq!(run.completed_at.is_some(), run.status == RunStatus::Completed);
                prop_assert_eq!(run.lease_expires_at.is_some(), run.status == RunStatus::Running);
                if run.status == RunStatus::Running {
                    prop_assert!(run.started_at.is_some());
                }
                if run.status == RunStatus::Completed {
                    prop_assert!(run.checkpoint.is_none(), "a finished run keeps no checkpoint");
                }
                if applied && matches!(t, Transition::Claim { .. }) {
                    let resumed = before.checkpoint.as_ref().map(|c| c.counters).unwrap_or_default();
                    prop_assert_eq!(run.counters, resumed, "a claim resumes the checkpoint's counters");
                }
            }
        }
    }

    #[test]
    fn a_live_lease_blocks_a_second_claim_and_an_expired_one_does_not() {
        let mut run = fresh();
        let t0 = run.created_at;
        let claim = |s: i64| Transition::Claim {
            now: t0 + Duration::seconds(s),
            lease: Duration::seconds(60),
        };
        run.apply(&claim(0)).expect("first claim");
        assert!(matches!(
            run.apply(&claim(30)),
            Err(TransitionError::Leased(_))
        ));
        run.apply(&claim(61)).expect("expired lease is re-claimed");
        assert_eq!(run.attempts, 2);
        assert_eq!(run.started_at, Some(t0), "started_at keeps the first claim");
    }

    #[test]
    fn a_queued_run_can_fail_without_ever_running() {
        let mut run = fresh();
        let now = run.created_at;
        run.apply(&Transition::Finish {
            now,
            outcome: Outcome::Failed,
            failures: vec![Failure::of(ReasonCode::DispatchFailed)],
        })
        .expect("dispatch failure finishes a queued run");
        assert_eq!(run.status, RunStatus::Completed);
        assert!(run.started_at.is_none());
    }
}
