//! The one start path: every route that starts runs prepares a [`Launch`] and ends in
//! [`launch`], so authorization and deduplication happen the same way for all of them. A start
//! is one conditional write: the run's audit entry, notification and work message follow from
//! the table's stream (`functions/relay`).

use serde::Serialize;
use tenantops_aws::{
    MemberGuard, Precondition, Rejection, StartQuota, StartRun, Started, WriteError,
};
use tenantops_core::identity::IdempotencyKey;
use tenantops_core::links::{self, RunLinks};
use tenantops_core::{Capability, Click, LockKind, OperationType, Run, UserId};
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
    /// See `Identity::fresh`.
    pub fresh: bool,
    /// See `request_fingerprint`: what an `Idempotency-Key` replay must repeat.
    pub fingerprint: String,
    /// What the caller's membership must grant.
    pub capability: Capability,
    pub preconditions: &'a [Precondition],
}

/// Creates (or finds, on a dedupe hit) the run, and answers 202 with the new run (the relay
/// dispatches it), or 200 with the existing run. `precondition_failed` says what the
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
        fresh,
        fingerprint,
        capability,
        preconditions,
    } = launch;
    let operation = run.operation;
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
            fresh,
            fingerprint: &fingerprint,
            guard: Some(MemberGuard {
                user: caller,
                roles: &roles,
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
            tracing::info!(operation = %operation, "run created (the relay dispatches it)");
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
