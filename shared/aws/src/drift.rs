//! Drift reports in DynamoDB: a report's items, written under its run's lease, then the report
//! itself, so a listed report always has all its items; both read a page at a time.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | drift report | `WS#{ws}#T#{tenant}#DRIFT` | `{report}` (its run's ULID: newest first is a backwards query) |
//! | drift item | `WS#{ws}#T#{tenant}#DRIFT#{report}` | `{index:05}` |
//!
//! Items are measured as the restore preview's are ([`crate::previews::item_bytes`]) and
//! refused above [`MAX_ITEM_BYTES`]; a drift item keeps a capped diff, so it stays far below.
//! A re-claimed run rewrites the items under its own lease; reads stop at the report's
//! `item_count`, so a dead attempt's surplus items are never shown.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use tenantops_core::drift::{DriftItem, DriftReport};
use tenantops_core::{RunId, TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{from_item, from_items, keyed_item, string_attr, string_of};
use crate::keys::{self, Key};
use crate::previews::{ITEMS_PER_WRITE, MAX_ITEM_BYTES, MAX_WRITE_BYTES, item_bytes};
use crate::table::{Query, Store, build_error};
use crate::transactions::{Precondition, committed};

/// A drift item as stored: its index in the report and the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDriftItem {
    pub index: u32,
    pub item: DriftItem,
}

/// A page of a tenant's drift reports, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReportPage {
    pub items: Vec<DriftReport>,
    pub next: Option<RunId>,
}

/// A page of a report's items and the index the next page starts after.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftItemPage {
    pub items: Vec<StoredDriftItem>,
    pub next: Option<u32>,
}

/// The run whose lease a drift check's writes hold.
#[derive(Debug, Clone, Copy)]
pub struct DriftLease<'a> {
    pub run: RunId,
    pub owner: &'a str,
}

impl Store {
    fn lease_check(&self, lease: DriftLease<'_>) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.eq("lease_owner", string_attr(lease.owner));
        self.condition_check(keys::run(lease.run), cond, p)
    }

    /// Writes a report's items (indexed from 0 in order) under the run's lease, then the report,
    /// in transactions of at most [`ITEMS_PER_WRITE`] items and [`MAX_WRITE_BYTES`]. The report
    /// is written only if absent: an earlier attempt's report stands.
    pub async fn record_drift_report(
        &self,
        lease: DriftLease<'_>,
        report: &DriftReport,
        items: &[DriftItem],
    ) -> Result<(), StoreError> {
        let (ws, tenant) = (report.workspace_id, report.tenant_id);
        let mut tx = Vec::new();
        let mut bytes = 0;
        for (index, item) in (0u32..).zip(items) {
            let stored = StoredDriftItem {
                index,
                item: item.clone(),
            };
            let key = keys::drift_item(ws, tenant, report.id, index);
            let record = keyed_item("drift item", &stored, &key)?;
            let size = item_bytes(&record);
            if size > MAX_ITEM_BYTES {
                return Err(StoreError::ItemTooLarge {
                    what: "drift item",
                    bytes: size,
                });
            }
            if tx.len() == ITEMS_PER_WRITE || bytes + size > MAX_WRITE_BYTES {
                let mut chunk = std::mem::take(&mut tx);
                chunk.insert(0, self.lease_check(lease)?);
                committed(self.transact(chunk).await?)?;
                bytes = 0;
            }
            // Rewritten by a re-claimed run: the lease check decides whose items stand.
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(record))
                .build()
                .map_err(build_error)?;
            tx.push(TransactWriteItem::builder().put(put).build());
            bytes += size;
        }
        let mut p = Placeholders::default();
        let cond = p.absent(keys::PK);
        let record = keyed_item(
            "drift report",
            report,
            &keys::drift_report(ws, tenant, report.id),
        )?;
        tx.push(self.tx_put(record, cond, p, false)?);
        tx.insert(0, self.lease_check(lease)?);
        let Some(reasons) = self.transact(tx).await? else {
            return Ok(());
        };
        // The report exists already (an earlier attempt finished it): it stands.
        if self.drift_report(ws, tenant, report.id).await?.is_some() {
            return Ok(());
        }
        committed(Some(reasons))
    }

    /// What accepting a report adds to the start of its backup run: the report names the run
    /// (only if no run accepted it before), and the `drift.accept` audit entry. Both after the
    /// dedupe check, so a replayed `Idempotency-Key` answers its run.
    pub fn accept_drift_report(
        &self,
        report: &DriftReport,
        run: RunId,
        audit: &AuditEntry,
    ) -> Result<Vec<Precondition>, StoreError> {
        let key = keys::drift_report(report.workspace_id, report.tenant_id, report.id);
        let mut p = Placeholders::default();
        let cond = format!("{} AND {}", p.exists(keys::PK), p.absent("accepted_run_id"));
        let update = Changes::default()
            .set(&["accepted_run_id"], string_attr(run.to_string()))
            .render(&mut p);
        Ok(vec![
            Precondition::after_dedupe(self.tx_update(&key, update, cond, p, false)?),
            Precondition::after_dedupe(self.put_audit(audit)?),
        ])
    }

    /// A revert's `drift.revert` audit entry, as a precondition of its restore preview's start
    /// (after the dedupe check: an active preview of the same selection is answered as is).
    pub fn revert_drift_audit(&self, audit: &AuditEntry) -> Result<Precondition, StoreError> {
        Ok(Precondition::after_dedupe(self.put_audit(audit)?))
    }

    /// One drift report of a tenant.
    pub async fn drift_report(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        report: RunId,
    ) -> Result<Option<DriftReport>, StoreError> {
        self.get_item(&keys::drift_report(ws, tenant, report), true)
            .await?
            .map(|i| from_item("drift report", i))
            .transpose()
    }

    /// A tenant's drift reports, newest first, `limit` per page, after the report `after`.
    pub async fn drift_reports(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        limit: usize,
        after: Option<RunId>,
    ) -> Result<DriftReportPage, StoreError> {
        let q = Query::partition(
            keys::drift_reports_of(ws, tenant),
            Vec::new(),
            Placeholders::default(),
        )
        .newest_first();
        let start = after.map(|a| keys::drift_report(ws, tenant, a).to_item());
        let (found, last) = self.query_page(&q, Some(limit.max(1)), start).await?;
        let items = from_items("drift report", found)?;
        let next = last
            .and_then(|k| string_of(&k, keys::SK).cloned())
            .and_then(|sk| sk.parse().ok());
        Ok(DriftReportPage { items, next })
    }

    /// A page of a report's items in index order: up to `limit` after index `after`, none at
    /// or past `item_count`.
    pub async fn drift_items_page(
        &self,
        report: &DriftReport,
        limit: usize,
        after: Option<u32>,
    ) -> Result<DriftItemPage, StoreError> {
        let (ws, tenant) = (report.workspace_id, report.tenant_id);
        let pk = keys::drift_items_of(ws, tenant, report.id);
        let first = after.map_or(0, |a| a + 1);
        let left = report.item_count.saturating_sub(first) as usize;
        if left == 0 {
            return Ok(DriftItemPage {
                items: Vec::new(),
                next: None,
            });
        }
        let want = limit.max(1).min(left);
        let start = after.map(|i| Key::to_item(&keys::drift_item(ws, tenant, report.id, i)));
        // Read after the report: the items written before it are all seen.
        let q = Query::partition(pk, Vec::new(), Placeholders::default()).consistent();
        let (items, _) = self.query_page(&q, Some(want), start).await?;
        let items: Vec<StoredDriftItem> = from_items("drift item", items)?;
        let next = items
            .last()
            .map(|i| i.index)
            .filter(|i| i + 1 < report.item_count);
        Ok(DriftItemPage { items, next })
    }
}
