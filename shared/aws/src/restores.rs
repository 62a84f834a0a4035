//! Restores in DynamoDB: the preview (one record, created `previewing` in its
//! `restore.preview` run's start transaction, plus one item per selected object written by
//! that run), the preconditions that make "execute" a single conditional start, the per-item
//! execution records that make a redelivered or retried restore never write an object twice,
//! and the tenant's inventory stamp.
//! The preview's own writes and the paged read of items are in [`crate::previews`].
//!
//! | item | PK | SK |
//! |---|---|---|
//! | restore | `WS#{ws}#T#{tenant}` | `RESTORE#{restore}` |
//! | restore item | `WS#{ws}#T#{tenant}#RESTORE#{restore}` | `{index:05}` |
//! | inventory stamp | `WS#{ws}#T#{tenant}` | `SYNC#INVENTORY_STAMP` |

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tenantops_core::restore::{
    Action, Blocker, DiffBase, FieldChange, Mapping, PREVIEW_VALIDITY, TargetResolution,
};
use tenantops_core::{
    BackupSetId, Failure, RestoreId, RunId, RunStatus, TenantId, UserId, WorkspaceId,
};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{bool_attr, from_items, number_attr, string_attr, time_attr, value_attr};
use crate::keys::{self, Key};
use crate::runs::status_attr;
use crate::table::Store;
use crate::transactions::{Precondition, committed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    /// Its `restore.preview` run is computing the items; not yet executable.
    Previewing,
    /// Computed; may be executed with its confirmation token while current.
    Previewed,
    /// A `restore.execute` run owns it.
    Executing,
    /// Its run wrote what it could; see the items.
    Completed,
}

impl RestoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStatus::Previewing => "previewing",
            RestoreStatus::Previewed => "previewed",
            RestoreStatus::Executing => "executing",
            RestoreStatus::Completed => "completed",
        }
    }
}

/// How many items the preview plans per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub create: u32,
    pub update: u32,
    pub skip_unchanged: u32,
    pub unresolved_targets: u32,
    pub blocked_items: u32,
}

/// A restore: what was previewed, and whether and by which run it was executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub restore_id: RestoreId,
    pub workspace_id: WorkspaceId,
    /// The destination: the tenant written to, whose runs preview and execute it.
    pub tenant_id: TenantId,
    /// A restore into another tenant of the workspace: the backup set's tenant. `None`: the
    /// set is the destination's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_tenant_id: Option<TenantId>,
    pub backup_set_id: BackupSetId,
    pub created_by: UserId,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    /// Until when execution is allowed (the preview's completion + the preview validity).
    #[serde(with = "tenantops_core::time")]
    pub expires_at: DateTime<Utc>,
    /// The `restore.preview` run that computes the items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_run_id: Option<RunId>,
    /// The selected objects; `None` is the whole backup set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Vec<SelectedItem>>,
    pub status: RestoreStatus,
    /// sha256 of the confirmation token (the token itself is returned once, never stored).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub token_hash: String,
    pub mapping: Mapping,
    pub item_count: u32,
    pub summary: PlanSummary,
    /// Why it cannot be executed; empty when it can.
    pub blockers: Vec<Blocker>,
    pub executable: bool,
    /// Items of high-risk types: executing them needs the workspace setting, re-checked at
    /// execution.
    pub high_risk_items: u32,
    /// The tenant's inventory stamp the preview was computed on.
    pub inventory_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(default, with = "tenantops_core::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// One object a preview selected by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectedItem {
    pub object_type: String,
    pub object_id: String,
}

/// Where one item is in its execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    /// A worker claimed it; a write may have happened (see `written_id` and `step`).
    Writing,
    Done,
    Failed,
    Skipped,
    /// Not attempted: its run was cancelled first.
    Cancelled,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Writing => "writing",
            ItemStatus::Done => "done",
            ItemStatus::Failed => "failed",
            ItemStatus::Skipped => "skipped",
            ItemStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped | ItemStatus::Cancelled
        )
    }
}

/// One selected snapshot object: its plan, and its execution record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreItem {
    pub index: u32,
    pub object_type: String,
    /// The object's id when it was backed up.
    pub object_id: String,
    pub name: String,
    pub hash: String,
    pub snapshot_key: String,
    pub action: Action,
    pub diff_base: DiffBase,
    /// The diff, or (when `diff_truncated`) its capped excerpt.
    pub diff: Vec<FieldChange>,
    #[serde(default)]
    pub diff_truncated: bool,
    /// The snapshot bucket's key of the whole diff, when the item keeps only an excerpt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_key: Option<String>,
    pub targets: Vec<TargetResolution>,
    pub blockers: Vec<Blocker>,
    /// Ids of objects of the type with the same name in the preview's inventory: an object
    /// found under that name later and not among these was created by this restore.
    #[serde(default)]
    pub preexisting_same_name: Vec<String>,
    pub status: ItemStatus,
    /// The worker attempt that holds the item while `writing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// The id of the object written in the tenant (created or updated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_id: Option<String>,
    /// The last write step that completed (`created`, `values`, `assigned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// The outcome of claiming an item for execution.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemClaim {
    /// Ours now. `resumed`: an earlier attempt held it (it may have written already).
    Claimed {
        item: Box<RestoreItem>,
        resumed: bool,
    },
    /// Already finished by an earlier attempt.
    Finished(Box<RestoreItem>),
}

/// A run's claim on its items: the worker attempt that holds the run's lease.
#[derive(Debug, Clone, Copy)]
pub struct ItemLease<'a> {
    pub workspace: WorkspaceId,
    pub tenant: TenantId,
    pub restore: RestoreId,
    pub run: RunId,
    pub owner: &'a str,
}

pub(crate) fn restore_item_key(lease: &ItemLease<'_>, index: u32) -> Key {
    keys::restore_item(lease.workspace, lease.tenant, lease.restore, index)
}

impl Store {
    pub async fn get_restore(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        restore: RestoreId,
    ) -> Result<Option<RestoreRecord>, StoreError> {
        self.get_as("restore", &keys::restore(ws, tenant, restore))
            .await
    }

    /// The items of a restore, in index order.
    pub async fn restore_items(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        restore: RestoreId,
    ) -> Result<Vec<RestoreItem>, StoreError> {
        let items = self
            .partition(keys::restore_items_of(ws, tenant, restore), None, None)
            .await?;
        from_items("restore item", items)
    }

    pub async fn restore_item(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        restore: RestoreId,
        index: u32,
    ) -> Result<Option<RestoreItem>, StoreError> {
        self.get_as(
            "restore item",
            &keys::restore_item(ws, tenant, restore, index),
        )
        .await
    }

    /// The tenant's inventory stamp (0 before the first inventory write).
    pub fn inventory_version(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + use<> {
        self.get_item(&keys::inventory_stamp(ws, tenant), true)
            .map(|found| {
                Ok(found?
                    .and_then(|i| i.get("version").and_then(|v| v.as_n().ok()).cloned())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0))
            })
    }

    /// Moves the tenant's inventory stamp on: every write of inventory calls this, so a
    /// preview computed before it can no longer be executed.
    pub async fn bump_inventory_version(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let update = Changes::default()
            .add(&["version"], number_attr(1))
            .render(&mut p);
        self.update_if(&keys::inventory_stamp(ws, tenant), update, None, p, false)
            .await?;
        Ok(())
    }

    /// What must hold for `run` to execute the restore, checked in the run's start
    /// transaction, in this order (see [`ExecutePrecondition`]):
    /// 0. the restore exists, the token hash matches, and it is either a current, executable
    ///    preview, or already executing (then the start is a dedupe hit on its run's lock, or,
    ///    if that run ended without finishing the restore, a resumption); it moves to
    ///    `executing` with the run's id;
    /// 1. (unless it is already executing, confirmed under these) the tenant's inventory
    ///    stamp is the one the preview was computed on, and moves on (so no other preview
    ///    computed on it executes after this one);
    /// 2. (only if it has high-risk items) the workspace still allows high-risk restores.
    ///
    /// Each comes with what it checks, to explain a refusal.
    pub fn execute_preconditions(
        &self,
        c: &ExecuteConditions<'_>,
    ) -> Result<Vec<(ExecutePrecondition, Precondition)>, StoreError> {
        let ExecuteConditions {
            workspace: ws,
            tenant,
            restore,
            token_hash,
            run,
            inventory_version,
            high_risk,
            now,
        } = *c;
        let mut p = Placeholders::default();
        let status = p.name("status");
        let cond = format!(
            "{pk} AND {hash} AND (({status} = {previewed} AND {exp} >= {now} AND {exec}) OR {status} = {executing})",
            pk = p.exists(keys::PK),
            hash = p.eq("token_hash", string_attr(token_hash)),
            previewed = p.value(string_attr(RestoreStatus::Previewed.as_str())),
            exp = p.name("expires_at"),
            now = p.value(time_attr(now)),
            exec = p.eq("executable", bool_attr(true)),
            executing = p.value(string_attr(RestoreStatus::Executing.as_str())),
        );
        let update = Changes::default()
            .set(&["status"], string_attr(RestoreStatus::Executing.as_str()))
            .set(&["run_id"], string_attr(run.to_string()))
            .render(&mut p);
        let restore_update =
            self.tx_update(&keys::restore(ws, tenant, restore), update, cond, p, false)?;

        let mut out = vec![(
            ExecutePrecondition::Restore,
            Precondition::new(restore_update),
        )];
        if let Some(version) = inventory_version {
            // Required unchanged, and moved on in the same write: the restore is about to
            // change the tenant, so every other preview computed on this stamp (a competing
            // restore that would create the same absent object again) is refused from now on.
            let mut p = Placeholders::default();
            let cond = if version == 0 {
                p.absent(keys::PK)
            } else {
                p.eq("version", number_attr(version))
            };
            let update = Changes::default()
                .add(&["version"], number_attr(1))
                .render(&mut p);
            let stamp =
                self.tx_update(&keys::inventory_stamp(ws, tenant), update, cond, p, false)?;
            out.push((
                ExecutePrecondition::InventoryStamp,
                Precondition::after_dedupe(stamp),
            ));
        }
        if high_risk {
            let mut p = Placeholders::default();
            let cond = format!(
                "{} = {}",
                p.path(&["settings", "restore_high_risk"]),
                p.value(bool_attr(true))
            );
            out.push((
                ExecutePrecondition::HighRiskSetting,
                Precondition::after_dedupe(self.condition_check(keys::workspace(ws), cond, p)?),
            ));
        }
        Ok(out)
    }

    /// Takes an item for execution by the attempt holding the run's lease. The item's
    /// current state is read, then restated as the write's condition (with the lease), so two
    /// attempts can never both hold it.
    pub async fn claim_restore_item(
        &self,
        lease: &ItemLease<'_>,
        index: u32,
    ) -> Result<ItemClaim, StoreError> {
        let key = restore_item_key(lease, index);
        let item: RestoreItem = self
            .get_as("restore item", &key)
            .await?
            .ok_or(StoreError::TransitionRefused)?;
        if item.status.is_final() {
            return Ok(ItemClaim::Finished(Box::new(item)));
        }
        let mut p = Placeholders::default();
        let status = p.eq("status", string_attr(item.status.as_str()));
        let cond = match &item.owner {
            Some(o) => format!("{status} AND {}", p.eq("owner", string_attr(o.as_str()))),
            None => format!("{status} AND {}", p.absent("owner")),
        };
        let changes = Changes::default()
            .set(&["status"], string_attr(ItemStatus::Writing.as_str()))
            .set(&["owner"], string_attr(lease.owner))
            .add(&["attempts"], number_attr(1));
        self.item_write(lease, key, changes, cond, p, None).await?;
        let resumed = item.status == ItemStatus::Writing;
        let mut item = item;
        item.status = ItemStatus::Writing;
        item.owner = Some(lease.owner.to_owned());
        item.attempts += 1;
        Ok(ItemClaim::Claimed {
            item: Box::new(item),
            resumed,
        })
    }

    /// Records a completed write step of a held item (e.g. the id a create returned), before
    /// the next step, so a later attempt resumes after it instead of repeating it.
    pub async fn record_restore_step(
        &self,
        lease: &ItemLease<'_>,
        index: u32,
        written_id: &str,
        step: &str,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let cond = held(lease, &mut p);
        let changes = Changes::default()
            .set(&["written_id"], string_attr(written_id))
            .set(&["step"], string_attr(step));
        self.item_write(
            lease,
            restore_item_key(lease, index),
            changes,
            cond,
            p,
            None,
        )
        .await
    }

    /// Finishes a held item (done, failed or skipped), with the audit entry of the object it
    /// wrote, in one transaction.
    pub async fn finish_restore_item(
        &self,
        lease: &ItemLease<'_>,
        index: u32,
        status: ItemStatus,
        written_id: Option<&str>,
        failure: Option<&Failure>,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let cond = held(lease, &mut p);
        let mut changes = Changes::default().set(&["status"], string_attr(status.as_str()));
        if let Some(id) = written_id {
            changes = changes.set(&["written_id"], string_attr(id));
        }
        if let Some(f) = failure {
            changes = changes.set(&["failure"], value_attr("restore item failure", f)?);
        }
        self.item_write(
            lease,
            restore_item_key(lease, index),
            changes,
            cond,
            p,
            audit,
        )
        .await
    }

    /// An item update conditioned on `cond` and on the run's lease being the attempt's.
    async fn item_write(
        &self,
        lease: &ItemLease<'_>,
        key: Key,
        changes: Changes,
        cond: String,
        mut p: Placeholders,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let update = changes.render(&mut p);
        let mut tx = vec![
            self.run_held(lease)?,
            self.tx_update(&key, update, cond, p, false)?,
        ];
        if let Some(a) = audit {
            tx.push(self.put_audit(a)?);
        }
        committed(self.transact(tx).await?)
    }

    /// The condition every item write carries: the run is still running, under the
    /// attempt's lease. A run that finished (by its own attempt, a cancel, or the reaper)
    /// may keep its last lease owner, so the owner alone would let a late attempt write.
    fn run_held(&self, lease: &ItemLease<'_>) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.eq("lease_owner", string_attr(lease.owner)),
            p.eq("status", status_attr(RunStatus::Running))
        );
        self.condition_check(keys::run(lease.run), cond, p)
    }

    /// Marks items its run never reached (still `pending`) `cancelled`, under the run's lease,
    /// in transactions of [`crate::previews::ITEMS_PER_WRITE`].
    pub async fn cancel_restore_items(
        &self,
        lease: &ItemLease<'_>,
        indexes: &[u32],
    ) -> Result<(), StoreError> {
        for chunk in indexes.chunks(crate::previews::ITEMS_PER_WRITE) {
            let mut tx = vec![self.run_held(lease)?];
            for index in chunk {
                let mut p = Placeholders::default();
                let cond = p.eq("status", string_attr(ItemStatus::Pending.as_str()));
                let update = Changes::default()
                    .set(&["status"], string_attr(ItemStatus::Cancelled.as_str()))
                    .render(&mut p);
                let key = restore_item_key(lease, *index);
                tx.push(self.tx_update(&key, update, cond, p, false)?);
            }
            committed(self.transact(tx).await?)?;
        }
        Ok(())
    }

    /// Marks the restore completed by its run, with the execution's audit entries (one per
    /// tenant: a restore into another tenant's source has one too).
    pub async fn complete_restore(
        &self,
        lease: &ItemLease<'_>,
        now: DateTime<Utc>,
        audits: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.eq("status", string_attr(RestoreStatus::Executing.as_str())),
            p.eq("run_id", string_attr(lease.run.to_string()))
        );
        let update = Changes::default()
            .set(&["status"], string_attr(RestoreStatus::Completed.as_str()))
            .set(&["completed_at"], time_attr(now))
            .render(&mut p);
        let key = keys::restore(lease.workspace, lease.tenant, lease.restore);
        let mut items = vec![self.tx_update(&key, update, cond, p, false)?];
        for audit in audits {
            items.push(self.put_audit(audit)?);
        }
        committed(self.transact(items).await?)
    }
}

/// `status = writing AND owner = me`.
fn held(lease: &ItemLease<'_>, p: &mut Placeholders) -> String {
    format!(
        "{} AND {}",
        p.eq("status", string_attr(ItemStatus::Writing.as_str())),
        p.eq("owner", string_attr(lease.owner))
    )
}

/// What an execute start requires of the restore, as the API read it.
#[derive(Debug, Clone, Copy)]
pub struct ExecuteConditions<'a> {
    pub workspace: WorkspaceId,
    pub tenant: TenantId,
    pub restore: RestoreId,
    /// sha256 of the token the caller presented.
    pub token_hash: &'a str,
    /// The run the start creates.
    pub run: RunId,
    /// The inventory stamp the preview was computed on, to require unchanged; `None` for a
    /// restore already executing (a dedupe or a resumption is not refused because the
    /// inventory moved since it was confirmed).
    pub inventory_version: Option<u64>,
    /// The preview has items of high-risk types.
    pub high_risk: bool,
    pub now: DateTime<Utc>,
}

/// The end of a preview's validity.
pub fn expiry_of(created_at: DateTime<Utc>) -> DateTime<Utc> {
    created_at + PREVIEW_VALIDITY
}

/// What one execute precondition checks (see [`Store::execute_preconditions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutePrecondition {
    Restore,
    InventoryStamp,
    HighRiskSetting,
}
