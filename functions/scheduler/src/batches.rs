//! A workspace schedule's slot: one batch over the workspace's active tenants that its
//! targets name (`all` or a tag) when the slot fires, written in one transaction with the
//! schedule's advance and the slot's strict lock. The relay then starts one
//! `backup_schedule.scheduled` run per tenant (`drift.scheduled` for a drift schedule), each
//! with its own strict (schedule, slot, tenant) identity: a slot never fires twice for any
//! tenant, however many ticks race.

use chrono::{DateTime, Utc};
use tenantops_aws::StoreError;
use tenantops_aws::batches::SlotBatch;
use tenantops_aws::schedules::{Advance, Fired};
use tenantops_aws::{AuditEntry, TenantStatus};
use tenantops_core::batch::{Batch, Targets, scheduled_identity};
use tenantops_core::schedule::{BackupSchedule, Due, SkippedSlot};
use tenantops_core::{BatchId, Initiator, ReasonCode};

use crate::{Deps, Fate, skipped_slots};

/// Fires `observed`'s `slot` as a batch over the tenants `targets` name now.
pub(crate) async fn fire_batch(
    observed: &BackupSchedule,
    targets: &Targets,
    slot: DateTime<Utc>,
    due: Due,
    deps: &Deps,
) -> Result<Fate, StoreError> {
    let ws = observed.workspace_id;
    let mut skipped = skipped_slots(&due, ReasonCode::ScheduleSlotMissed);
    // Who is targeted is read when the slot fires (a tenant tagged since is included); the
    // read decides no write's correctness: each child's start checks its tenant again.
    let tenants: Vec<_> = deps
        .store
        .list_tenants(ws)
        .await?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active)
        .filter(|t| match targets {
            Targets::All => true,
            Targets::Tag(tag) => t.tags.contains(tag),
            Targets::Tenants(ids) => ids.contains(&t.tenant_id),
        })
        .map(|t| t.tenant_id)
        .take(tenantops_core::batch::MAX_TENANTS)
        .collect();
    if tenants.is_empty() {
        // Nothing to back up: the slot is skipped, visibly.
        skipped.push(SkippedSlot {
            slot,
            reason: ReasonCode::BatchNoTenants,
        });
        let advance = Advance {
            next_fire_at: due.next,
            skipped,
            skipped_count: due.skipped_count + 1,
            fired: None,
        };
        return Ok(if deps.store.advance_schedule(observed, &advance).await? {
            Fate::Skipped(advance.skipped_count)
        } else {
            Fate::Lost
        });
    }
    let params = observed.kind.scheduled_params(observed.id, slot);
    let batch = Batch {
        id: BatchId::new(),
        workspace_id: ws,
        operation: params.operation(),
        params: params.to_value(),
        targets: targets.clone(),
        exclude: Vec::new(),
        tenants,
        created_by: Initiator::Scheduler,
        created_at: Utc::now(),
        cancelled_at: None,
        retry_of: None,
        scope: Some(observed.types.clone()),
        token_hash: None,
        execution_id: None,
        execute_of: None,
    };
    tracing::Span::current().record("batch_id", batch.id.to_string());
    let advance = Advance {
        next_fire_at: due.next,
        skipped,
        skipped_count: due.skipped_count,
        fired: Some((slot, Fired::Batch(batch.id))),
    };
    let audit = AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: ws,
        tenant_id: None,
        actor: Initiator::Scheduler.to_string(),
        action: "batch.create".into(),
        target: batch.id.to_string(),
        before: None,
        after: Some(serde_json::json!({
            "type": batch.operation,
            "backup_schedule_id": observed.id,
            "scheduled_for": tenantops_core::time::format(slot),
            "targets": batch.targets,
            "tenants": batch.tenants.len(),
        })),
        at: batch.created_at,
    };
    let identity = scheduled_identity(ws, observed.id, slot);
    let precondition = deps.store.advance_precondition(observed, &advance)?;
    match deps
        .store
        .create_scheduled_batch(&batch, precondition, &identity, &audit)
        .await?
    {
        SlotBatch::Created => Ok(Fate::FiredBatch {
            batch: batch.id,
            tenants: batch.tenants.len(),
            skipped: due.skipped_count,
        }),
        SlotBatch::AlreadyFired => {
            // The slot's batch exists (its children may long be done): move on without one.
            let advance = Advance {
                fired: None,
                ..advance
            };
            Ok(if deps.store.advance_schedule(observed, &advance).await? {
                Fate::AlreadyFired(due.skipped_count)
            } else {
                Fate::Lost
            })
        }
        SlotBatch::Lost => Ok(Fate::Lost),
    }
}
