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
//! written after its entries, so a listed set always has its whole manifest. Snapshot
//! references are in [`crate::snapshot_refs`].

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tenantops_core::backup::{BackupSet, ManifestEntry};
use tenantops_core::{BackupSetId, TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{Item, from_item, from_items, keyed_item, string_attr, string_of, time_attr};
use crate::keys::{self, Key};
use crate::table::{Query, Store, delete_request};

pub use crate::snapshot_refs::{Reference, STALE_DELETION};

/// Items per conditional write transaction when recording a set.
const TRANSACT_CHUNK: usize = 50;
/// Latest-snapshot pointers (or snapshot references) written at the same time.
const POINTER_CONCURRENCY: usize = 16;

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
                keyed_item("manifest entry", e, &key)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.put_all_absent(entry_items).await?;

        let item = keyed_item("backup set", set, &keys::backup_set(ws, tenant, set.id))?;
        if !self.put_absent(item).await? {
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
        let key = keys::latest_snapshot(
            set.workspace_id,
            set.tenant_id,
            &e.object_type,
            &e.object_id,
        );
        let item = keyed_item("latest snapshot", &latest, &key)?;
        let mut p = Placeholders::default();
        let cond = format!(
            "{} OR {} < {}",
            p.absent(keys::PK),
            p.name("set_id"),
            p.value(string_attr(set.id.to_string()))
        );
        // A newer pointer stands: a failed condition is no error.
        self.put_if(item, cond, p).await?;
        Ok(())
    }

    /// Puts every item unless it exists, in transactions of [`TRANSACT_CHUNK`]; a chunk
    /// refused because some of its items exist is retried item by item.
    async fn put_all_absent(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(TRANSACT_CHUNK) {
            let writes = chunk
                .iter()
                .map(|i| self.put_new(i.clone(), false))
                .collect::<Result<Vec<_>, _>>()?;
            if self.transact(writes).await?.is_none() {
                continue;
            }
            for item in chunk {
                self.put_absent(item.clone()).await?;
            }
        }
        Ok(())
    }

    /// Puts an item unless it exists; `false`: it did.
    async fn put_absent(&self, item: Item) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.absent(keys::PK);
        self.put_if(item, cond, p).await
    }

    fn get_set_item(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        set: BackupSetId,
    ) -> impl Future<Output = Result<Option<StoredSet>, StoreError>> + Send + use<> {
        self.get_item(&keys::backup_set(ws, tenant, set), true)
            .map(|found| found?.map(stored_set).transpose())
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
        let mut p = Placeholders::default();
        let filter = p.absent("expiring_at");
        let q = Query::partition(keys::backup_sets_of(ws, tenant), vec![filter], p).newest_first();
        let start = after.map(|a| keys::backup_set(ws, tenant, a).to_item());
        let (found, last) = self.query_filling(q, limit, start).await?;
        let items = from_items("backup set", found)?;
        let next = last
            .and_then(|k| string_of(&k, keys::SK).cloned())
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
        let start = after.map(|sk| Key { pk: pk.clone(), sk }.to_item());
        let q = Query::partition(pk, Vec::new(), Placeholders::default());
        let (items, last) = self.query_page(&q, Some(limit.max(1)), start).await?;
        let entries = from_items("manifest entry", items)?;
        let next = last.and_then(|k| string_of(&k, keys::SK).cloned());
        Ok(ManifestPage { entries, next })
    }

    /// The newest snapshot taken of an object (type, id) of the tenant, if any backup saw
    /// it. The set it names may since have been expired by retention.
    pub fn latest_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        object_type: &str,
        object_id: &str,
    ) -> impl Future<Output = Result<Option<LatestSnapshot>, StoreError>> + Send + use<> {
        // An eventually consistent read: a pointer only ever moves forward.
        let key = keys::latest_snapshot(ws, tenant, object_type, object_id);
        self.get_item(&key, false)
            .map(|found| found?.map(|i| from_item("latest snapshot", i)).transpose())
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
        let update = Changes::default()
            .set(&["expiring_at"], time_attr(now))
            .render(&mut p);
        let cond = format!("{} AND {}", p.exists(keys::PK), p.absent("expiring_at"));
        let key = keys::backup_set(set.workspace_id, set.tenant_id, set.id);
        let items = vec![
            self.tx_update(&key, update, cond, p, false)?,
            self.put_audit(audit)?,
        ];
        Ok(self.transact(items).await?.is_none())
    }

    /// Continues expiring a set: every snapshot it used loses its reference to it, then its
    /// entries go. The set item stays (marked, unlisted) until [`Store::forget_backup_set`],
    /// once its manifest object is gone. Safe to repeat after a crash.
    pub async fn finish_expiry(&self, set: &BackupSet) -> Result<(), StoreError> {
        let (ws, tenant) = (set.workspace_id, set.tenant_id);
        let pk = keys::manifest_entries_of(ws, tenant, set.id);
        let entries: Vec<ManifestEntry> =
            from_items("manifest entry", self.partition(pk, None, None).await?)?;
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
        let deletes = entries
            .iter()
            .map(|e| {
                delete_request(&keys::manifest_entry(
                    ws,
                    tenant,
                    set.id,
                    &e.object_type,
                    &e.object_id,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(deletes).await
    }

    /// Removes an expiring set's item, the last trace of it (only if it is expiring).
    pub async fn forget_backup_set(&self, set: &BackupSet) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.exists("expiring_at");
        let key = keys::backup_set(set.workspace_id, set.tenant_id, set.id);
        self.delete_if(&key, cond, p).await
    }
}

fn stored_set(item: Item) -> Result<StoredSet, StoreError> {
    let expiring = item.contains_key("expiring_at");
    Ok(StoredSet {
        set: from_item("backup set", item)?,
        expiring,
    })
}
