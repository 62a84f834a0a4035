//! Every operation type, declared once: its name, label, identity rule, capabilities, start
//! surface and params, followed by each type's params struct and what it adds to the
//! identity and the run context.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ulid::Ulid;

use super::{TypeParams, operations};
use crate::ids::RunId;
use crate::params::{DEFAULT_CONNECTION_ID, is_slug, slot_string, validate_scope_types};
use crate::run::RunContext;

operations! {
    /// List the tenant's Intune objects into the inventory.
    InventorySync {
        name: "inventory.sync",
        label: "Inventory sync",
        identity: DeterministicWhileActive,
        start: InventorySync,
        view: InventorySync,
        surface: OperationsRoute,
        params: InventorySyncParams,
    }
    /// Refresh the cached directory groups.
    DirectoryGroupsSync {
        name: "directory_groups.sync",
        label: "Directory groups sync",
        identity: DeterministicWhileActive,
        start: DirectorySync,
        view: DirectorySync,
        surface: OperationsRoute,
        params: DirectoryGroupsSyncParams,
    }
    /// Refresh the cached directory role definitions.
    DirectoryRoleDefinitionsSync {
        name: "directory_role_definitions.sync",
        label: "Directory role definitions sync",
        identity: DeterministicWhileActive,
        start: DirectorySync,
        view: DirectorySync,
        surface: OperationsRoute,
        params: DirectoryRoleDefinitionsSyncParams,
    }
    /// Check a provider connection's credentials and permissions. Read-only members may watch
    /// these (onboarding shows them) but not start them.
    ProviderConnectionVerify {
        name: "provider_connection.verify",
        label: "Provider connection check",
        identity: DeterministicWhileActive,
        start: ConnectionVerify,
        view: ConnectionView,
        surface: OperationsRoute,
        params: ProviderConnectionVerifyParams,
    }
    /// A backup now, of a schedule's scope or of every backup type.
    BackupScheduleRunNow {
        name: "backup_schedule.run_now",
        label: "Backup now",
        identity: UniquePerClick,
        start: BackupRun,
        view: BackupRun,
        surface: OperationsRoute,
        params: BackupRunNowParams,
    }
    /// A backup that retries a failed or partial one of a schedule.
    BackupScheduleRetry {
        name: "backup_schedule.retry",
        label: "Backup retry",
        identity: UniquePerClick,
        start: BackupRun,
        view: BackupRun,
        surface: DedicatedRoute,
        params: BackupRetryParams,
    }
    /// A schedule's backup for one slot, started by the scheduler only.
    BackupScheduleScheduled {
        name: "backup_schedule.scheduled",
        label: "Scheduled backup",
        identity: Strict,
        start: BackupRun,
        view: BackupRun,
        surface: System,
        params: BackupScheduledParams,
    }
    /// A restore preview: the plan of every selected snapshot object, computed from DynamoDB
    /// and the snapshots (never Graph) into the restore's items. One active run per backup
    /// set and selection.
    RestorePreview {
        name: "restore.preview",
        label: "Restore preview",
        identity: DeterministicWhileActive,
        start: RestorePreview,
        view: RestorePreview,
        surface: DedicatedRoute,
        params: RestorePreviewParams,
    }
    /// The execution of a confirmed restore preview.
    RestoreExecute {
        name: "restore.execute",
        label: "Restore",
        identity: DeterministicWhileActive,
        start: RestoreExecute,
        view: RestoreExecute,
        surface: DedicatedRoute,
        params: RestoreExecuteParams,
    }
    /// Compare the tenant's live objects with a backup set (its latest complete one unless
    /// the params name another) into a drift report. One active check per tenant.
    DriftCheck {
        name: "drift.check",
        label: "Drift check",
        identity: DeterministicWhileActive,
        start: DriftCheck,
        view: DriftView,
        surface: OperationsRoute,
        params: DriftCheckParams,
    }
    /// A drift schedule's check for one slot, started by the scheduler only: compared with the
    /// tenant's latest complete set, as a `drift.check` without params.
    DriftScheduled {
        name: "drift.scheduled",
        label: "Scheduled drift check",
        identity: Strict,
        start: DriftCheck,
        view: DriftView,
        surface: System,
        params: DriftScheduledParams,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySyncParams {
    /// Object types to list; `None` covers every type in the contract registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}

impl TypeParams for InventorySyncParams {
    fn validate(&self) -> Result<(), String> {
        match &self.types {
            Some(types) => validate_scope_types(types),
            None => Ok(()),
        }
    }

    fn fill_context(&self, ctx: &mut RunContext) {
        if let Some(types) = &self.types {
            ctx.target_scope = json!({ "types": types });
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryGroupsSyncParams {
    /// Ignore the stored delta link and read every group.
    #[serde(default)]
    pub full: bool,
}

impl TypeParams for DirectoryGroupsSyncParams {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRoleDefinitionsSyncParams {}

impl TypeParams for DirectoryRoleDefinitionsSyncParams {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConnectionVerifyParams {
    #[serde(default = "default_connection")]
    pub connection_id: String,
}

fn default_connection() -> String {
    DEFAULT_CONNECTION_ID.to_owned()
}

impl TypeParams for ProviderConnectionVerifyParams {
    fn validate(&self) -> Result<(), String> {
        if is_slug(&self.connection_id) {
            Ok(())
        } else {
            Err("connection_id must be 1 to 64 of a-z, 0-9, '-' and '_'".into())
        }
    }

    fn identity_suffix(&self) -> Option<String> {
        Some(self.connection_id.clone())
    }

    fn fill_context(&self, ctx: &mut RunContext) {
        ctx.provider_connection_id = Some(self.connection_id.clone());
    }
}

/// A backup always names its types: the start's scope, or else every backup type.
fn backup_scope(ctx: &mut RunContext) {
    if ctx.target_scope == json!("tenant") {
        ctx.target_scope = json!({ "types": crate::object_type::BACKUP_TYPES });
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRunNowParams {
    /// The schedule whose scope to back up; `None` is an ad-hoc backup of every backup-capable type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_schedule_id: Option<Ulid>,
}

impl TypeParams for BackupRunNowParams {
    fn fill_context(&self, ctx: &mut RunContext) {
        backup_scope(ctx);
        ctx.backup_schedule_id = self.backup_schedule_id.map(|s| s.to_string());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRetryParams {
    pub backup_schedule_id: Ulid,
    /// The failed or partially succeeded run this retries.
    pub run_id: RunId,
}

impl TypeParams for BackupRetryParams {
    fn fill_context(&self, ctx: &mut RunContext) {
        backup_scope(ctx);
        ctx.backup_schedule_id = Some(self.backup_schedule_id.to_string());
        ctx.retry_of = Some(self.run_id);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupScheduledParams {
    pub backup_schedule_id: Ulid,
    pub scheduled_for: DateTime<Utc>,
}

impl TypeParams for BackupScheduledParams {
    /// One run per schedule and slot, ever.
    fn identity_suffix(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.backup_schedule_id,
            slot_string(self.scheduled_for)
        ))
    }

    fn fill_context(&self, ctx: &mut RunContext) {
        backup_scope(ctx);
        ctx.backup_schedule_id = Some(self.backup_schedule_id.to_string());
        ctx.scheduled_for = Some(self.scheduled_for);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreExecuteParams {
    pub restore_id: Ulid,
}

impl TypeParams for RestoreExecuteParams {
    fn identity_suffix(&self) -> Option<String> {
        Some(self.restore_id.to_string())
    }

    fn fill_context(&self, ctx: &mut RunContext) {
        ctx.restore_id = Some(self.restore_id.to_string());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestorePreviewParams {
    /// The restore the preview fills (created in the run's start transaction).
    pub restore_id: Ulid,
    pub backup_set_id: Ulid,
    /// [`crate::restore::selection_hash`] of the selected items and the mapping.
    pub selection: String,
}

impl TypeParams for RestorePreviewParams {
    fn validate(&self) -> Result<(), String> {
        if !self.selection.is_empty()
            && self.selection.len() <= 64
            && self.selection.bytes().all(|b| b.is_ascii_hexdigit())
        {
            Ok(())
        } else {
            Err("selection must be a hex digest".into())
        }
    }

    /// Deduped per backup set and selection, not per restore: a second start while one is
    /// active returns it (and its restore).
    fn identity_suffix(&self) -> Option<String> {
        Some(format!("{}/{}", self.backup_set_id, self.selection))
    }

    fn fill_context(&self, ctx: &mut RunContext) {
        ctx.restore_id = Some(self.restore_id.to_string());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftCheckParams {
    /// The backup set to compare with; `None` is the tenant's latest complete set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_backup_set_id: Option<Ulid>,
    /// Object types to compare; `None` covers every backup type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}

impl TypeParams for DriftCheckParams {
    fn validate(&self) -> Result<(), String> {
        match &self.types {
            Some(types) => validate_scope_types(types),
            None => Ok(()),
        }
    }

    /// The check reads the types in scope as a backup would (the params', else every
    /// backup type), each compared with the baseline set's objects of that type.
    fn fill_context(&self, ctx: &mut RunContext) {
        match &self.types {
            Some(types) => ctx.target_scope = json!({ "types": types }),
            None => backup_scope(ctx),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftScheduledParams {
    /// The drift schedule (a schedule of kind `drift_check`) whose slot this is.
    pub backup_schedule_id: Ulid,
    pub scheduled_for: DateTime<Utc>,
}

impl TypeParams for DriftScheduledParams {
    /// One check per schedule and slot, ever (as a scheduled backup's).
    fn identity_suffix(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.backup_schedule_id,
            slot_string(self.scheduled_for)
        ))
    }

    /// The schedule's types (the start's scope), else every backup type, like a `drift.check`.
    fn fill_context(&self, ctx: &mut RunContext) {
        backup_scope(ctx);
        ctx.backup_schedule_id = Some(self.backup_schedule_id.to_string());
        ctx.scheduled_for = Some(self.scheduled_for);
    }
}
