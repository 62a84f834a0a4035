//! Snapshot references: per tenant and snapshot hash (`WS#{ws}#T#{tenant}#SNAPREFS` /
//! `{sha256}`), the ids of the backup sets that use the snapshot, a string set changed with
//! `ADD` and `DELETE`, atomically. Retention deletes a snapshot's object only once no set
//! references it, after claiming it (`deleting`) so that a concurrent backup cannot count on
//! an object that is being deleted.

use chrono::{DateTime, Duration, Utc};
use tenantops_core::{BackupSetId, TenantId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{bool_attr, string_of, string_set_attr, time_attr};
use crate::keys;
use crate::table::Store;

/// A deletion claim older than this was abandoned (its worker died); a backup may take the
/// snapshot back.
pub const STALE_DELETION: Duration = Duration::minutes(15);

/// What referencing a snapshot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The set now references the snapshot; `stored`: its object is known to be in the
    /// bucket (a put is unnecessary).
    Referenced { stored: bool },
    /// Retention is deleting the snapshot's object right now.
    Busy,
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
        let update = Changes::default()
            .add(&["sets"], string_set_attr(set.to_string()))
            .remove(&["deleting"])
            .render(&mut p);
        let deleting = p.name("deleting");
        let cond = format!(
            "attribute_not_exists({deleting}) OR {deleting} < {}",
            p.value(time_attr(now - STALE_DELETION))
        );
        let key = keys::snapshot_refs(ws, tenant, hash);
        Ok(
            match self.update_if(&key, update, Some(cond), p, true).await? {
                Some(old) => {
                    // Stored, and not taken back from an abandoned deletion (which may have
                    // deleted the object already).
                    let stored = old.get("stored") == Some(&bool_attr(true))
                        && !old.contains_key("deleting");
                    Reference::Referenced { stored }
                }
                None => Reference::Busy,
            },
        )
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
        let update = Changes::default()
            .set(&["stored"], bool_attr(true))
            .render(&mut p);
        let cond = format!("{} AND {}", p.exists(keys::PK), p.absent("deleting"));
        self.update_where(&keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await?;
        Ok(())
    }

    /// Removes `set` from the snapshot's references (no references item: nothing to remove).
    pub(crate) async fn unreference_snapshot(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
        set: BackupSetId,
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let update = Changes::default()
            .delete(&["sets"], string_set_attr(set.to_string()))
            .render(&mut p);
        let cond = p.exists(keys::PK);
        self.update_where(&keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await?;
        Ok(())
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
            .filter(|i| string_of(i, "deleting").is_none_or(|d| *d < stale))
            .filter_map(|i| string_of(&i, keys::SK).cloned())
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
        let update = Changes::default()
            .set(&["deleting"], time_attr(now))
            .render(&mut p);
        let deleting = p.name("deleting");
        let cond = format!(
            "{} AND {} AND (attribute_not_exists({deleting}) OR {deleting} < {})",
            p.exists(keys::PK),
            p.absent("sets"),
            p.value(time_attr(now - STALE_DELETION))
        );
        self.update_where(&keys::snapshot_refs(ws, tenant, hash), update, cond, p)
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
            "{} AND {}",
            p.absent("sets"),
            p.eq("deleting", time_attr(claimed_at))
        );
        self.delete_if(&keys::snapshot_refs(ws, tenant, hash), cond, p)
            .await
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
        let update = Changes::default().remove(&["deleting"]).render(&mut p);
        let cond = p.eq("deleting", time_attr(claimed_at));
        self.update_where(&keys::snapshot_refs(ws, tenant, hash), update, cond, p)
            .await
    }

    /// How many sets reference a snapshot (0 when none or no item).
    pub async fn snapshot_reference_count(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        hash: &str,
    ) -> Result<usize, StoreError> {
        Ok(self
            .get_item(&keys::snapshot_refs(ws, tenant, hash), true)
            .await?
            .and_then(|i| i.get("sets").and_then(|v| v.as_ss().ok()).map(Vec::len))
            .unwrap_or(0))
    }
}
