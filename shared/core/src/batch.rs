//! Batches: one request that starts one operation type's run in many tenants of a workspace
//! (every active tenant, a chosen list, or those with a tag, less exclusions), tracked as one.
//!
//! A batch is a record of intent: its type, params, targets and the tenants they resolved to.
//! Each child is an ordinary run with its type's own identity, so a tenant whose run of that
//! identity is already active gets that run attached, not a second one. The batch's status is
//! never stored: it is read from its children every time, so it cannot disagree with them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{BatchId, RestoreId, RunId, ScheduleId, TenantId, WorkspaceId};
use crate::operation::{OperationType, StartSurface};
use crate::reason::ReasonCode;
use crate::run::{Initiator, Outcome, RunStatus};
use crate::tag::Tag;

/// The most tenants one batch targets (named or resolved): the children are recorded one item
/// each, and the batch item holds their ids (26 bytes each), far below DynamoDB's 400 KB.
pub const MAX_TENANTS: usize = 1000;

/// Params that name one tenant's own objects: a batch applies its params to every tenant, so
/// they cannot be given (the field, what it names).
const PER_TENANT_PARAMS: &[(&str, &str)] = &[
    ("backup_schedule_id", "a schedule"),
    ("baseline_backup_set_id", "a backup set"),
];

/// Which tenants a batch targets, as the request names them (and as it is stored and shown:
/// `"all"`, a list of ids, or `{"tag": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every active tenant of the workspace.
    All,
    /// These tenants (each must be an active tenant of the workspace).
    Tenants(Vec<TenantId>),
    /// The active tenants carrying this tag.
    Tag(Tag),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("{0}")]
    Invalid(String),
    #[error("`{0}` runs cannot be started in a batch")]
    NotBatchable(OperationType),
}

impl Serialize for Targets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Targets::All => s.serialize_str("all"),
            Targets::Tenants(ids) => ids.serialize(s),
            Targets::Tag(tag) => serde_json::json!({ "tag": tag }).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Targets::parse(&v).map_err(serde::de::Error::custom)
    }
}

impl Targets {
    /// `"all"`, a list of tenant ids, or `{"tag": "..."}`.
    pub fn parse(v: &Value) -> Result<Self, BatchError> {
        let invalid = |m: &str| BatchError::Invalid(m.to_owned());
        match v {
            Value::String(s) if s == "all" => Ok(Targets::All),
            Value::Array(ids) => {
                if ids.is_empty() || ids.len() > MAX_TENANTS {
                    return Err(invalid("`tenants` must list 1 to 1000 tenant ids"));
                }
                let ids = parse_ids(ids, "tenants")?;
                Ok(Targets::Tenants(ids))
            }
            Value::Object(m) if m.len() == 1 && m.contains_key("tag") => {
                let raw = m.get("tag").and_then(Value::as_str).unwrap_or_default();
                Tag::parse(raw)
                    .map(Targets::Tag)
                    .map_err(|e| BatchError::Invalid(format!("`tenants.tag`: {e}")))
            }
            _ => Err(invalid(
                "`tenants` must be \"all\", a list of tenant ids, or {\"tag\": \"...\"}",
            )),
        }
    }
}

/// Tenant ids, each once, in the order given.
pub fn parse_ids(ids: &[Value], field: &str) -> Result<Vec<TenantId>, BatchError> {
    let mut out: Vec<TenantId> = Vec::with_capacity(ids.len());
    for id in ids {
        let parsed = id
            .as_str()
            .and_then(|s| s.parse::<TenantId>().ok())
            .ok_or_else(|| BatchError::Invalid(format!("`{field}` holds an invalid tenant id")))?;
        if out.contains(&parsed) {
            return Err(BatchError::Invalid(format!(
                "`{field}` names tenant {parsed} twice"
            )));
        }
        out.push(parsed);
    }
    Ok(out)
}

/// Whether `operation` may run in a batch, and params that apply to every tenant: the types a
/// user starts on the operations route (each reads the tenant and writes only tenantops's own
/// records), without params that name one tenant's objects; and restores, as a write batch
/// ([`needs_confirmation`]). A restore's execution is never asked for directly: it is a
/// confirmed restore batch's.
pub fn check_batchable(operation: OperationType, params: Option<&Value>) -> Result<(), BatchError> {
    if needs_confirmation(operation) {
        return Ok(());
    }
    if operation.spec().start_surface != StartSurface::OperationsRoute {
        return Err(BatchError::NotBatchable(operation));
    }
    if let Some(Value::Object(p)) = params
        && let Some((field, what)) = PER_TENANT_PARAMS
            .iter()
            .find(|(f, _)| p.get(*f).is_some_and(|v| !v.is_null()))
    {
        return Err(BatchError::Invalid(format!(
            "`params.{field}` names {what} of one tenant; a batch's params apply to every tenant"
        )));
    }
    Ok(())
}

/// Whether a batch of `operation` writes to its tenants, and so is two-step: its children are
/// previews (one restore per tenant, each computed from the baseline and the tenant's own
/// inventory, never written), answered with a confirmation token once; the writes are a second
/// batch, started only by that token (`POST .../batches/{id}/execute`). Read-only types start
/// at once.
pub fn needs_confirmation(operation: OperationType) -> bool {
    operation == OperationType::RestorePreview
}

/// A fingerprint of a batch request, stored on its `Idempotency-Key` lock: the same key with
/// another request is refused.
pub fn fingerprint(
    operation: OperationType,
    params: &Value,
    targets: &Targets,
    exclude: &[TenantId],
    retry_of: Option<BatchId>,
) -> String {
    let canonical = serde_json::json!({
        "batch": operation.as_str(),
        "params": params,
        "targets": targets,
        "exclude": exclude,
        "retry_of": retry_of,
    });
    crate::identity::hex_sha256(canonical.to_string().as_bytes())
}

/// The strict identity of a workspace schedule's batch for one slot: a slot fires one batch,
/// ever (each child's own identity is strict per schedule, slot and tenant).
pub fn scheduled_identity(
    ws: WorkspaceId,
    schedule: ScheduleId,
    slot: chrono::DateTime<chrono::Utc>,
) -> String {
    format!("{ws}/batch/{schedule}/{}", crate::params::slot_string(slot))
}

/// What a retry of `original`'s failed children starts: its type and params, except for a
/// workspace schedule's slot, whose children's identities are strict (a slot fires once per
/// tenant, ever, so a retry under them would only find the failed runs again): its retry is a
/// backup now of the same schedule, of the same scope.
pub fn retried(original: &Batch) -> (OperationType, Value) {
    match original.operation {
        OperationType::BackupScheduleScheduled => (
            OperationType::BackupScheduleRunNow,
            serde_json::json!({
                "backup_schedule_id": original.params.get("backup_schedule_id").cloned(),
            }),
        ),
        // A drift schedule's slot likewise: a drift check (against the latest complete set).
        OperationType::DriftScheduled => (OperationType::DriftCheck, serde_json::json!({})),
        other => (other, original.params.clone()),
    }
}

/// A batch as stored: what was asked and the tenants it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub id: BatchId,
    pub workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    pub operation: OperationType,
    pub params: Value,
    pub targets: Targets,
    #[serde(default)]
    pub exclude: Vec<TenantId>,
    /// The active tenants the targets named when the batch was created, less exclusions.
    pub tenants: Vec<TenantId>,
    /// A user, or the scheduler for a workspace schedule's slot.
    pub created_by: Initiator,
    /// The object types the children cover (a workspace schedule's); `None`: the type's
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    #[serde(with = "crate::time")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Set once by a cancel: no child is started after it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::option"
    )]
    pub cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The batch whose failed children this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<BatchId>,
    /// A write batch's confirmation token, as its sha256 (the token itself is answered once,
    /// to the creator). Each child restore holds the same hash. Never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// The batch that executes this restore batch's previews: set once, by the confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<BatchId>,
    /// The restore batch whose previews this batch executes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_of: Option<BatchId>,
}

impl Batch {
    /// The batch's status from its children's `progress`: theirs, except that a restore
    /// batch whose previews are done waits for its confirmation, and is executed after it.
    pub fn status(&self, progress: &Progress) -> BatchStatus {
        let status = progress.status(self.cancelled_at.is_some());
        let previewed = matches!(
            status,
            BatchStatus::Succeeded | BatchStatus::PartiallySucceeded
        );
        match (needs_confirmation(self.operation), self.execution_id) {
            (true, Some(_)) => BatchStatus::Executed,
            (true, None) if previewed => BatchStatus::AwaitingConfirmation,
            _ => status,
        }
    }

    /// A batch of `operation` created now by `created_by`, with nothing cancelled, retried or
    /// confirmed yet.
    pub fn new(
        workspace_id: WorkspaceId,
        operation: OperationType,
        params: Value,
        targets: Targets,
        tenants: Vec<TenantId>,
        created_by: Initiator,
    ) -> Batch {
        Batch {
            id: BatchId::new(),
            workspace_id,
            operation,
            params,
            targets,
            exclude: Vec::new(),
            tenants,
            created_by,
            scope: None,
            created_at: chrono::Utc::now(),
            cancelled_at: None,
            retry_of: None,
            token_hash: None,
            execution_id: None,
            execute_of: None,
        }
    }
}

/// How a tenant's child came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildOrigin {
    /// The batch started it.
    Started,
    /// A run of the same identity was already active: it became the tenant's child.
    Attached,
    /// The start was refused (the tenant was archived, the connection is missing, ...).
    Refused,
}

/// One tenant's child, as recorded when the batch started (or attached) its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub tenant_id: TenantId,
    pub origin: ChildOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// Why a refused start was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonCode>,
    /// A restore batch's child: the restore its preview fills (what the execution runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_id: Option<RestoreId>,
}

/// What a batch's children are doing, read from their runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Some targeted tenants have no child yet: the batch is still starting them.
    Starting,
    /// Every tenant has its child, and some are active.
    Running,
    Succeeded,
    PartiallySucceeded,
    Failed,
    /// Cancelled, and every child is terminal.
    Cancelled,
    /// A restore batch whose previews are done, some or all of them successfully: it waits
    /// for its confirmation (`POST .../execute` with its token).
    AwaitingConfirmation,
    /// A restore batch that was confirmed: its executions are their own batch.
    Executed,
}

/// A child's state as the batch shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildState {
    pub status: RunStatus,
    pub outcome: Outcome,
}

/// Counts by status and outcome, and the batch's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub tenants: usize,
    /// Tenants without a child yet.
    pub not_started: usize,
    pub refused: usize,
    pub queued: usize,
    pub running: usize,
    pub completed: usize,
    pub succeeded: usize,
    pub partially_succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl Progress {
    /// Counts `children` (each with its run's state, `None` for a refused start) of a batch
    /// over `tenants` tenants.
    pub fn of(tenants: usize, children: &[Option<ChildState>]) -> Progress {
        let mut p = Progress {
            tenants,
            not_started: tenants.saturating_sub(children.len()),
            ..Progress::default()
        };
        for child in children {
            let Some(state) = child else {
                p.refused += 1;
                continue;
            };
            match state.status {
                RunStatus::Queued => p.queued += 1,
                RunStatus::Running => p.running += 1,
                RunStatus::Completed => p.completed += 1,
            }
            match state.outcome {
                Outcome::Pending => {}
                Outcome::Succeeded => p.succeeded += 1,
                Outcome::PartiallySucceeded => p.partially_succeeded += 1,
                Outcome::Failed => p.failed += 1,
                Outcome::Cancelled => p.cancelled += 1,
            }
        }
        p
    }

    /// Starting while a tenant lacks its child (unless cancelled: none will come), running
    /// while a child is active, then by outcome: succeeded if every tenant's child succeeded,
    /// failed if none did, else partially succeeded.
    pub fn status(&self, cancelled: bool) -> BatchStatus {
        if self.not_started > 0 && !cancelled {
            return BatchStatus::Starting;
        }
        if self.queued + self.running > 0 {
            return BatchStatus::Running;
        }
        if cancelled {
            return BatchStatus::Cancelled;
        }
        if self.succeeded == self.tenants {
            BatchStatus::Succeeded
        } else if self.succeeded + self.partially_succeeded == 0 {
            BatchStatus::Failed
        } else {
            BatchStatus::PartiallySucceeded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn done(outcome: Outcome) -> Option<ChildState> {
        Some(ChildState {
            status: RunStatus::Completed,
            outcome,
        })
    }

    #[test]
    fn targets_parse_each_form_and_refuse_the_rest() {
        assert_eq!(Targets::parse(&json!("all")), Ok(Targets::All));
        let t = TenantId::new();
        assert_eq!(
            Targets::parse(&json!([t.to_string()])),
            Ok(Targets::Tenants(vec![t]))
        );
        assert!(matches!(
            Targets::parse(&json!({"tag": "gold"})),
            Ok(Targets::Tag(_))
        ));
        for bad in [
            json!("some"),
            json!([]),
            json!(["nope"]),
            json!([t.to_string(), t.to_string()]),
            json!({"tag": ""}),
            json!({"tag": "a", "x": 1}),
            json!(3),
        ] {
            assert!(Targets::parse(&bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_TENANTS)
            .map(|_| TenantId::new().to_string())
            .collect();
        assert!(Targets::parse(&json!(many)).is_err());
    }

    #[test]
    fn targets_are_stored_as_they_are_asked_for() {
        for v in [
            json!("all"),
            json!([TenantId::new().to_string()]),
            json!({"tag": "gold"}),
        ] {
            let t = Targets::parse(&v).expect("valid");
            assert_eq!(serde_json::to_value(&t).expect("serializes"), v);
            assert_eq!(
                serde_json::from_value::<Targets>(v).expect("deserializes"),
                t
            );
        }
    }

    #[test]
    fn operations_route_types_without_per_tenant_params_and_restores_are_batchable() {
        assert!(check_batchable(OperationType::InventorySync, None).is_ok());
        assert!(check_batchable(OperationType::BackupScheduleRunNow, Some(&json!({}))).is_ok());
        assert!(
            check_batchable(
                OperationType::BackupScheduleRunNow,
                Some(&json!({"backup_schedule_id": ulid::Ulid::new().to_string()}))
            )
            .is_err()
        );
        assert!(
            check_batchable(
                OperationType::DriftCheck,
                Some(&json!({"baseline_backup_set_id": ulid::Ulid::new().to_string()}))
            )
            .is_err()
        );
        // A restore is a write batch, confirmed; its execution is never asked for directly.
        assert!(check_batchable(OperationType::RestorePreview, None).is_ok());
        assert!(needs_confirmation(OperationType::RestorePreview));
        assert_eq!(
            check_batchable(OperationType::RestoreExecute, None),
            Err(BatchError::NotBatchable(OperationType::RestoreExecute))
        );
        for read in [OperationType::InventorySync, OperationType::DriftCheck] {
            assert!(!needs_confirmation(read));
        }
        assert!(check_batchable(OperationType::BackupScheduleScheduled, None).is_err());
    }

    #[test]
    fn the_status_follows_the_children() {
        let active = Some(ChildState {
            status: RunStatus::Running,
            outcome: Outcome::Pending,
        });
        let ok = done(Outcome::Succeeded);
        let failed = done(Outcome::Failed);
        let status = |n, c: &[Option<ChildState>], cancelled| Progress::of(n, c).status(cancelled);
        assert_eq!(status(3, &[ok, ok], false), BatchStatus::Starting);
        assert_eq!(status(2, &[ok, active], false), BatchStatus::Running);
        assert_eq!(status(2, &[ok, ok], false), BatchStatus::Succeeded);
        assert_eq!(
            status(3, &[ok, ok, None], false),
            BatchStatus::PartiallySucceeded
        );
        assert_eq!(status(2, &[failed, None], false), BatchStatus::Failed);
        assert_eq!(status(3, &[ok], true), BatchStatus::Cancelled);
        assert_eq!(status(3, &[ok, active], true), BatchStatus::Running);
        let p = Progress::of(4, &[ok, failed, None]);
        assert_eq!(
            (p.not_started, p.refused, p.completed, p.succeeded, p.failed),
            (1, 1, 2, 1, 1)
        );
    }
}
