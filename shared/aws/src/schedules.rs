//! Schedules (of backups and of drift checks) in the table.
//!
//! A schedule lives next to its tenant (`WS#{ws}` / `SCHEDULE#{tenant}#{id}`), so a tenant's
//! schedules are one Query. While enabled it also carries the sparse due index
//! (`GSI1PK = SCHEDULES#DUE#{shard}`, `GSI1SK = {next_fire_at}#{id}`): the scheduler queries
//! each shard for `GSI1SK <= now`, which costs in proportion to the due schedules, never a Scan.
//!
//! Every change through the API bumps `version` and is conditional on the version it read.
//! The scheduler fires what it read or nothing: its write is conditional on `enabled`,
//! `version` and `next_fire_at` as the index showed them, so two concurrent ticks cannot both
//! advance a schedule, and a schedule changed meanwhile is left for the next tick.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use tenantops_core::schedule::{BackupSchedule, SKIPPED_KEPT, ScheduleScope, SkippedSlot};
use tenantops_core::{RunId, ScheduleId, TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{
    Index, Item, bool_attr, from_items, keyed_item, number_attr, string_attr, time_attr,
    value_attr, with_index,
};
use crate::keys::{self, Key};
use crate::table::{Query, Store};
use crate::transactions::{MemberGuard, Precondition, Rejection, WriteError, committed_guarded};

/// One page of a tenant's schedules, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulePage {
    pub items: Vec<BackupSchedule>,
    pub next: Option<ScheduleId>,
}

/// What the scheduler writes when it moves a schedule on.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub next_fire_at: DateTime<Utc>,
    /// Slots newly skipped, oldest first.
    pub skipped: Vec<SkippedSlot>,
    /// How many slots that is (may exceed `skipped.len()`).
    pub skipped_count: u64,
    /// The slot fired and what it started, when one fires.
    pub fired: Option<(DateTime<Utc>, Fired)>,
}

/// What a fired slot started: a tenant schedule's run, or a workspace schedule's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Run(RunId),
    Batch(tenantops_core::BatchId),
}

/// A schedule's item: while enabled, also in the due index at its next fire time.
fn schedule_item(sch: &BackupSchedule) -> Result<Item, StoreError> {
    let item = keyed_item("schedule", sch, &schedule_key(sch))?;
    Ok(if sch.enabled {
        with_index(
            item,
            Index::Gsi1,
            keys::due_schedules(keys::schedule_shard(sch.id)),
            keys::due_sort(sch.next_fire_at, sch.id),
        )
    } else {
        item
    })
}

/// The scheduler's update of a schedule as it read it: next fire time, skipped slots and
/// (when firing) the slot and run; conditional on `enabled`, `version` and `next_fire_at`.
fn advance_write(
    observed: &BackupSchedule,
    advance: &Advance,
) -> Result<(String, String, Placeholders), StoreError> {
    let mut changes = Changes::default()
        .set(&["next_fire_at"], time_attr(advance.next_fire_at))
        .set(
            &[keys::GSI1_SK],
            string_attr(keys::due_sort(advance.next_fire_at, observed.id)),
        );
    if !advance.skipped.is_empty() {
        let mut list = observed.skipped.clone();
        list.extend(advance.skipped.iter().cloned());
        let from = list.len().saturating_sub(SKIPPED_KEPT);
        changes = changes
            .set(&["skipped"], value_attr("skipped slots", &list[from..])?)
            .set(
                &["skipped_total"],
                number_attr(observed.skipped_total + advance.skipped_count),
            );
    }
    match advance.fired {
        Some((slot, Fired::Run(run))) => {
            changes = changes
                .set(&["last_fired_slot"], time_attr(slot))
                .set(&["last_run_id"], string_attr(run.to_string()));
        }
        Some((slot, Fired::Batch(batch))) => {
            changes = changes
                .set(&["last_fired_slot"], time_attr(slot))
                .set(&["last_batch_id"], string_attr(batch.to_string()));
        }
        None => {}
    }
    let mut p = Placeholders::default();
    let update = changes.render(&mut p);
    let cond = format!(
        "{} AND {} AND {}",
        p.eq("enabled", bool_attr(true)),
        p.eq("version", number_attr(observed.version)),
        p.eq("next_fire_at", time_attr(observed.next_fire_at)),
    );
    Ok((update, cond, p))
}

fn schedule_key(sch: &BackupSchedule) -> Key {
    match sch.scope() {
        ScheduleScope::Tenant(t) => keys::schedule(sch.workspace_id, t, sch.id),
        ScheduleScope::Workspace(_) => keys::workspace_schedule(sch.workspace_id, sch.id),
    }
}

/// `attribute_exists(PK) AND version = {version}`: the schedule as the API read it.
fn at_version(p: &mut Placeholders, version: u64) -> String {
    format!(
        "{} AND {}",
        p.exists(keys::PK),
        p.eq("version", number_attr(version))
    )
}

impl Store {
    /// Creates a schedule: the caller's role and the tenant (active) are conditions of the
    /// same transaction, with the audit entry.
    pub async fn create_schedule(
        &self,
        sch: &BackupSchedule,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut items = vec![self.member_check(sch.workspace_id, guard)?];
        let tenant_at = match sch.scope() {
            ScheduleScope::Tenant(t) => {
                items.push(self.tenant_active_check(sch.workspace_id, t)?);
                Some(1)
            }
            ScheduleScope::Workspace(_) => None,
        };
        items.push(self.put_new(schedule_item(sch)?, false)?);
        items.push(self.put_audit(audit)?);
        committed_guarded(self.transact(items).await?, tenant_at, Rejection::Conflict)
    }

    /// One schedule, read consistently (`None`: no such schedule for this tenant).
    pub fn schedule(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<Option<BackupSchedule>, StoreError>> + Send + use<> {
        self.get_as("schedule", &keys::schedule(ws, tenant, id))
    }

    /// A workspace's own schedule, read consistently (`None`: no such workspace schedule).
    pub fn workspace_schedule(
        &self,
        ws: WorkspaceId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<Option<BackupSchedule>, StoreError>> + Send + use<> {
        self.get_as("schedule", &keys::workspace_schedule(ws, id))
    }

    /// A workspace's own schedules in id (creation) order, from one partition Query.
    pub async fn list_workspace_schedules(
        &self,
        ws: WorkspaceId,
        limit: usize,
        after: Option<ScheduleId>,
    ) -> Result<SchedulePage, StoreError> {
        let start = after.map(|id| keys::workspace_schedule(ws, id));
        self.schedules_page(ws, keys::WORKSPACE_SCHEDULE_PREFIX, start, limit)
            .await
    }

    /// A tenant's schedules in id (creation) order, from one partition Query.
    pub async fn list_schedules(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        limit: usize,
        after: Option<ScheduleId>,
    ) -> Result<SchedulePage, StoreError> {
        let start = after.map(|id| keys::schedule(ws, tenant, id));
        self.schedules_page(ws, &keys::schedules_prefix(tenant), start, limit)
            .await
    }

    /// One page of the schedules under `prefix` in the workspace's partition, after `start`,
    /// in id order, read consistently.
    async fn schedules_page(
        &self,
        ws: WorkspaceId,
        prefix: &str,
        start: Option<Key>,
        limit: usize,
    ) -> Result<SchedulePage, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND begins_with({}, {})",
            p.eq(keys::PK, string_attr(keys::workspace(ws).pk)),
            p.name(keys::SK),
            p.value(string_attr(prefix))
        );
        let q = Query::new(None, cond, p).consistent();
        let (items, last) = self
            .query_page(&q, Some(limit), start.map(|k| k.to_item()))
            .await?;
        let items: Vec<BackupSchedule> = from_items("schedule", items)?;
        let next = match (last, items.last()) {
            (Some(_), Some(last)) => Some(last.id),
            _ => None,
        };
        Ok(SchedulePage { items, next })
    }

    /// Replaces what the API owns of a schedule (everything but the scheduler's bookkeeping),
    /// if it is still at `observed.version`. Enabling puts it back in the due index at its
    /// stored next fire time; disabling takes it out.
    pub async fn update_schedule(
        &self,
        observed: &BackupSchedule,
        new: &BackupSchedule,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut changes = Changes::default()
            .set(&["name"], string_attr(new.name.clone()))
            .set(&["cadence"], value_attr("cadence", &new.cadence)?)
            .set(&["timezone"], string_attr(new.timezone.clone()))
            .set(&["types"], value_attr("types", &new.types)?)
            .set(&["enabled"], bool_attr(new.enabled))
            .set(&["next_fire_at"], time_attr(new.next_fire_at))
            .set(&["version"], number_attr(new.version))
            .set(&["updated_at"], time_attr(new.updated_at));
        // A workspace schedule's targets (a tenant's schedule has none, and gains none).
        if let Some(targets) = &new.targets {
            changes = changes.set(&["targets"], value_attr("targets", targets)?);
        }
        // A drift schedule has no retention (and never gains one: its kind never changes).
        changes = match &new.retention {
            Some(r) => changes.set(&["retention"], value_attr("retention", r)?),
            None => changes.remove(&["retention"]),
        };
        changes = if new.enabled {
            changes
                .set(
                    &[keys::GSI1_PK],
                    string_attr(keys::due_schedules(keys::schedule_shard(new.id))),
                )
                .set(
                    &[keys::GSI1_SK],
                    string_attr(keys::due_sort(new.next_fire_at, new.id)),
                )
        } else {
            changes.remove(&[keys::GSI1_PK]).remove(&[keys::GSI1_SK])
        };
        let mut p = Placeholders::default();
        let update = changes.render(&mut p);
        let cond = at_version(&mut p, observed.version);
        let item = self.tx_update(&schedule_key(observed), update, cond, p, true)?;
        self.guarded(observed.workspace_id, guard, item, audit)
            .await
    }

    /// Deletes a schedule if it is still at `observed.version`. Its runs stay; a scheduler
    /// transaction in flight fails its condition.
    pub async fn delete_schedule(
        &self,
        observed: &BackupSchedule,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut p = Placeholders::default();
        let cond = at_version(&mut p, observed.version);
        let item = self.tx_delete(&schedule_key(observed), cond, p, true)?;
        self.guarded(observed.workspace_id, guard, item, audit)
            .await
    }

    /// Member check + one conditional schedule write + audit, in one transaction.
    async fn guarded(
        &self,
        ws: WorkspaceId,
        guard: MemberGuard<'_>,
        write: TransactWriteItem,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let items = vec![self.member_check(ws, guard)?, write, self.put_audit(audit)?];
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }

    /// A start precondition: the schedule exists (run-now and retry name it).
    pub fn schedule_exists(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<Precondition, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.exists(keys::PK);
        Ok(Precondition::new(self.condition_check(
            keys::schedule(ws, tenant, id),
            cond,
            p,
        )?))
    }

    /// The schedules due at `now` in one shard of the due index, one page at a time
    /// (`start`: where the previous page ended).
    pub async fn due_schedules(
        &self,
        shard: u8,
        now: DateTime<Utc>,
        start: Option<Item>,
    ) -> Result<(Vec<BackupSchedule>, Option<Item>), StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {} <= {}",
            p.eq(keys::GSI1_PK, string_attr(keys::due_schedules(shard))),
            p.name(keys::GSI1_SK),
            p.value(string_attr(keys::due_sort_until(now)))
        );
        let q = Query::new(Some(Index::Gsi1), cond, p);
        let (items, last) = self.query_page(&q, None, start).await?;
        Ok((from_items("schedule", items)?, last))
    }

    /// The schedule's advance as a start precondition: the scheduled run exists only if this
    /// tick is the one that moves the schedule on.
    pub fn advance_precondition(
        &self,
        observed: &BackupSchedule,
        advance: &Advance,
    ) -> Result<Precondition, StoreError> {
        let (update, cond, p) = advance_write(observed, advance)?;
        Ok(Precondition::new(self.tx_update(
            &schedule_key(observed),
            update,
            cond,
            p,
            false,
        )?))
    }

    /// Moves a schedule on without a run (every slot skipped, or the slot fired before).
    /// `Ok(false)`: the schedule is not as observed any more (another tick, or a change).
    pub async fn advance_schedule(
        &self,
        observed: &BackupSchedule,
        advance: &Advance,
    ) -> Result<bool, StoreError> {
        let (update, cond, p) = advance_write(observed, advance)?;
        self.update_where(&schedule_key(observed), update, cond, p)
            .await
    }
}

/// Every shard of the due index.
pub fn due_shards() -> impl Iterator<Item = u8> {
    0..keys::SCHEDULE_SHARDS
}
