//! Retention of a schedule's backup sets, run after each scheduled backup has written its set.
//!
//! A set of the schedule is kept when any rule keeps it: it is among the newest `keep_last`,
//! or younger than `keep_days`. Never expired, whatever the rules: the set just written, the
//! tenant's newest complete set (its last successful backup) and the schedule's own. An expired set first
//! disappears from listings (marked, with its audit entry, actor `system:retention`), then its
//! snapshots lose their reference to it and its entries go, then its manifest object and
//! finally its item; a crash in between is finished by the next pass. An object (snapshot or
//! manifest) is deleted only once its Object Lock retention has passed, a snapshot only when
//! no remaining set references it; still-locked objects stay for a later pass (an empty
//! references item marks a snapshot, the still-marked set item its manifest).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tenantops_aws::snapshots::snapshot_key;
use tenantops_aws::{AuditEntry, SnapshotError, StoreError};
use tenantops_core::backup::{BackupSet, BackupSetStatus};
use tenantops_core::schedule::{Retention, ScheduleKind};
use tenantops_core::{BackupSetId, Run, ScheduleId, TenantId, WorkspaceId};

use crate::job::Deps;

/// The actor of retention's audit entries.
pub const ACTOR: &str = "system:retention";

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshots(#[from] SnapshotError),
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub expired_sets: Vec<BackupSetId>,
    pub deleted_snapshots: u64,
    /// Unreferenced snapshots whose Object Lock retention has not passed yet.
    pub locked_snapshots: u64,
    /// Manifests of expired sets whose Object Lock retention has not passed yet.
    pub locked_manifests: u64,
}

impl Pass {
    fn summary(&self) -> Value {
        json!({
            "expired_sets": self.expired_sets.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "deleted_snapshots": self.deleted_snapshots,
            "locked_snapshots": self.locked_snapshots,
            "locked_manifests": self.locked_manifests,
        })
    }
}

/// Applies the schedule's retention after a scheduled backup wrote `written`. `None` when
/// the run names no schedule with a retention.
pub async fn apply(
    run: &Run,
    written: &BackupSet,
    deps: &Deps,
) -> Result<Option<Value>, RetentionError> {
    let Some(schedule) = written.schedule_id else {
        return Ok(None);
    };
    let Some(retention) = schedule_retention(run, schedule, deps).await? else {
        return Ok(None);
    };
    let pass = expire(
        deps,
        run.workspace_id,
        run.tenant_id,
        schedule,
        retention,
        written.id,
        Utc::now(),
    )
    .await?;
    Ok(Some(pass.summary()))
}

/// The retention the schedule has now.
async fn schedule_retention(
    run: &Run,
    schedule: ScheduleId,
    deps: &Deps,
) -> Result<Option<Retention>, RetentionError> {
    // A tenant's schedule, else (a child of a workspace schedule's batch) the workspace's.
    let own = deps
        .store
        .schedule(run.workspace_id, run.tenant_id, schedule)
        .await?;
    let schedule = match own {
        Some(s) => Some(s),
        None => {
            deps.store
                .workspace_schedule(run.workspace_id, schedule)
                .await?
        }
    };
    // Only a backup schedule prunes: a drift schedule's sets are none (it writes no set), and
    // a set that names one (never written today) is left alone.
    Ok(schedule
        .filter(|s| s.kind == ScheduleKind::Backup)
        .and_then(|s| s.retention))
}

/// Removes what remains of an expiring set: references and entries, then its manifest once
/// Object Lock allows, then its item. A locked manifest keeps the (unlisted) item for a later
/// pass.
async fn finish(
    deps: &Deps,
    set: &BackupSet,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<(), RetentionError> {
    deps.store.finish_expiry(set).await?;
    if let Some(v) = deps.snapshots.version(&set.manifest_key).await? {
        if v.retain_until.is_some_and(|until| until > now) {
            pass.locked_manifests += 1;
            return Ok(());
        }
        deps.snapshots.delete_version(&set.manifest_key, &v).await?;
    }
    deps.store.forget_backup_set(set).await?;
    Ok(())
}

/// Which of a schedule's sets (newest first) retention keeps.
pub fn kept(
    sets: &[BackupSet],
    schedule: ScheduleId,
    retention: Retention,
    written: BackupSetId,
    now: DateTime<Utc>,
) -> Vec<BackupSetId> {
    // The tenant's last successful backup, and the schedule's own.
    let last_successful = sets
        .iter()
        .find(|s| s.status == BackupSetStatus::Complete)
        .map(|s| s.id);
    let schedule_last_successful = sets
        .iter()
        .find(|s| s.schedule_id == Some(schedule) && s.status == BackupSetStatus::Complete)
        .map(|s| s.id);
    let mut keep = Vec::new();
    let ours = sets.iter().filter(|s| s.schedule_id == Some(schedule));
    for (i, s) in ours.enumerate() {
        let by_count = retention
            .keep_last
            .is_some_and(|n| i < usize::try_from(n).unwrap_or(usize::MAX));
        let by_age = retention
            .keep_days
            .is_some_and(|d| s.created_at > now - Duration::days(i64::from(d)));
        let successful = Some(s.id) == last_successful || Some(s.id) == schedule_last_successful;
        if by_count || by_age || s.id == written || successful {
            keep.push(s.id);
        }
    }
    keep
}

/// One retention pass over a tenant for a schedule: finishes expiries a crash interrupted,
/// expires the schedule's sets that no rule keeps, then deletes unreferenced, unlocked
/// snapshot objects.
pub async fn expire(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
    schedule: ScheduleId,
    retention: Retention,
    written: BackupSetId,
    now: DateTime<Utc>,
) -> Result<Pass, RetentionError> {
    let mut pass = Pass::default();
    let stored = deps.store.all_backup_sets(ws, tenant).await?;
    let mut live = Vec::new();
    for s in stored {
        if s.expiring {
            finish(deps, &s.set, now, &mut pass).await?;
        } else {
            live.push(s.set);
        }
    }
    let keep = kept(&live, schedule, retention, written, now);
    for set in live
        .iter()
        .filter(|s| s.schedule_id == Some(schedule) && !keep.contains(&s.id))
    {
        let audit = AuditEntry {
            id: ulid::Ulid::new(),
            workspace_id: ws,
            tenant_id: Some(tenant),
            actor: ACTOR.into(),
            action: "backup_set.expire".into(),
            target: set.id.to_string(),
            before: serde_json::to_value(set).ok(),
            after: None,
            at: now,
        };
        if deps.store.begin_expiry(set, &audit, now).await? {
            tracing::info!(backup_set = %set.id, "backup set expired");
            pass.expired_sets.push(set.id);
            finish(deps, set, now, &mut pass).await?;
        }
    }
    for hash in deps.store.unreferenced_snapshots(ws, tenant, now).await? {
        let key = snapshot_key(ws, tenant, &hash);
        let version = deps.snapshots.version(&key).await?;
        if let Some(v) = &version
            && v.retain_until.is_some_and(|until| until > now)
        {
            pass.locked_snapshots += 1;
            continue;
        }
        if !deps
            .store
            .claim_snapshot_deletion(ws, tenant, &hash, now)
            .await?
        {
            // A backup referenced it again meanwhile.
            continue;
        }
        if let Some(v) = &version
            && let Err(e) = deps.snapshots.delete_version(&key, v).await
        {
            tracing::warn!(error = %e, code = ?e.code(), "snapshot not deleted; a later pass retries");
            deps.store
                .release_snapshot_deletion(ws, tenant, &hash, now)
                .await?;
            continue;
        }
        deps.store.forget_snapshot(ws, tenant, &hash, now).await?;
        pass.deleted_snapshots += 1;
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantops_core::RunId;

    fn set(
        schedule: ScheduleId,
        age_days: i64,
        status: BackupSetStatus,
        now: DateTime<Utc>,
    ) -> BackupSet {
        let created_at = now - Duration::days(age_days);
        let ulid =
            ulid::Ulid::from_parts(u64::try_from(created_at.timestamp_millis()).unwrap_or(0), 0);
        BackupSet {
            id: BackupSetId::from_ulid(ulid),
            workspace_id: WorkspaceId::new(),
            tenant_id: TenantId::new(),
            run_id: RunId::new(),
            schedule_id: Some(schedule),
            status,
            types: vec![],
            object_count: 0,
            manifest_key: String::new(),
            manifest_hash: String::new(),
            created_at,
        }
    }

    #[test]
    fn keep_last_keeps_the_newest_and_the_last_complete_set() {
        let now = Utc::now();
        let s = ScheduleId::new();
        // Newest first: two partial sets, then complete ones.
        let sets = vec![
            set(s, 0, BackupSetStatus::Partial, now),
            set(s, 1, BackupSetStatus::Partial, now),
            set(s, 2, BackupSetStatus::Complete, now),
            set(s, 3, BackupSetStatus::Complete, now),
        ];
        let retention = Retention {
            keep_last: Some(1),
            keep_days: None,
        };
        let keep = kept(&sets, s, retention, sets[0].id, now);
        assert_eq!(keep, vec![sets[0].id, sets[2].id]);
    }

    #[test]
    fn the_schedules_last_complete_set_stays_when_another_schedule_succeeded_later() {
        let now = Utc::now();
        let (s, other) = (ScheduleId::new(), ScheduleId::new());
        let sets = vec![
            set(other, 0, BackupSetStatus::Complete, now),
            set(s, 1, BackupSetStatus::Partial, now),
            set(s, 2, BackupSetStatus::Complete, now),
            set(s, 3, BackupSetStatus::Complete, now),
        ];
        let retention = Retention {
            keep_last: Some(1),
            keep_days: None,
        };
        let keep = kept(&sets, s, retention, sets[1].id, now);
        assert_eq!(keep, vec![sets[1].id, sets[2].id]);
    }

    #[test]
    fn keep_days_keeps_younger_sets_and_ignores_other_schedules() {
        let now = Utc::now();
        let (s, other) = (ScheduleId::new(), ScheduleId::new());
        let sets = vec![
            set(s, 0, BackupSetStatus::Complete, now),
            set(other, 1, BackupSetStatus::Complete, now),
            set(s, 5, BackupSetStatus::Complete, now),
            set(s, 10, BackupSetStatus::Complete, now),
        ];
        let retention = Retention {
            keep_last: None,
            keep_days: Some(7),
        };
        let keep = kept(&sets, s, retention, sets[0].id, now);
        assert_eq!(keep, vec![sets[0].id, sets[2].id]);
    }
}
