//! Drift: a tenant's drift reports (written by its `drift.check` runs), accepting one (a
//! backup of its types) or reverting some of its items (a restore preview of its baseline),
//! and the diff of two backup sets in the same item shape.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_core::{RunId, TenantId, WorkspaceId};

use crate::types::{PageQuery, PreviewResponse, StartResponse};
use crate::{Call, Client, Error, Route};

fn drift_path(ws: WorkspaceId, tenant: TenantId, rest: &str) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}/drift{rest}")
}

/// Objects added, removed, changed and unchanged (`DriftCounts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
}

/// A drift report; its id is the `drift.check` run's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReport {
    pub id: RunId,
    pub tenant_id: TenantId,
    /// The run that wrote the report: its viewer.
    pub run: String,
    pub baseline_backup_set_id: String,
    pub types: Vec<String>,
    /// Types in scope that were not compared.
    #[serde(default)]
    pub unread_types: Vec<String>,
    pub counts: DriftCounts,
    pub item_count: u64,
    pub created_at: String,
    /// The backup run that accepted the report (its viewer), once accepted.
    #[serde(default)]
    pub accepted_run: Option<String>,
}

/// One object that drifted (or changed between two backup sets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftItem {
    pub index: u64,
    pub object_type: String,
    pub object_id: String,
    pub name: String,
    /// added, removed or changed.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hash: Option<String>,
    /// A changed object's differing fields: `{path, before?, after?, excerpt?}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changes_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_key: Option<String>,
    /// `{before, after}` assignment summaries, when they differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Value>,
    /// Who made the change, from Intune's audit log (reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Value>,
}

impl DriftItem {
    /// The paths of the fields that changed, and `assignments` when they did.
    pub fn changed_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .changes
            .iter()
            .filter_map(|c| c.get("path").and_then(Value::as_str).map(str::to_owned))
            .collect();
        if self.assignments.is_some() {
            fields.push("assignments".into());
        }
        fields
    }

    /// Who made the change: their UPN, their name, or the application.
    pub fn actor_name(&self) -> Option<String> {
        let a = self.actor.as_ref()?;
        ["user_principal_name", "display_name", "application"]
            .iter()
            .find_map(|k| a.get(*k).and_then(Value::as_str).map(str::to_owned))
    }
}

/// A report and a page of its items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReportView {
    pub report: DriftReport,
    pub items: Vec<DriftItem>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// What changed from one backup set to another: counts and a page of items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSetDiff {
    pub from_backup_set_id: String,
    pub to_backup_set_id: String,
    pub counts: DriftCounts,
    pub items: Vec<DriftItem>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One object of a report to revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub object_type: String,
    pub object_id: String,
}

impl Client {
    /// The tenant's drift reports, newest first.
    pub async fn drift_reports(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        page: &PageQuery,
    ) -> Result<crate::Page<DriftReport>, Error> {
        self.json(Call::new(Route::ListDriftReports, drift_path(ws, t, "")).query(page.pairs()))
            .await
    }

    /// A report and a page of its items, by object type then id.
    pub async fn drift_report(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        report: RunId,
        page: &PageQuery,
    ) -> Result<DriftReportView, Error> {
        self.json(
            Call::new(
                Route::ViewDriftReport,
                drift_path(ws, t, &format!("/{report}")),
            )
            .query(page.pairs()),
        )
        .await
    }

    /// Accepts a report: a backup of its types now, linked from the report (once).
    pub async fn accept_drift(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        report: RunId,
        idempotency_key: Option<&str>,
    ) -> Result<StartResponse, Error> {
        self.json(
            Call::new(
                Route::AcceptDriftReport,
                drift_path(ws, t, &format!("/{report}/accept")),
            )
            .idempotency_key(idempotency_key),
        )
        .await
    }

    /// Reverts these items of a report: a restore preview of its baseline for exactly them.
    /// The 202 that creates the restore carries its confirmation token, once.
    pub async fn revert_drift(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        report: RunId,
        items: &[ObjectRef],
        mapping: Option<Value>,
    ) -> Result<PreviewResponse, Error> {
        let mut body = json!({ "items": items });
        if let Some(m) = mapping {
            body["mapping"] = m;
        }
        self.json(
            Call::new(
                Route::RevertDrift,
                drift_path(ws, t, &format!("/{report}/revert")),
            )
            .body(body),
        )
        .await
    }

    /// What changed from backup set `set` to `other`, a page of items.
    pub async fn diff_backup_sets(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        set: &str,
        other: &str,
        page: &PageQuery,
    ) -> Result<BackupSetDiff, Error> {
        self.json(
            Call::new(
                Route::DiffBackupSets,
                format!("/v1/workspaces/{ws}/tenants/{t}/backups/{set}/diff/{other}"),
            )
            .query(page.pairs()),
        )
        .await
    }
}
