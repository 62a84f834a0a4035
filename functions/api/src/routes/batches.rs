//! Batches: one request that starts a type's run in many tenants (see
//! `tenantops_core::batch`). Creating one is a single transaction whatever the number of
//! tenants; the relay starts the children from the table's stream. The view reads the
//! children's runs every time, so the batch's status is theirs.

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};
use tenantops_aws::batches::{BaselineRestore, BatchCreated, BatchKey};
use tenantops_aws::restores::SelectedItem;
use tenantops_aws::{MemberGuard, Rejection, TenantStatus, WriteError};
use tenantops_core::batch::{self, Batch, BatchError, ChildOrigin, ChildState, Progress, Targets};
use tenantops_core::restore as restore_plan;
use tenantops_core::{
    BatchId, Capability, Click, OperationParams, OperationType, Outcome, ReasonCode, RunStatus,
    TenantId, WorkspaceId,
};

use super::common;
use crate::Deps;
use crate::batch_view::{children_of, failed_of, view_of};
use crate::error::{ApiError, Resource};
use crate::launch;
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::restore_body::{check_selected, confirmation_token, parse_preview};

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
    let confirmed = batch::needs_confirmation(request.operation);
    let params = if confirmed {
        None
    } else {
        Some(
            OperationParams::parse(request.operation, request.params.clone())
                .map_err(|e| ApiError::InvalidParams(e.to_string()))?,
        )
    };
    let click = launch::click(req, &caller)?;
    common::authorize(deps, ws, &caller, request.operation.spec().start_capability).await?;
    let params = match params {
        Some(p) => p.to_value(),
        None => baseline_restore(deps, ws, request.params).await?,
    };
    let tenants = resolve(deps, ws, &request.targets, &request.exclude).await?;
    let mut batch = Batch::new(
        ws,
        request.operation,
        params,
        request.targets,
        tenants,
        tenantops_core::Initiator::User(caller.clone()),
    );
    batch.exclude = request.exclude;
    write(deps, &click, &caller, batch, "batch.create").await
}

/// A restore batch's params, `{source_tenant_id, backup_set_id, items?, mapping?}`, checked
/// as a restore preview's: the source an active tenant of the workspace (404 otherwise), the
/// set its own, each item an object of the set.
async fn baseline_restore(
    deps: &Deps,
    ws: WorkspaceId,
    params: Option<Value>,
) -> Result<Value, ApiError> {
    let Some(Value::Object(mut map)) = params else {
        return Err(ApiError::InvalidParams(
            "a restore batch's `params` must name `source_tenant_id` and `backup_set_id`".into(),
        ));
    };
    let source: TenantId = match map.remove("source_tenant_id") {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::NotFound(Resource::Tenant))?,
        _ => {
            return Err(ApiError::InvalidParams(
                "`params.source_tenant_id` (the baseline's tenant) is required".into(),
            ));
        }
    };
    if map.contains_key("destination_tenant_id") {
        return Err(ApiError::InvalidParams(
            "a restore batch's destinations are its `tenants`".into(),
        ));
    }
    let request = parse_preview(Value::Object(map))?;
    if common::tenant_record(deps, ws, source).await?.status != TenantStatus::Active {
        return Err(ApiError::TenantArchived);
    }
    deps.store
        .backup_set(ws, source, request.backup_set)
        .await?
        .ok_or(ApiError::Restore(ReasonCode::RestoreBackupSetNotFound))?;
    if let Some(items) = &request.items {
        check_selected(deps, ws, source, request.backup_set, items).await?;
    }
    let baseline = BaselineRestore {
        source_tenant_id: source,
        backup_set_id: request.backup_set,
        items: request.items.map(|items| {
            items
                .into_iter()
                .map(|i| SelectedItem {
                    object_type: i.object_type,
                    object_id: i.object_id,
                })
                .collect()
        }),
        mapping: request.mapping,
    };
    serde_json::to_value(&baseline).map_err(|_| ApiError::internal_message("baseline"))
}

/// `POST .../batches/{id}/execute` `{confirmation_token}`: confirms a restore batch whose
/// previews are done. One transaction creates the batch of their executions and links it
/// (the token must be the batch's, and the batch neither confirmed nor cancelled before);
/// the relay starts one `restore.execute` per tenant whose preview has a restore, each held
/// to the same token and its restore's own conditions, a refused one recorded with why.
/// 202 with the execution batch; the same token again answers it, 200.
pub async fn execute(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (caller, previews) = visible(req, deps, ws, id, false).await?;
    let ws = previews.workspace_id;
    let role = common::role_in(deps, ws, &caller).await?;
    common::require(role, Capability::RestoreExecute)?;
    if !batch::needs_confirmation(previews.operation) {
        return Err(ApiError::Batch(ReasonCode::BatchNotConfirmable));
    }
    let body: ExecuteBody = common::body(req)?;
    let token_hash = restore_plan::token_hash(&body.confirmation_token);
    if previews.token_hash.as_deref() != Some(token_hash.as_str()) {
        return Err(ApiError::Batch(ReasonCode::BatchConfirmationInvalid));
    }
    if let Some(execution) = previews.execution_id {
        return answer(deps, ws, execution, 200).await;
    }
    if previews.cancelled_at.is_some() {
        return Err(ApiError::Batch(ReasonCode::BatchCancelled));
    }
    let (children, runs) = children_of(deps, &previews).await?;
    let states: Vec<Option<ChildState>> = children
        .iter()
        .map(|c| {
            let run = c.run_id.and_then(|id| runs.iter().find(|r| r.id == id));
            run.map(|r| ChildState {
                status: r.status,
                outcome: r.outcome,
            })
        })
        .collect();
    let progress = Progress::of(previews.tenants.len(), &states);
    if progress.not_started + progress.queued + progress.running > 0 {
        return Err(ApiError::Batch(ReasonCode::BatchPreviewPending));
    }
    let tenants: Vec<TenantId> = children
        .iter()
        .filter(|c| c.restore_id.is_some())
        .map(|c| c.tenant_id)
        .collect();
    if tenants.is_empty() {
        return Err(ApiError::Batch(ReasonCode::BatchNothingToExecute));
    }
    let mut execution = Batch::new(
        ws,
        OperationType::RestoreExecute,
        json!({}),
        Targets::Tenants(tenants.clone()),
        tenants,
        tenantops_core::Initiator::User(caller.clone()),
    );
    execution.execute_of = Some(previews.id);
    let audit = common::Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action: "batch.execute",
        target: previews.id.to_string(),
    }
    .entry(
        None,
        Some(json!({
            "execution_id": execution.id,
            "tenants": execution.tenants.len(),
        })),
    );
    let roles = Capability::RestoreExecute.roles();
    let guard = MemberGuard {
        user: &caller,
        roles: &roles,
    };
    match deps
        .store
        .execute_batch(&previews, &execution, &token_hash, guard, &audit)
        .await
    {
        Ok(()) => {
            tracing::info!(execution_id = %execution.id, "restore batch confirmed");
            Ok(Reply::json(202, &view_of(&execution, &[], &[])))
        }
        // Confirmed or cancelled meanwhile: read again to say which.
        Err(WriteError::Rejected(Rejection::Conflict)) => {
            let now = deps
                .store
                .get_batch(ws, previews.id)
                .await?
                .ok_or(ApiError::NotFound(Resource::Batch))?;
            match (now.execution_id, now.cancelled_at) {
                (Some(execution), _) => answer(deps, ws, execution, 200).await,
                (None, Some(_)) => Err(ApiError::Batch(ReasonCode::BatchCancelled)),
                (None, None) => Err(ApiError::ConcurrentChange),
            }
        }
        Err(e) => Err(ApiError::write(e, Capability::RestoreExecute)),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    confirmation_token: String,
}

/// The batch `id` of `ws` as its view, with `status`.
async fn answer(deps: &Deps, ws: WorkspaceId, id: BatchId, status: u16) -> Result<Reply, ApiError> {
    let batch = deps
        .store
        .get_batch(ws, id)
        .await?
        .ok_or_else(|| ApiError::internal_message("a linked batch vanished"))?;
    let (children, runs) = children_of(deps, &batch).await?;
    Ok(Reply::json(status, &view_of(&batch, &children, &runs)))
}

/// Writes a new batch (see `Store::create_batch`) and answers it: 202, or 200 with the batch
/// an `Idempotency-Key` replay names.
async fn write(
    deps: &Deps,
    click: &Click,
    caller: &tenantops_core::UserId,
    mut batch: Batch,
    action: &str,
) -> Result<Reply, ApiError> {
    let ws = batch.workspace_id;
    // A write batch's confirmation: answered this once, stored only as its hash.
    let token = batch::needs_confirmation(batch.operation).then(confirmation_token);
    batch.token_hash = token.as_deref().map(restore_plan::token_hash);
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
            let mut body = serde_json::to_value(view_of(&batch, &[], &[]))
                .map_err(|_| ApiError::internal_message("batch view"))?;
            if let Some(token) = token {
                body["confirmation_token"] = json!(token);
            }
            Ok(Reply::json(202, &body))
        }
        // No token: it went to the request that created the batch.
        Ok(BatchCreated::Replayed(id)) => answer(deps, ws, id, 200).await,
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
    if original.operation == OperationType::RestoreExecute {
        return Err(ApiError::Batch(ReasonCode::BatchNotRetryable));
    }
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
    let mut batch = Batch::new(
        original.workspace_id,
        operation,
        params,
        Targets::Tenants(tenants.clone()),
        tenants,
        tenantops_core::Initiator::User(caller.clone()),
    );
    batch.scope = original.scope.clone();
    batch.retry_of = Some(original.id);
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
