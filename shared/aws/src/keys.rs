//! Every key of the table is built here and nowhere else.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tenantops_core::{
    BackupSetId, BatchId, OperationType, RestoreId, RunId, TenantId, UserId, WebhookId, WorkspaceId,
};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1_PK: &str = "GSI1PK";
pub const GSI1_SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2_PK: &str = "GSI2PK";
pub const GSI2_SK: &str = "GSI2SK";
/// The sparse index of active (queued or running) runs by deadline, for the reaper.
pub const GSI3: &str = "GSI3";
pub const GSI3_PK: &str = "GSI3PK";
pub const GSI3_SK: &str = "GSI3SK";
/// Runs of a tenant by operation type, for "the latest run of this type" however many runs
/// of other types are newer.
pub const GSI4: &str = "GSI4";
pub const GSI4_PK: &str = "GSI4PK";
pub const GSI4_SK: &str = "GSI4SK";
/// The platform's index: every run (sharded) and every workspace, for the system plane's
/// cross-workspace lists.
pub const GSI5: &str = "GSI5";
pub const GSI5_PK: &str = "GSI5PK";
pub const GSI5_SK: &str = "GSI5SK";
/// Partitions of the platform's runs in GSI5, so no single index partition takes every
/// new run's write.
pub const PLATFORM_RUN_SHARDS: u8 = 4;
/// Partitions of GSI3, so no single index partition takes every active run's writes.
pub const ACTIVE_SHARDS: u8 = 4;
/// The table's TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The sort key of every run item.
pub const RUN_SORT: &str = "RUN";
/// The sort key of every workspace item.
pub const WORKSPACE_SORT: &str = "WORKSPACE";

pub fn run(run: RunId) -> Key {
    Key {
        pk: format!("RUN#{run}"),
        sk: RUN_SORT.into(),
    }
}

/// The GSI5 keys (partition, sort) of the item at `key`, if it is a run or a workspace: what
/// their writes set at creation, and what a migration gives items written before.
pub fn platform_index_of(key: &Key) -> Option<(String, String)> {
    if let Some(run) = key
        .pk
        .strip_prefix("RUN#")
        .and_then(|id| id.parse::<RunId>().ok())
    {
        return (*key == self::run(run)).then(|| (platform_runs(active_shard(run)), run_sort(run)));
    }
    let ws = key.pk.strip_prefix("WS#")?.parse::<WorkspaceId>().ok()?;
    (*key == workspace(ws)).then(|| (platform_workspaces(), workspace_sort(ws)))
}

/// GSI1 partition of a workspace's runs.
pub fn runs_of_workspace(ws: WorkspaceId) -> String {
    format!("WS#{ws}#RUNS")
}

/// GSI2 partition of a tenant's runs.
pub fn runs_of_tenant(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#RUNS")
}

/// GSI4 partition of a tenant's runs of one operation type.
pub fn runs_of_tenant_type(ws: WorkspaceId, tenant: TenantId, operation: OperationType) -> String {
    format!("WS#{ws}#T#{tenant}#TYPE#{operation}#RUNS")
}

/// GSI5 partition of one shard of every workspace's runs (the shard is the run's
/// [`active_shard`], from its id's random bits).
pub fn platform_runs(shard: u8) -> String {
    format!("RUNS#{shard}")
}

/// GSI5 partition of every workspace (few, and written rarely: one partition).
pub fn platform_workspaces() -> String {
    "WORKSPACES".into()
}

/// GSI5 sort key of a workspace: its id, which sorts by creation time.
pub fn workspace_sort(ws: WorkspaceId) -> String {
    ws.to_string()
}

/// The index sort key of a run: its id, which sorts by creation time.
pub fn run_sort(run: RunId) -> String {
    run.to_string()
}

/// The GSI3 shard of a run, from its id's random bits.
pub fn active_shard(run: RunId) -> u8 {
    u8::try_from(run.ulid().random() % u128::from(ACTIVE_SHARDS)).unwrap_or(0)
}

/// GSI3 partition of one shard of the active runs.
pub fn active_runs(shard: u8) -> String {
    format!("ACTIVE#{shard}")
}

/// GSI3 sort key of an active run: when it is due to move (the reaper adds its thresholds),
/// then which run. Timestamps sort as strings (`tenantops_core::time`), so "due by `t`" is
/// `GSI3SK <= {t}#~`.
pub fn active_sort(due: chrono::DateTime<chrono::Utc>, run: RunId) -> String {
    format!("{}#{run}", tenantops_core::time::format(due))
}

/// The GSI3 sort-key bound of everything due at or before `now`.
pub fn active_sort_until(now: chrono::DateTime<chrono::Utc>) -> String {
    // '~' sorts after every ULID character.
    format!("{}#~", tenantops_core::time::format(now))
}

pub fn lock(identity: &str) -> Key {
    Key {
        pk: format!("LOCK#{identity}"),
        sk: "LOCK".into(),
    }
}

/// A tenant's count of quota-limited starts in the window that began at `window_start`
/// (epoch seconds); it expires with its window (TTL).
pub fn start_quota(ws: WorkspaceId, tenant: TenantId, window_start: i64) -> Key {
    Key {
        pk: format!("WS#{ws}#T#{tenant}"),
        sk: format!("QUOTA#{window_start}"),
    }
}

/// The sort-key prefix of a workspace's batches (newest last, as ULIDs sort).
pub const BATCH_PREFIX: &str = "BATCH#";

/// A batch, in its workspace's partition: the relay's stream filter knows batches by this
/// sort key's prefix.
pub fn batch(ws: WorkspaceId, batch: BatchId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{BATCH_PREFIX}{batch}"),
    }
}

/// The partition of a batch's children, one item per tenant.
pub fn batch_children(batch: BatchId) -> String {
    format!("BATCH#{batch}")
}

/// A tenant's child of a batch: written once, by the start that created (or attached) it.
pub fn batch_child(batch: BatchId, tenant: TenantId) -> Key {
    Key {
        pk: batch_children(batch),
        sk: format!("CHILD#{tenant}"),
    }
}

pub fn workspace(ws: WorkspaceId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: WORKSPACE_SORT.into(),
    }
}

/// Partition of a workspace's run slots (its own, so no query of the workspace's partition
/// ever meets them).
pub fn slots_of(ws: WorkspaceId) -> String {
    format!("WS#{ws}#SLOTS")
}

/// One of a workspace's run slots (see `slots.rs`).
pub fn slot(ws: WorkspaceId, index: u32) -> Key {
    Key {
        pk: slots_of(ws),
        sk: format!("SLOT#{index:04}"),
    }
}

/// Sort-key prefix of a workspace's members.
pub fn member_prefix() -> String {
    "MEMBER#".into()
}

pub fn member(ws: WorkspaceId, user: &UserId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{}{user}", member_prefix()),
    }
}

/// GSI1 key of a membership: a user's workspaces.
pub fn memberships_of_user(user: &UserId) -> String {
    format!("USER#{user}")
}

pub fn membership_sort(ws: WorkspaceId) -> String {
    format!("WS#{ws}")
}

pub fn membership_sort_prefix() -> String {
    "WS#".into()
}

/// Sort-key prefix of a workspace's tenants.
pub fn tenant_prefix() -> String {
    "TENANT#".into()
}

/// A tenant's provider connection.
pub fn connection(ws: WorkspaceId, tenant: TenantId, connection_id: &str) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("CONN#{tenant}#{connection_id}"),
    }
}

pub fn tenant(ws: WorkspaceId, tenant: TenantId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{}{tenant}", tenant_prefix()),
    }
}

/// The claim that makes an Entra tenant belong to one workspace only.
pub fn entra_claim(entra_tenant_id: &str) -> Key {
    Key {
        pk: format!("ENTRA#{}", entra_tenant_id.to_ascii_lowercase()),
        sk: "CLAIM".into(),
    }
}

pub fn audit(ws: WorkspaceId, entry: ulid::Ulid) -> Key {
    Key {
        pk: format!("WS#{ws}#AUDIT"),
        sk: entry.to_string(),
    }
}

/// A tenant's observed objects of one type (last inventory).
pub fn inventory_of(ws: WorkspaceId, tenant: TenantId, object_type: &str) -> String {
    format!("WS#{ws}#T#{tenant}#INV#{object_type}")
}

/// The cached directory groups of a tenant.
pub fn groups_of(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#GROUPS")
}

/// The cached role definitions of a tenant.
pub fn role_definitions_of(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#ROLES")
}

/// Where a tenant's sync state (delta links) lives.
pub fn sync_state(ws: WorkspaceId, tenant: TenantId, what: &str) -> Key {
    Key {
        pk: format!("WS#{ws}#T#{tenant}"),
        sk: format!("SYNC#{what}"),
    }
}

/// A user's notifications, newest last by ULID.
pub fn notifications_of(user: &UserId) -> String {
    format!("USER#{user}#NOTIFY")
}

/// A restore (its preview, confirmation hash and status), next to the tenant's sync state.
pub fn restore(ws: WorkspaceId, tenant: TenantId, restore: RestoreId) -> Key {
    Key {
        pk: format!("WS#{ws}#T#{tenant}"),
        sk: format!("RESTORE#{restore}"),
    }
}

/// The planned items of a restore; each is also its own idempotency record at execution.
pub fn restore_item(ws: WorkspaceId, tenant: TenantId, restore: RestoreId, index: u32) -> Key {
    Key {
        pk: restore_items_of(ws, tenant, restore),
        sk: format!("{index:05}"),
    }
}

pub fn restore_items_of(ws: WorkspaceId, tenant: TenantId, restore: RestoreId) -> String {
    format!("WS#{ws}#T#{tenant}#RESTORE#{restore}")
}

/// The tenant's inventory stamp: bumped by every inventory write, so a preview can require
/// that the inventory it was computed on is still the latest.
pub fn inventory_stamp(ws: WorkspaceId, tenant: TenantId) -> Key {
    sync_state(ws, tenant, "INVENTORY_STAMP")
}

/// A tenant's backup sets, by set id (a ULID: newest first is a backwards query).
pub fn backup_sets_of(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#BACKUPS")
}

pub fn backup_set(ws: WorkspaceId, tenant: TenantId, set: BackupSetId) -> Key {
    Key {
        pk: backup_sets_of(ws, tenant),
        sk: set.to_string(),
    }
}

/// The manifest entries of one backup set.
pub fn manifest_entries_of(ws: WorkspaceId, tenant: TenantId, set: BackupSetId) -> String {
    format!("WS#{ws}#T#{tenant}#SET#{set}")
}

pub fn manifest_entry(
    ws: WorkspaceId,
    tenant: TenantId,
    set: BackupSetId,
    object_type: &str,
    object_id: &str,
) -> Key {
    Key {
        pk: manifest_entries_of(ws, tenant, set),
        sk: format!("{object_type}#{object_id}"),
    }
}

/// The newest snapshot of one object of a tenant (hash, set), moved forward by each backup.
pub fn latest_snapshot(
    ws: WorkspaceId,
    tenant: TenantId,
    object_type: &str,
    object_id: &str,
) -> Key {
    Key {
        pk: format!("WS#{ws}#T#{tenant}#LATEST"),
        sk: format!("{object_type}#{object_id}"),
    }
}

/// A tenant's drift reports, by report id (its run's ULID: newest first is a backwards query).
pub fn drift_reports_of(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#DRIFT")
}

pub fn drift_report(ws: WorkspaceId, tenant: TenantId, report: RunId) -> Key {
    Key {
        pk: drift_reports_of(ws, tenant),
        sk: report.to_string(),
    }
}

/// The items of one drift report, by index.
pub fn drift_items_of(ws: WorkspaceId, tenant: TenantId, report: RunId) -> String {
    format!("WS#{ws}#T#{tenant}#DRIFT#{report}")
}

pub fn drift_item(ws: WorkspaceId, tenant: TenantId, report: RunId, index: u32) -> Key {
    Key {
        pk: drift_items_of(ws, tenant, report),
        sk: format!("{index:05}"),
    }
}

/// The backup sets referencing each of a tenant's snapshots.
pub fn snapshot_refs_of(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("WS#{ws}#T#{tenant}#SNAPREFS")
}

pub fn snapshot_refs(ws: WorkspaceId, tenant: TenantId, hash: &str) -> Key {
    Key {
        pk: snapshot_refs_of(ws, tenant),
        sk: hash.to_owned(),
    }
}

/// Partitions of the due-schedules index, so no single index partition takes every write.
pub const SCHEDULE_SHARDS: u8 = 4;

/// A tenant's backup schedule, next to its tenant (a tenant's schedules are one Query).
pub fn schedule(ws: WorkspaceId, tenant: TenantId, id: tenantops_core::ScheduleId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{}{id}", schedules_prefix(tenant)),
    }
}

/// A workspace's backup schedule (over its tenants), in the workspace's partition.
pub fn workspace_schedule(ws: WorkspaceId, id: tenantops_core::ScheduleId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{WORKSPACE_SCHEDULE_PREFIX}{id}"),
    }
}

/// Sort-key prefix of a workspace's own schedules.
pub const WORKSPACE_SCHEDULE_PREFIX: &str = "WSCHEDULE#";

/// Sort-key prefix of a tenant's schedules.
pub fn schedules_prefix(tenant: TenantId) -> String {
    format!("SCHEDULE#{tenant}#")
}

/// The due-index shard of a schedule, from its id's random bits.
pub fn schedule_shard(id: tenantops_core::ScheduleId) -> u8 {
    u8::try_from(id.ulid().random() % u128::from(SCHEDULE_SHARDS)).unwrap_or(0)
}

/// GSI1 partition of one shard of the enabled schedules.
pub fn due_schedules(shard: u8) -> String {
    format!("SCHEDULES#DUE#{shard}")
}

/// GSI1 sort key of an enabled schedule: its next fire time, then its id.
pub fn due_sort(
    next_fire_at: chrono::DateTime<chrono::Utc>,
    id: tenantops_core::ScheduleId,
) -> String {
    format!("{}#{id}", tenantops_core::time::format(next_fire_at))
}

/// The GSI1 sort-key bound of every schedule due at or before `now`.
pub fn due_sort_until(now: chrono::DateTime<chrono::Utc>) -> String {
    // '~' sorts after every ULID character.
    format!("{}#~", tenantops_core::time::format(now))
}

/// Sort-key prefix of a workspace's webhook subscriptions.
pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";

/// A webhook subscription, in its workspace's partition (a workspace's subscriptions are one
/// Query).
pub fn webhook(ws: WorkspaceId, id: WebhookId) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk: format!("{WEBHOOK_PREFIX}{id}"),
    }
}

/// A workspace's count of webhook subscriptions (its own partition), which creates and
/// deletes move in their transactions, so the limit holds however many race.
pub fn webhook_count(ws: WorkspaceId) -> Key {
    Key {
        pk: format!("WS#{ws}#WEBHOOKS"),
        sk: "COUNT".into(),
    }
}

/// The partition of a subscription's delivery log.
pub fn webhook_deliveries_of(ws: WorkspaceId, id: WebhookId) -> String {
    format!("WS#{ws}#WEBHOOK#{id}")
}

/// One delivery of a subscription's log, by creation time then delivery id (newest first is
/// a backwards query). It expires through the table's TTL.
pub fn webhook_delivery(ws: WorkspaceId, id: WebhookId, sort: &str) -> Key {
    Key {
        pk: webhook_deliveries_of(ws, id),
        sk: sort.to_owned(),
    }
}

/// The sort key of a delivery created at `created_at`.
pub fn webhook_delivery_sort(created_at: chrono::DateTime<chrono::Utc>, delivery: &str) -> String {
    format!("{}#{delivery}", tenantops_core::time::format(created_at))
}
