//! Typed answers of the API, as `functions/api/openapi.json` describes them. Fields a client
//! has no use for stay JSON values; unknown fields are ignored, so an API that adds fields
//! does not break an older client.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::secret::SecretString;
use tenantops_core::{RunId, TenantId, WorkspaceId};

/// A page of a list: `{items, next_cursor}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A page request: `limit` and the opaque `next_cursor` of the page before.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q
    }
}

/// A run's status, outcome and counters are the domain's own types.
pub use tenantops_core::{Counters, Outcome, RunStatus};

/// One failure of a run: a reason code, a message, and the object it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<String>,
}

/// An operation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: RunStatus,
    pub outcome: Outcome,
    pub initiator: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub context: Value,
    pub counters: Counters,
    #[serde(default)]
    pub failures: Vec<Failure>,
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<String>,
    #[serde(default)]
    pub result: Value,
}

/// The links a run answer carries: where to view it and its collections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLinks {
    pub view: String,
    pub collection: String,
    pub tenant_runs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

/// The answer of a start: 202 a new run, 200 the active one (`deduplicated`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartResponse {
    pub run: Run,
    pub deduplicated: bool,
    pub links: RunLinks,
}

/// The run viewer's answer (and a cancel's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResponse {
    pub run: Run,
    pub links: RunLinks,
}

/// A list filter of `GET .../operations`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub tenant: Option<TenantId>,
    pub kind: Option<String>,
    pub status: Option<RunStatus>,
    pub active: Option<bool>,
    /// A problem class: failed, partial, stale, stuck.
    pub problem: Option<String>,
    pub page: PageQuery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceResponse {
    pub workspace: Workspace,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub role: String,
    pub added_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberResponse {
    pub member: Member,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub before: Value,
    #[serde(default)]
    pub after: Value,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub workspace_id: WorkspaceId,
    pub entra_tenant_id: String,
    pub display_name: String,
    pub status: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: String,
    #[serde(default)]
    pub links: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantResponse {
    pub tenant: Tenant,
}

/// A provider connection's metadata (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub connection_id: String,
    pub client_id: String,
    pub version: u64,
    pub created_at: String,
    #[serde(default)]
    pub rotated_at: Option<String>,
    #[serde(default)]
    pub secret_expires_at: Option<String>,
    pub status: String,
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub last_check: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionResponse {
    pub connection: Connection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnboardingStep {
    pub step: String,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockingReason {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Onboarding {
    pub tenant_id: TenantId,
    pub complete: bool,
    pub steps: Vec<OnboardingStep>,
    #[serde(default)]
    pub blocking_reason: Option<BlockingReason>,
    #[serde(default)]
    pub verification: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryItem {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub deleted: bool,
    pub seen_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSet {
    pub id: String,
    /// The run that wrote the set: its viewer's path.
    pub run: String,
    pub run_id: RunId,
    #[serde(default)]
    pub schedule_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub types: Vec<String>,
    pub object_count: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub object_type: String,
    pub object_id: String,
    pub name: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSetView {
    pub backup_set: BackupSet,
    pub items: Vec<ManifestEntry>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    pub source: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub outcome: String,
    pub at: String,
    /// The run's viewer.
    pub run_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    /// `backup` or `drift_check` (absent from older APIs: a backup schedule).
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    pub cadence: Value,
    pub timezone: String,
    pub types: Vec<String>,
    /// Absent (null) on a drift schedule.
    #[serde(default)]
    pub retention: Value,
    pub enabled: bool,
    pub next_fire_at: String,
    #[serde(default)]
    pub last_run_id: Option<RunId>,
    #[serde(default)]
    pub skipped_total: u64,
    /// A tenant's schedule: its tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// A workspace's schedule: `"all"` or `{"tag"}`, and the batch its last slot fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleResponse {
    pub schedule: Schedule,
}

/// A preview's counts by action.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RestoreSummary {
    pub create: u64,
    pub update: u64,
    pub skip_unchanged: u64,
    pub unresolved_targets: u64,
    pub blocked_items: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    pub id: String,
    pub backup_set_id: String,
    pub status: String,
    #[serde(default)]
    pub preview_run_id: Option<RunId>,
    pub created_at: String,
    pub expires_at: String,
    pub executable: bool,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub item_count: u64,
    #[serde(default)]
    pub summary: RestoreSummary,
    #[serde(default)]
    pub high_risk_items: u64,
    #[serde(default)]
    pub run_id: Option<RunId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreItem {
    pub index: u64,
    pub object_type: String,
    pub object_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    pub status: String,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub written_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreView {
    pub restore: Restore,
    pub items: Vec<RestoreItem>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreRef {
    pub id: String,
    pub status: String,
}

/// The answer of a preview. The confirmation token comes once, in the 202 that created the
/// restore; it is never serialized (so never printed as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewResponse {
    pub run: Run,
    pub deduplicated: bool,
    pub links: RunLinks,
    pub restore: RestoreRef,
    #[serde(default, skip_serializing)]
    pub confirmation_token: Option<SecretString>,
}
