//! Backup schedules in the table.
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

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use tenantops_core::schedule::{BackupSchedule, SKIPPED_KEPT, SkippedSlot};
use tenantops_core::{RunId, ScheduleId, TenantId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::keys;
use crate::store::{
    AuditEntry, Item, MemberGuard, Precondition, Rejection, Store, WriteError, build_error,
    failed_at, from_item, member_rejection, s, tenant_rejection, to_item, ts, with_key,
};

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
    /// The slot fired and its run, when one fires.
    pub fired: Option<(DateTime<Utc>, RunId)>,
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

impl Store {
    fn schedule_item(&self, sch: &BackupSchedule) -> Result<Item, StoreError> {
        let mut item = with_key(
            to_item("schedule", sch)?,
            &keys::schedule(sch.workspace_id, sch.tenant_id, sch.id),
        );
        if sch.enabled {
            item.insert(
                keys::GSI1_PK.into(),
                s(keys::due_schedules(keys::schedule_shard(sch.id))),
            );
            item.insert(
                keys::GSI1_SK.into(),
                s(keys::due_sort(sch.next_fire_at, sch.id)),
            );
        }
        Ok(item)
    }

    /// Creates a schedule: the caller's role and the tenant (active) are conditions of the
    /// same transaction, with the audit entry.
    pub async fn create_schedule(
        &self,
        sch: &BackupSchedule,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let items = vec![
            self.member_check(sch.workspace_id, guard)?,
            self.tenant_active_check(sch.workspace_id, sch.tenant_id)?,
            self.put_new(self.schedule_item(sch)?, false)?,
            self.put_audit(audit)?,
        ];
        match self.transact("TransactWriteItems", items).await? {
            None => Ok(()),
            Some(reasons) => Err(WriteError::Rejected(
                if let Some(r) = failed_at(&reasons, 0) {
                    member_rejection(r)
                } else if let Some(r) = failed_at(&reasons, 1) {
                    tenant_rejection(r)
                } else {
                    Rejection::Conflict
                },
            )),
        }
    }

    /// One schedule, read consistently (`None`: no such schedule for this tenant).
    pub async fn schedule(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(keys::schedule(ws, tenant, id).to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.map(|i| from_item("schedule", i)).transpose()
    }

    /// A tenant's schedules in id (creation) order, from one partition Query.
    pub async fn list_schedules(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        limit: usize,
        after: Option<ScheduleId>,
    ) -> Result<SchedulePage, StoreError> {
        let mut p = Placeholders::default();
        let prefix = keys::schedules_prefix(tenant);
        let cond = format!(
            "{} = {} AND begins_with({}, {})",
            p.name(keys::PK),
            p.value(s(keys::workspace(ws).pk)),
            p.name(keys::SK),
            p.value(s(prefix))
        );
        let start = after.map(|id| keys::schedule(ws, tenant, id).to_item());
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<BackupSchedule>("schedule", i))
            .collect::<Result<Vec<_>, _>>()?;
        let next = match (out.last_evaluated_key, items.last()) {
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
        let mut p = Placeholders::default();
        let mut sets = Vec::new();
        let mut set = |p: &mut Placeholders, attr: &str, v: AttributeValue| {
            let n = p.name(attr);
            let v = p.value(v);
            sets.push(format!("{n} = {v}"));
        };
        set(&mut p, "name", s(new.name.clone()));
        set(&mut p, "cadence", attr("cadence", &new.cadence)?);
        set(&mut p, "timezone", s(new.timezone.clone()));
        set(&mut p, "types", attr("types", &new.types)?);
        set(&mut p, "retention", attr("retention", &new.retention)?);
        set(&mut p, "enabled", AttributeValue::Bool(new.enabled));
        set(&mut p, "next_fire_at", ts(new.next_fire_at));
        set(&mut p, "version", number(new.version));
        set(&mut p, "updated_at", ts(new.updated_at));
        let mut removes = Vec::new();
        if new.enabled {
            set(
                &mut p,
                keys::GSI1_PK,
                s(keys::due_schedules(keys::schedule_shard(new.id))),
            );
            set(
                &mut p,
                keys::GSI1_SK,
                s(keys::due_sort(new.next_fire_at, new.id)),
            );
        } else {
            removes.push(p.name(keys::GSI1_PK));
            removes.push(p.name(keys::GSI1_SK));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let cond = format!(
            "attribute_exists({}) AND {} = {}",
            p.name(keys::PK),
            p.name("version"),
            p.value(number(observed.version))
        );
        let item = TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(self.table())
                    .set_key(Some(
                        keys::schedule(observed.workspace_id, observed.tenant_id, observed.id)
                            .to_item(),
                    ))
                    .update_expression(update)
                    .condition_expression(cond)
                    .set_expression_attribute_names(p.names())
                    .set_expression_attribute_values(p.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            )
            .build();
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
        let cond = format!(
            "attribute_exists({}) AND {} = {}",
            p.name(keys::PK),
            p.name("version"),
            p.value(number(observed.version))
        );
        let item = TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(
                        keys::schedule(observed.workspace_id, observed.tenant_id, observed.id)
                            .to_item(),
                    ))
                    .condition_expression(cond)
                    .set_expression_attribute_names(p.names())
                    .set_expression_attribute_values(p.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            )
            .build();
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
        match self.transact("TransactWriteItems", items).await? {
            None => Ok(()),
            Some(reasons) => Err(WriteError::Rejected(match failed_at(&reasons, 0) {
                Some(r) => member_rejection(r),
                None => Rejection::Conflict,
            })),
        }
    }

    /// A start precondition: the schedule exists (run-now and retry name it).
    pub fn schedule_exists(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<Precondition, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!("attribute_exists({})", p.name(keys::PK));
        Ok(Precondition(self.condition_check(
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
            "{} = {} AND {} <= {}",
            p.name(keys::GSI1_PK),
            p.value(s(keys::due_schedules(shard))),
            p.name(keys::GSI1_SK),
            p.value(s(keys::due_sort_until(now)))
        );
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<BackupSchedule>("schedule", i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, out.last_evaluated_key))
    }

    /// The scheduler's update of a schedule as it read it: next fire time, skipped slots and
    /// (when firing) the slot and run; conditional on `enabled`, `version` and `next_fire_at`.
    fn advance_update(
        &self,
        observed: &BackupSchedule,
        advance: &Advance,
    ) -> Result<Update, StoreError> {
        let mut p = Placeholders::default();
        let mut sets = Vec::new();
        let mut set = |p: &mut Placeholders, attr: &str, v: AttributeValue| {
            let n = p.name(attr);
            let v = p.value(v);
            sets.push(format!("{n} = {v}"));
        };
        set(&mut p, "next_fire_at", ts(advance.next_fire_at));
        set(
            &mut p,
            keys::GSI1_SK,
            s(keys::due_sort(advance.next_fire_at, observed.id)),
        );
        if !advance.skipped.is_empty() {
            let mut list = observed.skipped.clone();
            list.extend(advance.skipped.iter().cloned());
            let from = list.len().saturating_sub(SKIPPED_KEPT);
            let list = serde_dynamo::to_attribute_value::<_, AttributeValue>(&list[from..])
                .map_err(|e| StoreError::mapping("skipped slots", e))?;
            set(&mut p, "skipped", list);
            set(
                &mut p,
                "skipped_total",
                number(observed.skipped_total + advance.skipped_count),
            );
        }
        if let Some((slot, run)) = advance.fired {
            set(&mut p, "last_fired_slot", ts(slot));
            set(&mut p, "last_run_id", s(run.to_string()));
        }
        let update = format!("SET {}", sets.join(", "));
        let cond = format!(
            "{} = {} AND {} = {} AND {} = {}",
            p.name("enabled"),
            p.value(AttributeValue::Bool(true)),
            p.name("version"),
            p.value(number(observed.version)),
            p.name("next_fire_at"),
            p.value(ts(observed.next_fire_at)),
        );
        Update::builder()
            .table_name(self.table())
            .set_key(Some(
                keys::schedule(observed.workspace_id, observed.tenant_id, observed.id).to_item(),
            ))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .build()
            .map_err(build_error)
    }

    /// The schedule's advance as a start precondition: the scheduled run exists only if this
    /// tick is the one that moves the schedule on.
    pub fn advance_precondition(
        &self,
        observed: &BackupSchedule,
        advance: &Advance,
    ) -> Result<Precondition, StoreError> {
        Ok(Precondition(
            TransactWriteItem::builder()
                .update(self.advance_update(observed, advance)?)
                .build(),
        ))
    }

    /// Moves a schedule on without a run (every slot skipped, or the slot fired before).
    /// `Ok(false)`: the schedule is not as observed any more (another tick, or a change).
    pub async fn advance_schedule(
        &self,
        observed: &BackupSchedule,
        advance: &Advance,
    ) -> Result<bool, StoreError> {
        let u = self.advance_update(observed, advance)?;
        let result = self
            .client()
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = StoreError::dynamo("UpdateItem", e);
                if e.is_condition_check_failed() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn attr<T: serde::Serialize>(what: &'static str, v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::mapping(what, e))
}

/// Every shard of the due index.
pub fn due_shards() -> impl Iterator<Item = u8> {
    0..keys::SCHEDULE_SHARDS
}
