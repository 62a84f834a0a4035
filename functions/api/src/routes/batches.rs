//! Batches: one request that starts a type's run in many tenants (see
//! `tenantops_core::batch`). Creating one is a single transaction whatever the number of
//! tenants; the relay starts the children from the table's stream. The view reads the
//! children's runs every time, so the batch's status is theirs.

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tenantops_aws::batches::{BatchCreated, BatchKey, ChildRun};
use tenantops_aws::{MemberGuard, Rejection, TenantStatus, WriteError};
use tenantops_core::batch::{
    self, Batch, BatchError, Child, ChildOrigin, ChildState, Progress, Targets,
};
use tenantops_core::{
    BatchId, Click, OperationParams, OperationType, Outcome, RunStatus, TenantId, WorkspaceId,
    links,
};

use super::common;
use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::launch;
use crate::request::ApiRequest;
use crate::response::Reply;

/// Queued children cancelled at once by a batch cancel (each its own transaction).
const CANCELS_AT_ONCE: usize = 16;

/// `{"type", "params"?, "tenants", "exclude"?}`, checked by hand so each mistake gets its
/// own code.
struct BatchRequest {
    operation: OperationType,
    params: Option<Value>,
    targets: Targets,
    exclude: Vec<TenantId>,
}

fn parse_body(body: Value) -> Result<BatchRequest, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "params" | "tenants" | "exclude"))
    {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; expected `type`, `params`, `tenants` and `exclude`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let operation = common::operation_type(map.remove("type"))?;
    let targets = match map.remove("tenants") {
        None => return Err(ApiError::InvalidBody("`tenants` is required".into())),
        Some(v) => Targets::parse(&v).map_err(targets_error)?,
    };
    let exclude = match map.remove("exclude") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.len() <= batch::MAX_TENANTS => {
            batch::parse_ids(&ids, "exclude").map_err(targets_error)?
        }
        Some(_) => {
            return Err(ApiError::BatchTargets(
                "`exclude` must list at most 1000 tenant ids".into(),
            ));
        }
    };
    Ok(BatchRequest {
        operation,
        params: map.remove("params").filter(|p| !p.is_null()),
        targets,
        exclude,
    })
}

fn targets_error(e: BatchError) -> ApiError {
    match e {
        BatchError::NotBatchable(op) => ApiError::NotStartableHere(op),
        BatchError::Invalid(m) => ApiError::BatchTargets(m),
    }
}

/// The active tenants `targets` name, less `exclude`: a named tenant (or exclusion) that is
/// not the workspace's is 404, a named archived tenant 409.
async fn resolve(
    deps: &Deps,
    ws: WorkspaceId,
    targets: &Targets,
    exclude: &[TenantId],
) -> Result<Vec<TenantId>, ApiError> {
    let tenants = deps.store.list_tenants(ws).await?;
    let by_id: HashMap<TenantId, &tenantops_aws::TenantRecord> =
        tenants.iter().map(|t| (t.tenant_id, t)).collect();
    if exclude.iter().any(|t| !by_id.contains_key(t)) {
        return Err(ApiError::NotFound(Resource::Tenant));
    }
    let active = |t: &&tenantops_aws::TenantRecord| t.status == TenantStatus::Active;
    let chosen: Vec<TenantId> = match targets {
        Targets::All => tenants.iter().filter(active).map(|t| t.tenant_id).collect(),
        Targets::Tag(tag) => tenants
            .iter()
            .filter(active)
            .filter(|t| t.tags.contains(tag))
            .map(|t| t.tenant_id)
            .collect(),
        Targets::Tenants(ids) => {
            for id in ids {
                match by_id.get(id) {
                    None => return Err(ApiError::NotFound(Resource::Tenant)),
                    Some(t) if t.status != TenantStatus::Active => {
                        return Err(ApiError::TenantArchived);
                    }
                    Some(_) => {}
                }
            }
            ids.clone()
        }
    };
    let chosen: Vec<TenantId> = chosen
        .into_iter()
        .filter(|t| !exclude.contains(t))
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::Batch(tenantops_core::ReasonCode::BatchNoTenants));
    }
    if chosen.len() > batch::MAX_TENANTS {
        return Err(ApiError::BatchTargets(format!(
            "the targets name {} active tenants; a batch starts at most {}",
            chosen.len(),
            batch::MAX_TENANTS
        )));
    }
    Ok(chosen)
}

pub async fn create(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let request = parse_body(req.json_body()?)?;
    batch::check_batchable(request.operation, request.params.as_ref()).map_err(|e| match e {
        BatchError::NotBatchable(op) => ApiError::NotStartableHere(op),
        BatchError::Invalid(m) => ApiError::InvalidParams(m),
    })?;
    let params = OperationParams::parse(request.operation, request.params)
        .map_err(|e| ApiError::InvalidParams(e.to_string()))?;
    let click = launch::click(req, &caller)?;
    common::authorize(deps, ws, &caller, request.operation.spec().start_capability).await?;
    let tenants = resolve(deps, ws, &request.targets, &request.exclude).await?;

    let now = Utc::now();
    let batch = Batch {
        id: BatchId::new(),
        workspace_id: ws,
        operation: request.operation,
        params: params.to_value(),
        targets: request.targets,
        exclude: request.exclude,
        tenants,
        created_by: tenantops_core::Initiator::User(caller.clone()),
        scope: None,
        created_at: now,
        cancelled_at: None,
        retry_of: None,
    };
    write(deps, &click, &caller, batch, "batch.create").await
}

/// Writes a new batch (see `Store::create_batch`) and answers it: 202, or 200 with the batch
/// an `Idempotency-Key` replay names.
async fn write(
    deps: &Deps,
    click: &Click,
    caller: &tenantops_core::UserId,
    batch: Batch,
    action: &str,
) -> Result<Reply, ApiError> {
    let ws = batch.workspace_id;
    let capability = batch.operation.spec().start_capability;
    let fingerprint = batch::fingerprint(
        batch.operation,
        &batch.params,
        &batch.targets,
        &batch.exclude,
        batch.retry_of,
    );
    let identity = match click {
        Click::Keyed { user, key } => Some(tenantops_core::identity::keyed(ws, user, key)),
        Click::Nonce(_) => None,
    };
    tracing::Span::current().record("batch_id", batch.id.to_string());
    let audit = common::Audit {
        workspace: ws,
        tenant: None,
        actor: caller,
        action,
        target: batch.id.to_string(),
    }
    .entry(
        None,
        Some(json!({
            "type": batch.operation,
            "params": batch.params,
            "targets": batch.targets,
            "exclude": batch.exclude,
            "tenants": batch.tenants.len(),
            "retry_of": batch.retry_of,
        })),
    );
    let roles = capability.roles();
    let guard = MemberGuard {
        user: caller,
        roles: &roles,
    };
    let key = identity.as_deref().map(|identity| BatchKey {
        identity,
        fingerprint: &fingerprint,
    });
    match deps.store.create_batch(&batch, guard, key, &audit).await {
        Ok(BatchCreated::Created) => {
            tracing::info!(
                tenants = batch.tenants.len(),
                "batch created (the relay starts its children)"
            );
            Ok(Reply::json(202, &view_of(&batch, &[], &[])))
        }
        Ok(BatchCreated::Replayed(id)) => {
            let existing = deps
                .store
                .get_batch(ws, id)
                .await?
                .ok_or_else(|| ApiError::internal_message("a keyed batch vanished"))?;
            let (children, runs) = children_of(deps, &existing).await?;
            Ok(Reply::json(200, &view_of(&existing, &children, &runs)))
        }
        Err(e) => Err(ApiError::write(e, capability)),
    }
}

/// Retries a batch's failed children: a new batch of the same type, params and scope over the
/// tenants whose child failed or was refused (those still active), linked by `retry_of` (a
/// workspace schedule's slot is retried as a backup now of its schedule: `batch::retried`).
/// Audited `batch.retry`; an `Idempotency-Key` replay answers the retry it created. A batch
/// with nothing failed (yet) is 409 `batch.nothing_to_retry`.
pub async fn retry(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (caller, original) = visible(req, deps, ws, id, true).await?;
    let click = launch::click(req, &caller)?;
    let (children, runs) = children_of(deps, &original).await?;
    let failed: Vec<TenantId> = failed_of(&children, &runs)
        .into_iter()
        .map(|f| f.tenant_id)
        .collect();
    let active: Vec<TenantId> = deps
        .store
        .list_tenants(original.workspace_id)
        .await?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active && failed.contains(&t.tenant_id))
        .map(|t| t.tenant_id)
        .collect();
    let tenants: Vec<TenantId> = failed.into_iter().filter(|t| active.contains(t)).collect();
    if tenants.is_empty() {
        return Err(ApiError::Batch(
            tenantops_core::ReasonCode::BatchNothingToRetry,
        ));
    }
    let (operation, params) = batch::retried(&original);
    let batch = Batch {
        id: BatchId::new(),
        workspace_id: original.workspace_id,
        operation,
        params,
        targets: Targets::Tenants(tenants.clone()),
        exclude: Vec::new(),
        tenants,
        created_by: tenantops_core::Initiator::User(caller.clone()),
        scope: original.scope.clone(),
        created_at: Utc::now(),
        cancelled_at: None,
        retry_of: Some(original.id),
    };
    write(deps, &click, &caller, batch, "batch.retry").await
}

/// The batch `raw` names in `ws`, if the caller may `view` (or, with `start`, cancel) it:
/// 404 for non-members and for batches of other workspaces, then 403.
async fn visible(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    raw: &str,
    start: bool,
) -> Result<(tenantops_core::UserId, Batch), ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let id: BatchId = raw
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::Batch))?;
    tracing::Span::current().record("batch_id", id.to_string());
    let role = common::role_in(deps, ws, &caller).await?;
    let batch = deps
        .store
        .get_batch(ws, id)
        .await?
        .ok_or(ApiError::NotFound(Resource::Batch))?;
    let spec = batch.operation.spec();
    common::require(
        role,
        if start {
            spec.start_capability
        } else {
            spec.view_capability
        },
    )?;
    Ok((caller, batch))
}

async fn children_of(deps: &Deps, batch: &Batch) -> Result<(Vec<Child>, Vec<ChildRun>), ApiError> {
    let children = deps.store.batch_children(batch.id).await?;
    let ids: Vec<_> = children.iter().filter_map(|c| c.run_id).collect();
    let runs = deps.store.child_runs(&ids).await?;
    Ok((children, runs))
}

pub async fn view(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (_, batch) = visible(req, deps, ws, id, false).await?;
    let (children, runs) = children_of(deps, &batch).await?;
    Ok(Reply::json(200, &view_of(&batch, &children, &runs)))
}

/// Cancels a batch: no child starts after it, and the children it started that are still
/// queued are cancelled (running ones finish; attached runs are other starts' and stay).
/// Audited once for the batch and once per cancelled run. Asking again answers the batch.
pub async fn cancel(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (caller, mut batch) = visible(req, deps, ws, id, true).await?;
    let capability = batch.operation.spec().start_capability;
    let roles = capability.roles();
    let guard = MemberGuard {
        user: &caller,
        roles: &roles,
    };
    if batch.cancelled_at.is_none() {
        let now = Utc::now();
        let audit = common::Audit {
            workspace: batch.workspace_id,
            tenant: None,
            actor: &caller,
            action: "batch.cancelled",
            target: batch.id.to_string(),
        }
        .entry(
            None,
            Some(json!({ "cancelled_at": tenantops_core::time::format(now) })),
        );
        match deps.store.cancel_batch(&batch, now, guard, &audit).await {
            Ok(()) => batch.cancelled_at = Some(now),
            // Cancelled by someone else meanwhile: the same end.
            Err(WriteError::Rejected(Rejection::Conflict)) => {}
            Err(e) => return Err(ApiError::write(e, capability)),
        }
    }
    let (children, runs) = children_of(deps, &batch).await?;
    let queued: Vec<_> = children
        .iter()
        .filter(|c| c.origin == ChildOrigin::Started)
        .filter_map(|c| c.run_id)
        .filter(|id| {
            runs.iter()
                .any(|r| r.id == *id && r.status == RunStatus::Queued)
        })
        .collect();
    let cancelled: Vec<Result<(), ApiError>> = futures::stream::iter(queued)
        .map(|id| cancel_queued_child(deps, &caller, guard, id))
        .buffer_unordered(CANCELS_AT_ONCE)
        .collect()
        .await;
    cancelled.into_iter().collect::<Result<Vec<()>, _>>()?;
    let batch = deps
        .store
        .get_batch(batch.workspace_id, batch.id)
        .await?
        .ok_or(ApiError::NotFound(Resource::Batch))?;
    let (children, runs) = children_of(deps, &batch).await?;
    Ok(Reply::json(200, &view_of(&batch, &children, &runs)))
}

/// Cancels one queued child, audited; one that a worker claimed meanwhile is left to finish.
async fn cancel_queued_child(
    deps: &Deps,
    caller: &tenantops_core::UserId,
    guard: MemberGuard<'_>,
    id: tenantops_core::RunId,
) -> Result<(), ApiError> {
    let Some(run) = deps.store.get_run(id).await? else {
        return Ok(());
    };
    if run.status != RunStatus::Queued {
        return Ok(());
    }
    let now = Utc::now();
    let audit = common::Audit {
        workspace: run.workspace_id,
        tenant: Some(run.tenant_id),
        actor: caller,
        action: "operation.cancelled",
        target: run.id.to_string(),
    }
    .entry(
        Some(json!({ "status": RunStatus::Queued })),
        Some(json!({ "status": RunStatus::Completed, "outcome": Outcome::Cancelled })),
    );
    match deps.store.cancel_queued(&run, now, guard, &audit).await {
        Ok(()) => {
            if let Some(stored) = deps.store.get_run(id).await? {
                tenantops_aws::announce_completed(&deps.events, &deps.store, &stored).await;
            }
            Ok(())
        }
        Err(WriteError::Rejected(Rejection::Conflict)) => Ok(()),
        Err(e) => Err(ApiError::write(e, run.operation.spec().start_capability)),
    }
}

#[derive(Debug, Serialize)]
struct BatchView<'a> {
    batch: BatchBody<'a>,
    children: Vec<ChildView>,
    /// The tenants whose child failed or was refused, with why.
    failed: Vec<FailedTenant>,
    links: BatchLinks,
}

#[derive(Debug, Serialize)]
struct BatchBody<'a> {
    #[serde(flatten)]
    batch: &'a Batch,
    status: batch::BatchStatus,
    progress: Progress,
}

#[derive(Debug, Serialize)]
struct ChildView {
    tenant_id: TenantId,
    origin: ChildOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<tenantops_core::RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    view: Option<String>,
}

/// The tenants whose child failed or was refused, with why (a refused start's reason, or the
/// failed run's first failure code).
fn failed_of(children: &[Child], runs: &[ChildRun]) -> Vec<FailedTenant> {
    children
        .iter()
        .filter_map(|child| {
            let run = child.run_id.and_then(|id| runs.iter().find(|r| r.id == id));
            let failed_run = run.filter(|r| r.outcome == Outcome::Failed);
            if child.origin != ChildOrigin::Refused && failed_run.is_none() {
                return None;
            }
            let reason = child
                .reason
                .map(|c| c.as_str().to_owned())
                .or_else(|| failed_run.and_then(|r| r.finish_code.clone()))
                .unwrap_or_else(|| tenantops_core::ReasonCode::Internal.as_str().to_owned());
            Some(FailedTenant {
                tenant_id: child.tenant_id,
                run_id: child.run_id,
                reason,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct FailedTenant {
    tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<tenantops_core::RunId>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct BatchLinks {
    view: String,
    cancel: String,
    retry: String,
    runs: String,
}

fn view_of<'a>(batch: &'a Batch, children: &[Child], runs: &[ChildRun]) -> BatchView<'a> {
    let run_of = |id| runs.iter().find(|r| r.id == id);
    let mut states = Vec::with_capacity(children.len());
    let mut shown = Vec::with_capacity(children.len());
    for child in children {
        let run = child.run_id.and_then(run_of);
        states.push(run.map(|r| ChildState {
            status: r.status,
            outcome: r.outcome,
        }));
        let reason = match (child.reason, run) {
            (Some(code), _) => Some(code.as_str().to_owned()),
            (None, Some(r)) if r.outcome == Outcome::Failed => r.finish_code.clone(),
            _ => None,
        };
        shown.push(ChildView {
            tenant_id: child.tenant_id,
            origin: child.origin,
            run_id: child.run_id,
            status: run.map(|r| r.status),
            outcome: run.map(|r| r.outcome),
            reason,
            view: child.run_id.map(links::view),
        });
    }
    let progress = Progress::of(batch.tenants.len(), &states);
    BatchView {
        batch: BatchBody {
            batch,
            status: progress.status(batch.cancelled_at.is_some()),
            progress,
        },
        children: shown,
        failed: failed_of(children, runs),
        links: BatchLinks {
            view: links::batch(batch.workspace_id, batch.id),
            cancel: links::batch_cancel(batch.workspace_id, batch.id),
            retry: links::batch_retry(batch.workspace_id, batch.id),
            runs: links::collection(batch.workspace_id, None),
        },
    }
}
