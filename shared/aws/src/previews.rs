//! Restore previews in DynamoDB, at any size: the restore created `previewing` in its
//! `restore.preview` run's start transaction, the items the run writes under its lease, the
//! record moved to `previewed` once, and the items read a page at a time. (The record and item
//! types, and execution, are in [`crate::restores`].)
//!
//! Sizes: every item is measured as DynamoDB counts it before it is sent and refused above
//! [`MAX_ITEM_BYTES`] (DynamoDB's limit is 400 KB); item writes go at most
//! [`ITEMS_PER_WRITE`] and [`MAX_WRITE_BYTES`] to a transaction (DynamoDB's limits are 100
//! actions and 4 MB); reads are paged.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use tenantops_core::params::RestorePreviewParams;
use tenantops_core::restore::{self as plan, Blocker, Mapping};
use tenantops_core::{
    BackupSetId, OperationParams, ReasonCode, RestoreId, RunId, TenantId, UserId, WorkspaceId,
};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{
    bool_attr, from_items, keyed_item, number_attr, string_attr, time_attr, value_attr,
};
use crate::keys;
use crate::restores::{
    ItemLease, ItemStatus, PlanSummary, RestoreItem, RestoreRecord, RestoreStatus, expiry_of,
    restore_item_key,
};
use crate::table::{Query, Store};
use crate::transactions::{Precondition, committed};

/// Manifest entries a preview reads (and items it plans and writes) per round; a preview
/// continued across invocations checkpoints between rounds.
pub const MANIFEST_PAGE: usize = 200;
/// Restore items written per transaction, besides the run's lease check (DynamoDB allows 100
/// actions).
pub const ITEMS_PER_WRITE: usize = 50;
/// Bytes of items per transaction (DynamoDB allows 4 MB).
pub const MAX_WRITE_BYTES: usize = 3 * 1024 * 1024;
/// Bytes an item may have (DynamoDB allows 400 KB; the margin covers the key and rounding).
pub const MAX_ITEM_BYTES: usize = 350 * 1024;

/// An item's size as DynamoDB counts it: attribute names plus values, with the per-element
/// overhead of lists and maps.
pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            // Numbers count about one byte per two digits plus one; the digits overcount.
            AttributeValue::N(n) => n.len() + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>()
            }
            AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
            AttributeValue::Ns(ns) => ns.iter().map(|n| n.len() + 1).sum(),
            AttributeValue::Bs(bs) => bs.iter().map(|b| b.as_ref().len()).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// What a completed preview adds to its restore.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewDone {
    pub item_count: u32,
    pub summary: PlanSummary,
    pub blockers: Vec<Blocker>,
    pub high_risk_items: u32,
    pub inventory_version: u64,
    pub now: DateTime<Utc>,
}

/// A page of a restore's items and the index the next page starts after.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreItemPage {
    pub items: Vec<RestoreItem>,
    pub next: Option<u32>,
}

impl RestoreRecord {
    /// A restore of `set` into `tenant` as its preview starts (`previewing`, expiring after
    /// the preview's validity), confirmed by the token `token_hash` is the sha256 of; a
    /// restore into another tenant names its `source_tenant_id`.
    pub fn previewing(
        workspace_id: WorkspaceId,
        tenant_id: TenantId,
        backup_set_id: BackupSetId,
        created_by: UserId,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> RestoreRecord {
        RestoreRecord {
            restore_id: RestoreId::new(),
            workspace_id,
            tenant_id,
            source_tenant_id: None,
            backup_set_id,
            created_by,
            created_at: now,
            expires_at: expiry_of(now),
            preview_run_id: None,
            selection: None,
            status: RestoreStatus::Previewing,
            token_hash,
            mapping: Mapping::default(),
            item_count: 0,
            summary: PlanSummary::default(),
            blockers: Vec::new(),
            executable: false,
            high_risk_items: 0,
            inventory_version: 0,
            run_id: None,
            completed_at: None,
        }
    }

    /// The params of the `restore.preview` run that fills this restore.
    pub fn preview_params(&self) -> OperationParams {
        let pairs: Option<Vec<(String, String)>> = self.selection.as_ref().map(|s| {
            s.iter()
                .map(|i| (i.object_type.clone(), i.object_id.clone()))
                .collect()
        });
        OperationParams::RestorePreview(RestorePreviewParams {
            restore_id: self.restore_id.ulid(),
            backup_set_id: self.backup_set_id.ulid(),
            selection: plan::selection_hash(pairs.as_deref(), &self.mapping),
        })
    }

    /// Why an execute start's condition on this restore (as read just before) failed.
    pub fn why_not_executable(&self, token_hash: &str, now: DateTime<Utc>) -> ReasonCode {
        if self.token_hash != token_hash {
            return ReasonCode::RestoreConfirmationInvalid;
        }
        match self.status {
            RestoreStatus::Previewing => ReasonCode::RestorePreviewPending,
            RestoreStatus::Completed => ReasonCode::RestoreAlreadyExecuted,
            RestoreStatus::Previewed if !self.executable => self
                .blockers
                .first()
                .map(|b| b.reason())
                .unwrap_or(ReasonCode::RestoreMappingUnresolved),
            RestoreStatus::Previewed if now > self.expires_at => ReasonCode::RestorePreviewStale,
            _ => ReasonCode::ConcurrentChange,
        }
    }
}

impl Store {
    /// What a start of a restore into another tenant also requires: the source tenant active
    /// in the workspace, and an entry (`action` by `actor`) in its audit log (the start writes
    /// the destination's).
    pub fn source_checks(
        &self,
        record: &RestoreRecord,
        source: TenantId,
        actor: &str,
        action: &str,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<[Precondition; 2], StoreError> {
        let audit = AuditEntry {
            id: ulid::Ulid::new(),
            workspace_id: record.workspace_id,
            tenant_id: Some(source),
            actor: actor.to_owned(),
            action: action.into(),
            target: record.restore_id.to_string(),
            before: None,
            after: Some(serde_json::json!({
                "backup_set_id": record.backup_set_id,
                "source_tenant_id": source,
                "destination_tenant_id": record.tenant_id,
                "run_id": run,
            })),
            at: now,
        };
        Ok([
            self.source_tenant_active(record.workspace_id, source)?,
            self.start_audit(&audit)?,
        ])
    }

    /// The new restore record, `previewing`, as a precondition of its preview run's start
    /// transaction (so a restore exists exactly when its run does).
    pub fn new_restore(&self, record: &RestoreRecord) -> Result<Precondition, StoreError> {
        let key = keys::restore(record.workspace_id, record.tenant_id, record.restore_id);
        Ok(Precondition::new(
            self.put_new(keyed_item("restore", record, &key)?, false)?,
        ))
    }

    /// A restore into another tenant: its source tenant (the backup set's) exists in the
    /// workspace and is active, as a precondition of a start whose run is the destination's
    /// (the start's own tenant guard checks that one).
    pub fn source_tenant_active(
        &self,
        ws: WorkspaceId,
        source: TenantId,
    ) -> Result<Precondition, StoreError> {
        Ok(Precondition::new(self.tenant_active_check(ws, source)?))
    }

    /// An audit entry for another tenant than the run's (a restore's source), written by the
    /// start transaction or not at all.
    pub fn start_audit(&self, entry: &AuditEntry) -> Result<Precondition, StoreError> {
        Ok(Precondition::new(self.put_audit(entry)?))
    }

    /// Writes a preview's items under the run's lease: each measured and refused above
    /// [`MAX_ITEM_BYTES`], at most [`ITEMS_PER_WRITE`] and [`MAX_WRITE_BYTES`] per
    /// transaction. An item is (re)written only while `pending`, so a redelivered preview
    /// rewrites its own items and nothing else. Items stay invisible to execution until the
    /// restore is `previewed`.
    pub async fn write_preview_items(
        &self,
        lease: &ItemLease<'_>,
        items: &[RestoreItem],
    ) -> Result<(), StoreError> {
        let mut tx = Vec::new();
        let mut bytes = 0;
        for i in items {
            let item = keyed_item("restore item", i, &restore_item_key(lease, i.index))?;
            let size = item_bytes(&item);
            if size > MAX_ITEM_BYTES {
                return Err(StoreError::ItemTooLarge {
                    what: "restore item",
                    bytes: size,
                });
            }
            if tx.len() == ITEMS_PER_WRITE || bytes + size > MAX_WRITE_BYTES {
                self.items_under_lease(lease, std::mem::take(&mut tx))
                    .await?;
                bytes = 0;
            }
            let mut p = Placeholders::default();
            let cond = format!(
                "{} OR {}",
                p.absent(keys::PK),
                p.eq("status", string_attr(ItemStatus::Pending.as_str()))
            );
            tx.push(self.tx_put(item, cond, p, false)?);
            bytes += size;
        }
        if !tx.is_empty() {
            self.items_under_lease(lease, tx).await?;
        }
        Ok(())
    }

    async fn items_under_lease(
        &self,
        lease: &ItemLease<'_>,
        mut tx: Vec<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        let mut lp = Placeholders::default();
        let lease_cond = lp.eq("lease_owner", string_attr(lease.owner));
        tx.insert(
            0,
            self.condition_check(keys::run(lease.run), lease_cond, lp)?,
        );
        committed(self.transact(tx).await?)
    }

    /// Completes a preview: `previewing` → `previewed` with its plan, conditioned on the
    /// preview run's lease, with the `restore.previewed` audit entries (the destination's,
    /// and a restore into another tenant's source's), in one transaction.
    pub async fn finish_preview(
        &self,
        lease: &ItemLease<'_>,
        done: &PreviewDone,
        audits: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.eq("status", string_attr(RestoreStatus::Previewing.as_str())),
            p.eq("preview_run_id", string_attr(lease.run.to_string()))
        );
        let update = Changes::default()
            .set(&["status"], string_attr(RestoreStatus::Previewed.as_str()))
            .set(&["item_count"], number_attr(done.item_count))
            .set(&["summary"], value_attr("restore summary", &done.summary)?)
            .set(
                &["blockers"],
                value_attr("restore blockers", &done.blockers)?,
            )
            .set(&["executable"], bool_attr(done.blockers.is_empty()))
            .set(&["high_risk_items"], number_attr(done.high_risk_items))
            .set(&["inventory_version"], number_attr(done.inventory_version))
            .set(&["expires_at"], time_attr(expiry_of(done.now)))
            .render(&mut p);
        let key = keys::restore(lease.workspace, lease.tenant, lease.restore);
        let mut lp = Placeholders::default();
        let lease_cond = lp.eq("lease_owner", string_attr(lease.owner));
        let mut tx = vec![
            self.condition_check(keys::run(lease.run), lease_cond, lp)?,
            self.tx_update(&key, update, cond, p, false)?,
        ];
        for audit in audits {
            tx.push(self.put_audit(audit)?);
        }
        committed(self.transact(tx).await?)
    }

    /// A page of a restore's items in index order: up to `limit` after index `after`.
    pub async fn restore_items_page(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        restore: RestoreId,
        limit: usize,
        after: Option<u32>,
    ) -> Result<RestoreItemPage, StoreError> {
        let pk = keys::restore_items_of(ws, tenant, restore);
        let start = after.map(|i| keys::restore_item(ws, tenant, restore, i).to_item());
        let mut q = Query::partition(pk, Vec::new(), Placeholders::default());
        // Read after the record showed `previewed`: the items written before it are all seen.
        q.consistent = true;
        let (items, last) = self.query_page(&q, Some(limit.max(1)), start).await?;
        let items: Vec<RestoreItem> = from_items("restore item", items)?;
        let next = last.and(items.last().map(|i| i.index));
        Ok(RestoreItemPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_sizes_count_names_values_and_nesting() {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let flat = HashMap::from([("name".to_owned(), s("abc"))]);
        assert_eq!(item_bytes(&flat), 7);
        let nested = HashMap::from([(
            "diff".to_owned(),
            AttributeValue::L(vec![AttributeValue::M(HashMap::from([(
                "path".to_owned(),
                s("a.b"),
            )]))]),
        )]);
        // "diff" + list (3 + 1 per element) + map (3 + 1 + "path" + "a.b").
        assert_eq!(item_bytes(&nested), 4 + 3 + 1 + 3 + 1 + 4 + 3);
        let big = HashMap::from([("v".to_owned(), s(&"x".repeat(MAX_ITEM_BYTES)))]);
        assert!(item_bytes(&big) > MAX_ITEM_BYTES);
    }
}
