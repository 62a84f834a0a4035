//! The one start path: every route that starts runs prepares a [`Launch`] and ends in
//! [`launch`], so authorization, audit, notification, deduplication and dispatch-failure
//! handling happen the same way for all of them.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tenantops_aws::{
    AuditEntry, MemberGuard, Notification, Precondition, Rejection, StartQuota, StartRun, Started,
    WriteError,
};
use tenantops_core::identity::IdempotencyKey;
use tenantops_core::links::{self, RunLinks};
use tenantops_core::{Capability, Click, LockKind, OperationType, Run, RunStatus, UserId};
use ulid::Ulid;

use crate::Deps;
use crate::error::ApiError;
use crate::request::ApiRequest;
use crate::response::Reply;

/// The types a user may start at will whose starts count against the tenant's manual
/// backup quota (`Limits::manual_backup_quota`); scheduled backups are bounded by the
/// schedule's minimum interval instead.
const QUOTA_LIMITED: [OperationType; 2] = [
    OperationType::BackupScheduleRunNow,
    OperationType::BackupScheduleRetry,
];

#[derive(Debug, Serialize)]
struct StartReply<'a> {
    run: &'a Run,
    deduplicated: bool,
    links: RunLinks,
}

/// The request's click: its `Idempotency-Key`, or a fresh nonce (every request a new run).
pub fn click(req: &ApiRequest, caller: &UserId) -> Result<Click, ApiError> {
    Ok(match &req.idempotency_key {
        Some(raw) => Click::Keyed {
            user: caller.clone(),
            key: IdempotencyKey::parse(raw).map_err(|_| ApiError::InvalidIdempotencyKey)?,
        },
        None => Click::Nonce(Ulid::new()),
    })
}

/// A run a route has prepared, and what its start transaction must also check.
#[derive(Debug)]
pub struct Launch<'a> {
    pub caller: &'a UserId,
    pub run: Run,
    pub lock: LockKind,
    /// See `request_fingerprint`: what an `Idempotency-Key` replay must repeat.
    pub fingerprint: String,
    /// What the caller's membership must grant.
    pub capability: Capability,
    pub preconditions: &'a [Precondition],
}

/// Creates (or finds, on a dedupe hit) the run in one transaction, then dispatches a new run
/// and answers 202, or 200 with the existing run. `precondition_failed` says what the
/// failed precondition at an index means to the route that passed it.
pub async fn launch(
    deps: &Deps,
    launch: Launch<'_>,
    precondition_failed: impl Fn(usize) -> ApiError,
) -> Result<Reply, ApiError> {
    let Launch {
        caller,
        run,
        lock,
        fingerprint,
        capability,
        preconditions,
    } = launch;
    let operation = run.operation;
    let now = run.created_at;
    let audit = AuditEntry {
        id: Ulid::new(),
        workspace_id: run.workspace_id,
        tenant_id: Some(run.tenant_id),
        actor: caller.to_string(),
        action: "operation.start".into(),
        target: run.id.to_string(),
        before: None,
        after: Some(
            json!({ "type": operation, "status": RunStatus::Queued, "params": run.params }),
        ),
        at: now,
    };
    let roles = capability.roles();
    let quota = QUOTA_LIMITED.contains(&operation).then(|| StartQuota {
        limit: deps.limits.manual_backup_quota,
        window: chrono::Duration::seconds(i64::from(
            deps.limits.manual_backup_quota_window_seconds,
        )),
    });
    let started = deps
        .store
        .start_run(StartRun {
            run: &run,
            lock,
            fingerprint: &fingerprint,
            guard: Some(MemberGuard {
                user: caller,
                roles: &roles,
            }),
            audit: &audit,
            notification: Some(&Notification {
                id: Ulid::new(),
                user_id: caller.clone(),
                workspace_id: run.workspace_id,
                tenant_id: run.tenant_id,
                run_id: run.id,
                operation: operation.to_string(),
                status: RunStatus::Queued.to_string(),
                outcome: run.outcome.as_str().to_owned(),
                at: now,
            }),
            preconditions,
            quota,
        })
        .await
        .map_err(|e| match e {
            WriteError::Rejected(Rejection::Precondition(i)) => precondition_failed(i),
            other => ApiError::write(other, capability),
        })?;

    match started {
        Started::Deduplicated(existing) => {
            tracing::Span::current().record("run_id", existing.id.to_string());
            tracing::info!(operation = %operation, "start deduplicated");
            Ok(Reply::json(
                200,
                &StartReply {
                    links: links::related(&existing),
                    run: &existing,
                    deduplicated: true,
                },
            ))
        }
        Started::Created => {
            tracing::Span::current().record("run_id", run.id.to_string());
            if let Err(err) = deps.dispatcher.send(run.id).await {
                tracing::error!(error = %err, code = ?err.code, "dispatch failed; failing the run");
                match deps.store.fail_undispatched(&run, Utc::now()).await {
                    // A worker claimed it: the send was reported failed but delivered.
                    Ok(false) => tracing::warn!("the run was claimed after all; it stands"),
                    Ok(true) => return Err(ApiError::DispatchFailed(run.id)),
                    // If even that fails, the reaper finds the run later.
                    Err(err) => {
                        tracing::error!(error = %err, "could not mark the undispatched run failed");
                        return Err(ApiError::DispatchFailed(run.id));
                    }
                }
            }
            tracing::info!(operation = %operation, "run created and dispatched");
            Ok(Reply::json(
                202,
                &StartReply {
                    run: &run,
                    deduplicated: false,
                    links: links::related(&run),
                },
            ))
        }
    }
}
