//! The scheduler: an EventBridge rule invokes it every minute, and it fires the schedules that
//! are due: each slot a backup or a drift check, by the schedule's kind.
//!
//! A tick is safe to repeat, to run twice at once and to retry:
//! - `now` is the event's `time` (the scheduled minute), so a duplicated or retried event
//!   computes the same slots;
//! - due schedules come from the sparse due index (one Query per shard, `next_fire_at <= now`);
//! - firing a slot is ONE transaction: the schedule moves on (conditional on the enabled flag,
//!   version and next fire time the tick read), the tenant is active, and the run and its
//!   strict `(schedule, slot)` lock are new. Of two concurrent ticks only one can move the
//!   schedule; a slot that fired before can never fire again;
//! - missed slots follow `tenantops_core::schedule::Timetable::due`: the latest within the grace
//!   window fires, older ones are recorded on the schedule as skipped.
//!
//! As for every start, the run's audit entry and work message follow from the table's stream
//! (`functions/relay`): the scheduler only writes. The deployed function ticks through
//! [`handle_announcing`], which also publishes `Schedule SlotMissed` for the slots a committed
//! write recorded as missed (webhooks' `schedule.slot_missed`).

mod batches;
pub mod config;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tenantops_aws::events::{LifecycleEvents, SLOT_MISSED};
use tenantops_aws::schedules::{Advance, Fired, due_shards};
use tenantops_aws::{Rejection, StartRun, Started, Store, StoreError, WriteError};
use tenantops_core::schedule::{BackupSchedule, Due, ScheduleScope, SkippedSlot};
use tenantops_core::{Click, Identity, Initiator, NewRun, ReasonCode, Run, Trigger};
use tracing::Instrument;
use ulid::Ulid;

/// Schedules handled at once: 500 due schedules at a few DynamoDB round trips each fit well
/// inside a minute.
pub const CONCURRENCY: usize = 16;

/// What the scheduler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
}

/// The fields of EventBridge's scheduled event the scheduler reads (the rest is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    /// The minute the rule fired for.
    pub time: DateTime<Utc>,
}

impl ScheduledEvent {
    /// The event EventBridge sends for a `rate(1 minute)` rule at `time` (the local host and
    /// the tests send the same shape).
    pub fn at(time: DateTime<Utc>) -> Self {
        ScheduledEvent {
            id: Ulid::new().to_string(),
            detail_type: "Scheduled Event".into(),
            source: "aws.events".into(),
            time,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Schedules the due index returned.
    pub due: usize,
    /// Runs created.
    pub fired: usize,
    /// Slots recorded as skipped (missed past the grace window, or the tenant archived).
    pub skipped_slots: u64,
    /// Slots whose run already existed: the schedule moved on without a new run.
    pub already_fired: usize,
    /// Schedules another tick (or a change through the API) moved first.
    pub lost_races: usize,
    /// Schedules that could not be handled (logged; the retry handles them).
    pub errors: usize,
}

impl TickReport {
    /// Counts one schedule's outcome.
    fn count(&mut self, fate: Result<Fate, StoreError>) {
        match fate {
            Ok(Fate::NotDue) => {}
            Ok(Fate::Fired { run, skipped }) => {
                tracing::info!(run_id = %run.id, "scheduled run created");
                self.fired += 1;
                self.skipped_slots += skipped;
            }
            Ok(Fate::FiredBatch {
                batch,
                tenants,
                skipped,
            }) => {
                tracing::info!(batch_id = %batch, tenants, "scheduled batch created");
                self.fired += 1;
                self.skipped_slots += skipped;
            }
            Ok(Fate::Skipped(n)) => self.skipped_slots += n,
            Ok(Fate::AlreadyFired(n)) => {
                self.already_fired += 1;
                self.skipped_slots += n;
            }
            Ok(Fate::Lost) => self.lost_races += 1,
            Err(err) => {
                self.errors += 1;
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "a due schedule could not be handled");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("reading the due schedules failed")]
    Due(#[source] StoreError),
    #[error("{errors} of {due} due schedules could not be handled")]
    Incomplete { errors: usize, due: usize },
}

/// What happened to one due schedule.
#[derive(Debug)]
enum Fate {
    NotDue,
    /// The run exists; the relay dispatches it.
    Fired {
        run: Box<Run>,
        skipped: u64,
    },
    /// A workspace schedule's batch exists; the relay starts its children.
    FiredBatch {
        batch: tenantops_core::BatchId,
        tenants: usize,
        skipped: u64,
    },
    Skipped(u64),
    AlreadyFired(u64),
    Lost,
}

/// Runs one tick for the event's minute.
pub async fn handle(event: &ScheduledEvent, deps: &Deps) -> Result<TickReport, TickError> {
    tick(event, deps, None).await
}

/// [`handle`], then a `Schedule SlotMissed` event on `events` for each schedule whose slots
/// this tick recorded as missed (past the grace window): ids and slot times only. The skip is
/// committed before it is announced; an event that cannot be published is logged (a repeated
/// tick skips nothing again, so it announces nothing again either).
pub async fn handle_announcing(
    event: &ScheduledEvent,
    deps: &Deps,
    events: &LifecycleEvents,
) -> Result<TickReport, TickError> {
    tick(event, deps, Some(events)).await
}

/// What a `Schedule SlotMissed` event says of `observed`'s slots missed at `now`, if any.
fn missed_slots(observed: &BackupSchedule, now: DateTime<Utc>) -> Option<serde_json::Value> {
    let due = observed.timetable().ok()?.due(observed.next_fire_at, now);
    if due.skipped.is_empty() {
        return None;
    }
    let tenant = match observed.scope() {
        ScheduleScope::Tenant(t) => Some(t),
        ScheduleScope::Workspace(_) => None,
    };
    Some(serde_json::json!({
        "workspace_id": observed.workspace_id,
        "tenant_id": tenant,
        "schedule_id": observed.id,
        "slots": due.skipped.iter().map(|s| tenantops_core::time::format(*s)).collect::<Vec<_>>(),
    }))
}

impl Fate {
    /// Slots this fate's committed write recorded as skipped.
    fn skips_committed(&self) -> u64 {
        match self {
            Fate::Fired { skipped, .. } | Fate::FiredBatch { skipped, .. } => *skipped,
            Fate::Skipped(n) | Fate::AlreadyFired(n) => *n,
            Fate::NotDue | Fate::Lost => 0,
        }
    }
}

async fn tick(
    event: &ScheduledEvent,
    deps: &Deps,
    announce: Option<&LifecycleEvents>,
) -> Result<TickReport, TickError> {
    let now = event.time;
    let span =
        tracing::info_span!("tick", now = %tenantops_core::time::format(now), event_id = %event.id);
    async {
        let due = due_schedules(&deps.store, now)
            .await
            .map_err(TickError::Due)?;
        let mut report = TickReport {
            due: due.len(),
            ..TickReport::default()
        };
        // Transactions run CONCURRENCY at a time.
        let mut fates = futures::stream::iter(due)
            .map(|schedule| async move {
                let missed = announce.and_then(|_| missed_slots(&schedule, now));
                (missed, fire(schedule, now, deps).await)
            })
            .buffer_unordered(CONCURRENCY);
        while let Some((missed, fate)) = fates.next().await {
            let committed = fate.as_ref().map_or(0, Fate::skips_committed);
            if let (Some(events), Some(detail), true) = (announce, missed, committed > 0)
                && let Err(e) = events.publish_detail(SLOT_MISSED, &detail).await
            {
                tracing::error!(error = %e, code = ?e.code, "missed slots not announced");
            }
            report.count(fate);
        }
        tracing::info!(
            due = report.due,
            fired = report.fired,
            skipped_slots = report.skipped_slots,
            already_fired = report.already_fired,
            lost_races = report.lost_races,
            errors = report.errors,
            "tick done"
        );
        if report.errors > 0 {
            return Err(TickError::Incomplete {
                errors: report.errors,
                due: report.due,
            });
        }
        Ok(report)
    }
    .instrument(span)
    .await
}

/// Every schedule due at `now`: the shards are queried at once, each to its last page.
async fn due_schedules(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<BackupSchedule>, StoreError> {
    let shards = due_shards().map(|shard| async move {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = store.due_schedules(shard, now, start).await?;
            all.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok::<_, StoreError>(all),
            }
        }
    });
    let mut out = Vec::new();
    for shard in futures::future::join_all(shards).await {
        out.extend(shard?);
    }
    Ok(out)
}

pub(crate) fn skipped_slots(due: &Due, reason: ReasonCode) -> Vec<SkippedSlot> {
    due.skipped
        .iter()
        .map(|slot| SkippedSlot {
            slot: *slot,
            reason,
        })
        .collect()
}

/// Handles one due schedule as the index showed it.
async fn fire(
    observed: BackupSchedule,
    now: DateTime<Utc>,
    deps: &Deps,
) -> Result<Fate, StoreError> {
    let span = tracing::info_span!(
        "schedule",
        schedule_id = %observed.id,
        tenant_id = tracing::field::Empty,
        run_id = tracing::field::Empty,
        batch_id = tracing::field::Empty,
    );
    async {
        let timetable = match observed.timetable() {
            Ok(t) => t,
            Err(err) => {
                // Validated when written; an unreadable schedule is left alone and reported.
                tracing::error!(error = %err, "stored schedule does not parse");
                return Ok(Fate::NotDue);
            }
        };
        let due = timetable.due(observed.next_fire_at, now);
        let skipped = skipped_slots(&due, ReasonCode::ScheduleSlotMissed);
        let Some(slot) = due.fire else {
            if due.skipped_count == 0 {
                return Ok(Fate::NotDue);
            }
            let advance = Advance {
                next_fire_at: due.next,
                skipped,
                skipped_count: due.skipped_count,
                fired: None,
            };
            return Ok(if deps.store.advance_schedule(&observed, &advance).await? {
                tracing::info!(skipped = due.skipped_count, "missed slots skipped");
                Fate::Skipped(due.skipped_count)
            } else {
                Fate::Lost
            });
        };

        let tenant = match observed.scope() {
            ScheduleScope::Tenant(t) => t,
            ScheduleScope::Workspace(targets) => {
                let targets = targets.clone();
                return batches::fire_batch(&observed, &targets, slot, due, deps).await;
            }
        };
        tracing::Span::current().record("tenant_id", tenant.to_string());
        // A backup or a drift check, by the schedule's kind: strict per (schedule, slot).
        let params = observed.kind.scheduled_params(observed.id, slot);
        // Strict: the identity is (schedule, slot); the click plays no part.
        let identity = Identity::derive(
            observed.workspace_id,
            tenant,
            &params,
            &Click::Nonce(Ulid::new()),
        );
        let created = Utc::now();
        let run = Run::queued_with_scope(
            NewRun {
                workspace_id: observed.workspace_id,
                tenant_id: tenant,
                params: &params,
                identity: &identity,
                initiator: Initiator::Scheduler,
                trigger: Trigger::Schedule,
            },
            Some(&observed.types),
            created,
        );
        tracing::Span::current().record("run_id", run.id.to_string());
        let advance = Advance {
            next_fire_at: due.next,
            skipped: skipped.clone(),
            skipped_count: due.skipped_count,
            fired: Some((slot, Fired::Run(run.id))),
        };
        let preconditions = [deps.store.advance_precondition(&observed, &advance)?];
        let started = deps
            .store
            .start_run(StartRun {
                run: &run,
                lock: identity.lock,
                fresh: identity.fresh,
                fingerprint: "",
                guard: None,
                preconditions: &preconditions,
                // Slots are bounded by the schedule's minimum interval, not by a quota.
                quota: None,
            })
            .await;
        match started {
            Ok(Started::Created) => Ok(Fate::Fired {
                run: Box::new(run),
                skipped: due.skipped_count,
            }),
            Ok(Started::Deduplicated(existing)) => {
                // The slot fired before (its run may long be finished): move on without a run.
                tracing::info!(existing_run = %existing.id, slot = %tenantops_core::time::format(slot), "slot already fired");
                let advance = Advance {
                    fired: None,
                    ..advance
                };
                Ok(if deps.store.advance_schedule(&observed, &advance).await? {
                    Fate::AlreadyFired(due.skipped_count)
                } else {
                    Fate::Lost
                })
            }
            Err(WriteError::Rejected(Rejection::Precondition(_))) => {
                tracing::info!("schedule moved by another tick or changed; left alone");
                Ok(Fate::Lost)
            }
            Err(WriteError::Rejected(Rejection::TenantArchived | Rejection::TenantNotFound)) => {
                // An archived tenant takes no runs: its slot is skipped, visibly.
                let mut skipped = skipped;
                skipped.push(SkippedSlot {
                    slot,
                    reason: ReasonCode::TenantArchived,
                });
                let advance = Advance {
                    next_fire_at: due.next,
                    skipped,
                    skipped_count: due.skipped_count + 1,
                    fired: None,
                };
                Ok(if deps.store.advance_schedule(&observed, &advance).await? {
                    tracing::info!("tenant archived; slot skipped");
                    Fate::Skipped(advance.skipped_count)
                } else {
                    Fate::Lost
                })
            }
            Err(WriteError::Rejected(other)) => {
                tracing::error!(rejection = ?other, "unexpected rejection of a scheduled start");
                Ok(Fate::Lost)
            }
            Err(WriteError::Store(e)) => Err(e),
        }
    }
    .instrument(span)
    .await
}
