//! Restores: a preview (a `restore.preview` run that computes the plan from DynamoDB and the
//! snapshots in S3, never from Graph), reading it page by page, and executing it with its
//! confirmation token.
//!
//! A restore into another tenant of the workspace (a migration): the preview is started on the
//! backup set's tenant (the path's) and names `destination_tenant_id`. The restore and its runs
//! are the destination's (its lock, its inventory stamp, its writes); the start transactions
//! also require the source tenant active and write an audit entry in its log. Membership is
//! workspace-wide, so "the capability in both tenants" is: the caller's role in the workspace
//! grants it, and both tenants are active tenants of the workspace, all checked by the start's
//! transaction.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tenantops_aws::Precondition;
use tenantops_aws::restores::{
    ExecuteConditions, ExecutePrecondition, RestoreItem, RestoreRecord, RestoreStatus, SelectedItem,
};
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::RestoreExecuteParams;
use tenantops_core::restore as plan;
use tenantops_core::{
    Capability, Click, Identity, Initiator, NewRun, OperationParams, Outcome, ReasonCode,
    RestoreId, Run, RunStatus, Trigger,
};

use super::common;
use crate::Deps;
use crate::cursor;
use crate::error::ApiError;
use crate::launch::{Launch, launch};
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::restore_body::{check_selected, confirmation_token, parse_preview};

/// Items per page of `GET .../restores/{id}`: by default, and at most.
const DEFAULT_ITEMS_PAGE: usize = 50;
const MAX_ITEMS_PAGE: usize = 100;
/// Bytes of items one page may carry: a page stops early rather than pass it, so a response
/// stays far below Lambda's 6 MB.
const PAGE_BYTES: usize = 4 * 1024 * 1024;

fn refused(code: ReasonCode) -> ApiError {
    ApiError::Restore(code)
}

/// `POST /v1/workspaces/{ws}/tenants/{t}/restores`: starts the `restore.preview` run through
/// the one launch path, with the restore (`previewing`) created in its start transaction.
/// 202 with the run, the restore and the confirmation token (returned this once, stored only
/// as its hash); 200 with the active run of the same backup set and selection (no token: it
/// went to the start that created it).
pub async fn preview(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    preview_with(req, deps, ws, tenant, None, Vec::new()).await
}

/// A preview of `body` (`None`: the request's own body, read once the caller and tenant are
/// checked), whose start transaction also holds `also` (a drift revert's audit entry).
pub async fn preview_with(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    body: Option<Value>,
    also: Vec<Precondition>,
) -> Result<Reply, ApiError> {
    let common::TenantPath { caller, ws, tenant } = common::tenant_path(req, ws, tenant)?;
    // The capability before the tenant lookup (unlike `TenantPath::scope`): a role without
    // it is refused whether or not the tenant exists.
    common::authorize(deps, ws, &caller, Capability::RestorePreview).await?;
    let tenant_record = common::tenant_record(deps, ws, tenant).await?;
    if tenant_record.status != tenantops_aws::TenantStatus::Active {
        return Err(ApiError::TenantArchived);
    }
    let request = parse_preview(match body {
        Some(b) => b,
        None => req.json_body()?,
    })?;
    // The path's tenant is the backup set's; the run, its lock and the restore are the
    // destination's, where the writes happen.
    let source = tenant;
    let tenant = request.destination.unwrap_or(source);
    let across = tenant != source;
    if across
        && common::tenant_record(deps, ws, tenant).await?.status
            != tenantops_aws::TenantStatus::Active
    {
        return Err(ApiError::TenantArchived);
    }
    deps.store
        .backup_set(ws, source, request.backup_set)
        .await?
        .ok_or(refused(ReasonCode::RestoreBackupSetNotFound))?;
    let selection: Option<Vec<SelectedItem>> = match &request.items {
        None => None,
        Some(items) => {
            check_selected(deps, ws, source, request.backup_set, items).await?;
            Some(
                items
                    .iter()
                    .map(|i| SelectedItem {
                        object_type: i.object_type.clone(),
                        object_id: i.object_id.clone(),
                    })
                    .collect(),
            )
        }
    };
    let now = Utc::now();
    let token = confirmation_token();
    let mut record = RestoreRecord::previewing(
        ws,
        tenant,
        request.backup_set,
        caller.clone(),
        plan::token_hash(&token),
        now,
    );
    record.source_tenant_id = across.then_some(source);
    record.selection = selection;
    record.mapping = request.mapping;
    let params = record.preview_params();
    let identity = Identity::derive(ws, tenant, &params, &Click::Nonce(ulid::Ulid::new()));
    let run = Run::queued(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params: &params,
            identity: &identity,
            initiator: Initiator::User(caller.clone()),
            trigger: Trigger::Manual,
        },
        now,
    );
    record.preview_run_id = Some(run.id);
    let restore_id = record.restore_id;
    let mut preconditions = vec![deps.store.new_restore(&record)?];
    preconditions.extend(also);
    if across {
        preconditions.extend(deps.store.source_checks(
            &record,
            source,
            caller.as_str(),
            "restore.preview_started",
            run.id,
            now,
        )?);
    }
    let reply = launch(
        deps,
        Launch {
            caller: &caller,
            fingerprint: request_fingerprint(tenant, &params),
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            capability: Capability::RestorePreview,
            preconditions: &preconditions,
        },
        // A fresh id cannot exist: a refusal of it is the store's fault; the next is the
        // source tenant's check.
        |i| match i {
            1 => ApiError::TenantArchived,
            _ => ApiError::internal_message("a new restore's id was taken"),
        },
    )
    .await?;
    let mut body: Value =
        serde_json::from_str(&reply.body).map_err(|_| ApiError::internal_message("reply"))?;
    let restore = if reply.status == 202 {
        body["confirmation_token"] = json!(token);
        restore_id.to_string()
    } else {
        body["run"]["context"]["restore_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    body["restore"] =
        json!({ "id": restore, "status": RestoreStatus::Previewing, "tenant_id": tenant });
    Ok(Reply::json(reply.status, &body))
}

/// One item as clients see it.
fn item_view(i: &RestoreItem) -> Value {
    json!({
        "index": i.index,
        "object_type": i.object_type,
        "object_id": i.object_id,
        "name": i.name,
        "action": i.action,
        "diff_base": i.diff_base,
        "diff": i.diff,
        "diff_truncated": i.diff_truncated,
        "assignment_targets": i.targets,
        "blockers": i.blockers,
        "status": i.status,
        "written_id": i.written_id,
        "failure": i.failure,
    })
}

/// The restore as clients see it (no token hash, no internal stamps). `status` is
/// `preview_cancelled` or `preview_failed` for a restore whose preview run ended (cancelled,
/// or otherwise) without completing it.
fn view(record: &RestoreRecord, preview_ended: Option<Outcome>) -> Value {
    let status = match preview_ended {
        Some(Outcome::Cancelled) => json!("preview_cancelled"),
        Some(_) => json!("preview_failed"),
        None => json!(record.status),
    };
    json!({
        "id": record.restore_id,
        "tenant_id": record.tenant_id,
        "source_tenant_id": record.source_tenant_id,
        "backup_set_id": record.backup_set_id,
        "status": status,
        "preview_run_id": record.preview_run_id,
        "created_by": record.created_by,
        "created_at": tenantops_core::time::format(record.created_at),
        "expires_at": tenantops_core::time::format(record.expires_at),
        "executable": record.executable,
        "blockers": record.blockers,
        "item_count": record.item_count,
        "summary": record.summary,
        "high_risk_items": record.high_risk_items,
        "mapping": record.mapping,
        "run_id": record.run_id,
    })
}

fn restore_id(raw: &str) -> Result<RestoreId, ApiError> {
    raw.parse()
        .map_err(|_| refused(ReasonCode::RestoreNotFound))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/restores/{id}?limit=&cursor=`: the restore and a
/// page of its items in index order (none while it is `previewing`).
pub async fn get(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let common::TenantPath { caller, ws, tenant } = common::tenant_path(req, ws, tenant)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_ITEMS_PAGE, MAX_ITEMS_PAGE)?;
    common::authorize(deps, ws, &caller, Capability::RestorePreview).await?;
    let id = restore_id(id)?;
    let query_key = format!("restore|{ws}|{tenant}|{id}");
    let after = cursor::after::<u32>(&q, &query_key)?;
    let record = deps
        .store
        .get_restore(ws, tenant, id)
        .await?
        .ok_or(refused(ReasonCode::RestoreNotFound))?;
    let mut preview_ended = None;
    if record.status == RestoreStatus::Previewing {
        // The run finishes the restore before it completes itself: a completed run with the
        // restore still previewing failed or was cancelled.
        if let Some(run) = record.preview_run_id {
            preview_ended = deps
                .store
                .get_run(run)
                .await?
                .filter(|r| r.status == RunStatus::Completed)
                .map(|r| r.outcome);
        }
        return Ok(Reply::json(
            200,
            &json!({ "restore": view(&record, preview_ended), "items": [], "next_cursor": null }),
        ));
    }
    let page = deps
        .store
        .restore_items_page(ws, tenant, id, limit, after)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    let mut bytes = 0;
    let mut next = page.next;
    for i in &page.items {
        let v = item_view(i);
        let size = v.to_string().len();
        if !items.is_empty() && bytes + size > PAGE_BYTES {
            next = items
                .last()
                .and_then(|v: &Value| v["index"].as_u64())
                .map(|n| n as u32);
            break;
        }
        bytes += size;
        items.push(v);
    }
    Ok(Reply::json(
        200,
        &json!({
            "restore": view(&record, None),
            "items": items,
            "next_cursor": next.map(|n| cursor::encode(&query_key, n)),
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    confirmation_token: String,
}

/// `POST /v1/workspaces/{ws}/tenants/{t}/restores/{id}/execute` `{confirmation_token}`:
/// starts the `restore.execute` run through the one launch path, with the preview's
/// conditions in the same transaction.
pub async fn execute(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let common::TenantPath { caller, ws, tenant } = common::tenant_path(req, ws, tenant)?;
    common::authorize(deps, ws, &caller, Capability::RestoreExecute).await?;
    let id = restore_id(id)?;
    let body: ExecuteBody = common::body(req)?;
    let token_hash = plan::token_hash(&body.confirmation_token);
    // Read to choose the conditions (high-risk items need the setting) and to explain a
    // refusal; the decision itself is the transaction's.
    let record = deps
        .store
        .get_restore(ws, tenant, id)
        .await?
        .ok_or(refused(ReasonCode::RestoreNotFound))?;

    let params = OperationParams::RestoreExecute(RestoreExecuteParams {
        restore_id: id.ulid(),
    });
    let identity = Identity::derive(ws, tenant, &params, &Click::Nonce(ulid::Ulid::new()));
    let now = Utc::now();
    let run = Run::queued(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params: &params,
            identity: &identity,
            initiator: Initiator::User(caller.clone()),
            trigger: Trigger::Manual,
        },
        now,
    );
    let checks = deps.store.execute_preconditions(&ExecuteConditions {
        workspace: ws,
        tenant,
        restore: id,
        token_hash: &token_hash,
        run: run.id,
        inventory_version: (record.status != RestoreStatus::Executing)
            .then_some(record.inventory_version),
        high_risk: record.high_risk_items > 0,
        now,
    })?;
    let (kinds, mut preconditions): (Vec<ExecutePrecondition>, Vec<_>) = checks.into_iter().unzip();
    if let Some(source) = record.source_tenant_id {
        preconditions.extend(deps.store.source_checks(
            &record,
            source,
            caller.as_str(),
            "restore.execute_started",
            run.id,
            now,
        )?);
    }
    let explain = |i: usize| match kinds.get(i) {
        Some(ExecutePrecondition::Restore) => refused(record.why_not_executable(&token_hash, now)),
        Some(ExecutePrecondition::InventoryStamp) => refused(ReasonCode::RestoreInventoryChanged),
        Some(ExecutePrecondition::HighRiskSetting) => refused(ReasonCode::RestoreHighRiskDisabled),
        // The source tenant's check (its audit entry cannot fail).
        None if i == kinds.len() => ApiError::TenantArchived,
        None => ApiError::internal_message("unknown restore precondition"),
    };
    launch(
        deps,
        Launch {
            caller: &caller,
            fingerprint: request_fingerprint(tenant, &params),
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            capability: Capability::RestoreExecute,
            preconditions: &preconditions,
        },
        explain,
    )
    .await
}
