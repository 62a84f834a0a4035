//! Backup sets in DynamoDB: metadata, hashes and pointers only. Payloads and manifests live in
//! the snapshot bucket ([`crate::snapshots`]); an S3 object may be far larger than an item.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | backup set | `WS#{ws}#T#{tenant}#BACKUPS` | `{set}` (ULID: newest first is a backwards query) |
//! | manifest entry | `WS#{ws}#T#{tenant}#SET#{set}` | `{object_type}#{object_id}` |
//! | latest snapshot of an object | `WS#{ws}#T#{tenant}#LATEST` | `{object_type}#{object_id}` |
//! | snapshot references | `WS#{ws}#T#{tenant}#SNAPREFS` | `{sha256}` |
//!
//! Sets and entries are written with `attribute_not_exists`: never rewritten. A set's item is
//! written after its entries, so a listed set always has its whole manifest. The references
//! item of a snapshot holds the ids of the sets that use it (a string set changed with `ADD`
//! and `DELETE`, atomically); retention deletes a snapshot object only once no set references
//! it, after claiming it (`deleting`) so that a concurrent backup cannot count on an object
//! that is being deleted.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tenantops_core::backup::{BackupSet, ManifestEntry};
use tenantops_core::{BackupSetId, TenantId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::keys::{self, Key};
use crate::store::{AuditEntry, Item, Store, build_error, from_item, s, to_item, ts, with_key};

/// Items per conditional write transaction when recording a set.
const TRANSACT_CHUNK: usize = 50;
/// Latest-snapshot pointers (or snapshot references) written at the same time.
const POINTER_CONCURRENCY: usize = 16;
/// A deletion claim older than this was abandoned (its worker died); a backup may take the
/// snapshot back.
pub const STALE_DELETION: Duration = Duration::minutes(15);

/// A page of a tenant's backup sets, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSetPage {
    pub items: Vec<BackupSet>,
    /// Continue after this set.
    pub next: Option<BackupSetId>,
}

/// A page of a set's manifest entries, by object type and id.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestPage {
    pub entries: Vec<ManifestEntry>,
    /// Opaque position to continue after (hand it back as `after`).
    pub next: Option<String>,
}

/// The newest snapshot taken of one object of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestSnapshot {
    pub object_type: String,
    pub object_id: String,
    pub hash: String,
    pub snapshot_key: String,
    pub set_id: BackupSetId,
    #[serde(with = "tenantops_core::time")]
    pub backed_up_at: DateTime<Utc>,
}

/// What referencing a snapshot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The set now references the snapshot; `stored`: its object is known to be in the
    /// bucket (a put is unnecessary).
    Referenced { stored: bool },
    /// Retention is deleting the snapshot's object right now.
    Busy,
}

/// What recording a set found.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Created,
    /// The set was already recorded (an earlier attempt of the same run); it stands as it was.
    AlreadyRecorded(Box<BackupSet>),
}

/// A set as retention sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSet {
    pub set: BackupSet,
    /// Retention has begun removing it (it is no longer listed).
    pub expiring: bool,
}

impl Store {
    /// Records that `set` uses the snapshot `hash`; call it BEFORE putting the object, so
    /// retention never deletes an object a backup counts on. [`Reference::Busy`]: retention
    /// is deleting the object right now; try again shortly (the object is then written anew).
    pub async fn reference_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        set: BackupSetId,
        now: DateTime<Utc>,
    ) -> Result<Reference, StoreError> {
        let mut p = Placeholders::default();
        let deleting = p.name("deleting");
        let update = format!(
            "ADD {} {} REMOVE {deleting}",
            p.name("sets"),
            p.value(AttributeValue::Ss(vec![set.to_string()]))
        );
        let cond = format!(
            "attribute_not_exists({deleting}) OR {deleting} < {}",
            p.value(ts(now - STALE_DELETION))
        );
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(keys::snapshot_refs(ws, tenant, hash).to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                // Stored, and not taken back from an abandoned deletion (which may have
                // deleted the object already).
                let stored = matches!(old.get("stored"), Some(AttributeValue::Bool(true)))
                    && !old.contains_key("deleting");
                Ok(Reference::Referenced { stored })
            }
            Err(e) => {
                let err = StoreError::dynamo("UpdateItem", e);
                if err.is_condition_check_failed() {
                    Ok(Reference::Busy)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Notes that the snapshot's object is in the bucket, so later backups referencing it
    /// need no S3 request at all. Cleared with the item when retention deletes the object.
    pub async fn mark_snapshot_stored(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let update = format!(
            "SET {} = {}",
            p.name("stored"),
            p.value(AttributeValue::Bool(true))
        );
        let cond = format!(
            "attribute_exists({}) AND attribute_not_exists({})",
            p.name(keys::PK),
            p.name("deleting")
        );
        self.conditional_update(keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await?;
        Ok(())
    }

    /// Records a finished backup set: its manifest entries first, then the set item, then the
    /// objects' latest-snapshot pointers. Each item is written only if absent (entries of an
    /// earlier attempt of the same run are the same manifest's, so they stand). If the set
    /// exists already, it stands and is returned.
    pub async fn record_backup_set(
        &self,
        set: &BackupSet,
        entries: &[ManifestEntry],
    ) -> Result<Recorded, StoreError> {
        let (ws, tenant) = (set.workspace_id, set.tenant_id);
        let entry_items = entries
            .iter()
            .map(|e| {
                let key = keys::manifest_entry(ws, tenant, set.id, &e.object_type, &e.object_id);
                Ok(with_key(to_item("manifest entry", e)?, &key))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.put_all_absent(entry_items).await?;

        let item = with_key(
            to_item("backup set", set)?,
            &keys::backup_set(ws, tenant, set.id),
        );
        let mut p = Placeholders::default();
        let cond = format!("attribute_not_exists({})", p.name(keys::PK));
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .send()
            .await;
        if let Err(e) = put {
            let err = StoreError::dynamo("PutItem", e);
            if !err.is_condition_check_failed() {
                return Err(err);
            }
            let existing = self.get_set_item(ws, tenant, set.id).await?;
            return match existing {
                Some(stored) => Ok(Recorded::AlreadyRecorded(Box::new(stored.set))),
                None => Err(StoreError::TransitionRefused),
            };
        }

        // Pointers are independent items: written a few at a time.
        // Collected first: a stream holding the closure would not be `Send` for every
        // lifetime, which spawned callers need.
        let writes: Vec<_> = entries
            .iter()
            .map(|e| self.move_latest_forward(set, e))
            .collect();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(writes)
            .buffer_unordered(POINTER_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(Recorded::Created)
    }

    /// Points the object's latest snapshot at this set's entry, only forward: an older set
    /// (a late attempt) never replaces a newer pointer.
    async fn move_latest_forward(
        &self,
        set: &BackupSet,
        e: &ManifestEntry,
    ) -> Result<(), StoreError> {
        let latest = LatestSnapshot {
            object_type: e.object_type.clone(),
            object_id: e.object_id.clone(),
            hash: e.hash.clone(),
            snapshot_key: e.snapshot_key.clone(),
            set_id: set.id,
            backed_up_at: set.created_at,
        };
        let item = with_key(
            to_item("latest snapshot", &latest)?,
            &keys::latest_snapshot(
                set.workspace_id,
                set.tenant_id,
                &e.object_type,
                &e.object_id,
            ),
        );
        let mut p = Placeholders::default();
        let cond = format!(
            "attribute_not_exists({}) OR {} < {}",
            p.name(keys::PK),
            p.name("set_id"),
            p.value(s(set.id.to_string()))
        );
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = StoreError::dynamo("PutItem", e);
                if err.is_condition_check_failed() {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Puts every item unless it exists, in transactions of [`TRANSACT_CHUNK`]; a chunk
    /// refused because some of its items exist is retried item by item.
    async fn put_all_absent(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(TRANSACT_CHUNK) {
            let writes = chunk
                .iter()
                .map(|i| self.put_new(i.clone(), false))
                .collect::<Result<Vec<TransactWriteItem>, _>>()?;
            if self.transact("TransactWriteItems", writes).await?.is_none() {
                continue;
            }
            for item in chunk {
                let mut p = Placeholders::default();
                let cond = format!("attribute_not_exists({})", p.name(keys::PK));
                let result = self
                    .client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item.clone()))
                    .condition_expression(cond)
                    .set_expression_attribute_names(p.names())
                    .send()
                    .await;
                if let Err(e) = result {
                    let err = StoreError::dynamo("PutItem", e);
                    if !err.is_condition_check_failed() {
                        return Err(err);
                    }
                }
            }
        }
        Ok(())
    }

    async fn get_set_item(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        set: BackupSetId,
    ) -> Result<Option<StoredSet>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(keys::backup_set(ws, tenant, set).to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.map(stored_set).transpose()
    }

    /// One backup set of a tenant; `None` if it does not exist there or retention is removing
    /// it. The restore preview reads sets through this.
    pub async fn backup_set(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        set: BackupSetId,
    ) -> Result<Option<BackupSet>, StoreError> {
        Ok(self
            .get_set_item(ws, tenant, set)
            .await?
            .filter(|s| !s.expiring)
            .map(|s| s.set))
    }

    /// A tenant's backup sets, newest first, `limit` per page, after the set `after`.
    pub async fn backup_sets(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        limit: usize,
        after: Option<BackupSetId>,
    ) -> Result<BackupSetPage, StoreError> {
        let pk = keys::backup_sets_of(ws, tenant);
        let mut p = Placeholders::default();
        let cond = format!("{} = {}", p.name(keys::PK), p.value(s(pk)));
        let filter = format!("attribute_not_exists({})", p.name("expiring_at"));
        let start = after.map(|a| keys::backup_set(ws, tenant, a).to_item());
        let (found, last) = self
            .query_newest_first(None, cond, vec![filter], p, limit, start)
            .await?;
        let items = found
            .into_iter()
            .map(|i| from_item("backup set", i))
            .collect::<Result<Vec<BackupSet>, _>>()?;
        let next = last
            .and_then(|k| k.get(keys::SK).and_then(|v| v.as_s().ok()).cloned())
            .and_then(|sk| sk.parse().ok());
        Ok(BackupSetPage { items, next })
    }

    /// Every set of a tenant, newest first, those being expired included (for retention).
    pub async fn all_backup_sets(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> Result<Vec<StoredSet>, StoreError> {
        let mut sets = self
            .partition(keys::backup_sets_of(ws, tenant), None, None)
            .await?
            .into_iter()
            .map(stored_set)
            .collect::<Result<Vec<_>, _>>()?;
        sets.sort_by_key(|s| std::cmp::Reverse(s.set.id));
        Ok(sets)
    }

    /// A page of a set's manifest entries (by object type, then id), `limit` per page, after
    /// the position `after` of the previous page. The restore preview reads manifests here;
    /// it never needs S3 for the list.
    pub async fn manifest_entries(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        set: BackupSetId,
        limit: usize,
        after: Option<String>,
    ) -> Result<ManifestPage, StoreError> {
        let pk = keys::manifest_entries_of(ws, tenant, set);
        let mut p = Placeholders::default();
        let cond = format!("{} = {}", p.name(keys::PK), p.value(s(pk.clone())));
        let start = after.map(|sk| Key { pk, sk }.to_item());
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item("manifest entry", i))
            .collect::<Result<Vec<ManifestEntry>, _>>()?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get(keys::SK).and_then(|v| v.as_s().ok()).cloned());
        Ok(ManifestPage { entries, next })
    }

    /// The newest snapshot taken of an object (type, id) of the tenant, if any backup saw
    /// it. The set it names may since have been expired by retention.
    pub async fn latest_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        object_type: &str,
        object_id: &str,
    ) -> Result<Option<LatestSnapshot>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(
                keys::latest_snapshot(ws, tenant, object_type, object_id).to_item(),
            ))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item
            .map(|i| from_item("latest snapshot", i))
            .transpose()
    }

    /// Starts expiring a set: it disappears from listings and restores at once, with its
    /// audit entry in the same transaction. `false`: already expiring or gone.
    pub async fn begin_expiry(
        &self,
        set: &BackupSet,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let update = format!("SET {} = {}", p.name("expiring_at"), p.value(ts(now)));
        let cond = format!(
            "attribute_exists({}) AND attribute_not_exists({})",
            p.name(keys::PK),
            p.name("expiring_at")
        );
        let mark = Update::builder()
            .table_name(self.table())
            .set_key(Some(
                keys::backup_set(set.workspace_id, set.tenant_id, set.id).to_item(),
            ))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(mark).build(),
            self.put_audit(audit)?,
        ];
        Ok(self.transact("TransactWriteItems", items).await?.is_none())
    }

    /// Continues expiring a set: every snapshot it used loses its reference to it, then its
    /// entries go. The set item stays (marked, unlisted) until [`Store::forget_backup_set`],
    /// once its manifest object is gone. Safe to repeat after a crash.
    pub async fn finish_expiry(&self, set: &BackupSet) -> Result<(), StoreError> {
        let (ws, tenant) = (set.workspace_id, set.tenant_id);
        let pk = keys::manifest_entries_of(ws, tenant, set.id);
        let entries = self
            .partition(pk.clone(), None, None)
            .await?
            .into_iter()
            .map(|i| from_item("manifest entry", i))
            .collect::<Result<Vec<ManifestEntry>, _>>()?;
        // References first (a few at a time): an entry is deleted only once its snapshot no
        // longer counts this set.
        let unreferences: Vec<_> = entries
            .iter()
            .map(|e| self.unreference_snapshot(ws, tenant, &e.hash, set.id))
            .collect();
        let unreferenced: Vec<Result<(), StoreError>> = futures::stream::iter(unreferences)
            .buffer_unordered(POINTER_CONCURRENCY)
            .collect()
            .await;
        unreferenced.into_iter().collect::<Result<(), _>>()?;
        let mut deletes = Vec::with_capacity(entries.len());
        for entry in &entries {
            let key =
                keys::manifest_entry(ws, tenant, set.id, &entry.object_type, &entry.object_id);
            deletes.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key.to_item()))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            );
        }
        self.batch_write(deletes).await
    }

    /// Removes an expiring set's item, the last trace of it (only if it is expiring).
    pub async fn forget_backup_set(&self, set: &BackupSet) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!("attribute_exists({})", p.name("expiring_at"));
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(
                keys::backup_set(set.workspace_id, set.tenant_id, set.id).to_item(),
            ))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = StoreError::dynamo("DeleteItem", e);
                if err.is_condition_check_failed() {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn unreference_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        set: BackupSetId,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let update = format!(
            "DELETE {} {}",
            p.name("sets"),
            p.value(AttributeValue::Ss(vec![set.to_string()]))
        );
        let cond = format!("attribute_exists({})", p.name(keys::PK));
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(keys::snapshot_refs(ws, tenant, hash).to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = StoreError::dynamo("UpdateItem", e);
                // No references item: nothing to remove.
                if err.is_condition_check_failed() {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Hashes of the tenant's snapshots that no set references (and that no live deletion
    /// has claimed): candidates for deletion.
    pub async fn unreferenced_snapshots(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let stale = tenantops_core::time::format(now - STALE_DELETION);
        Ok(self
            .partition(keys::snapshot_refs_of(ws, tenant), None, None)
            .await?
            .into_iter()
            .filter(|i| !i.contains_key("sets"))
            .filter(|i| {
                i.get("deleting")
                    .and_then(|v| v.as_s().ok())
                    .is_none_or(|d| *d < stale)
            })
            .filter_map(|i| i.get(keys::SK).and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    /// Claims an unreferenced snapshot for deletion; `false` if a set references it again
    /// (or another retention pass claimed it). A backup cannot reference it while claimed.
    pub async fn claim_snapshot_deletion(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let deleting = p.name("deleting");
        let update = format!("SET {deleting} = {}", p.value(ts(now)));
        let cond = format!(
            "attribute_exists({}) AND attribute_not_exists({}) AND (attribute_not_exists({deleting}) OR {deleting} < {})",
            p.name(keys::PK),
            p.name("sets"),
            p.value(ts(now - STALE_DELETION))
        );
        self.conditional_update(keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await
    }

    /// Forgets a snapshot whose object is deleted: removes its references item if it is
    /// still unreferenced and still claimed by `claimed_at`.
    pub async fn forget_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        claimed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "attribute_not_exists({}) AND {} = {}",
            p.name("sets"),
            p.name("deleting"),
            p.value(ts(claimed_at))
        );
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(keys::snapshot_refs(ws, tenant, hash).to_item()))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = StoreError::dynamo("DeleteItem", e);
                if err.is_condition_check_failed() {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Gives up a deletion claim (the object is still locked): later passes try again.
    pub async fn release_snapshot_deletion(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        claimed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let deleting = p.name("deleting");
        let update = format!("REMOVE {deleting}");
        let cond = format!("{deleting} = {}", p.value(ts(claimed_at)));
        self.conditional_update(keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await
    }

    /// How many sets reference a snapshot (0 when none or no item).
    pub async fn snapshot_reference_count(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
    ) -> Result<usize, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(keys::snapshot_refs(ws, tenant, hash).to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("sets").and_then(|v| v.as_ss().ok()).map(Vec::len))
            .unwrap_or(0))
    }

    async fn conditional_update(
        &self,
        key: Key,
        update: String,
        cond: String,
        p: Placeholders,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = StoreError::dynamo("UpdateItem", e);
                if err.is_condition_check_failed() {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }
}

fn stored_set(item: HashMap<String, AttributeValue>) -> Result<StoredSet, StoreError> {
    let expiring = item.contains_key("expiring_at");
    Ok(StoredSet {
        set: from_item("backup set", item)?,
        expiring,
    })
}
