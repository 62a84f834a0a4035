//! What workers learned about a tenant, read from the table only (never from Graph):
//! the last observed inventory, the directory caches, and the caller's notifications.

use serde_json::json;
use tenantops_core::Capability;

use super::common;
use crate::Deps;
use crate::cursor;
use crate::error::ApiError;
use crate::request::ApiRequest;
use crate::response::Reply;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

/// `GET /v1/workspaces/{ws}/tenants/{t}/inventory?type=&limit=&cursor=`.
pub async fn inventory(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let q = common::query(req, &["type", "limit", "cursor"])?;
    let object_type = q
        .get("type")
        .copied()
        .filter(|t| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            ApiError::InvalidQuery(
                "`type` is required: a registry type such as deviceConfigurations".into(),
            )
        })?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let key = format!("inventory|type={object_type}");
    let after = cursor::after::<String>(&q, &key)?;
    let common::TenantScope { ws, tenant, .. } =
        path.scope(deps, Capability::WorkspaceView).await?;
    let (items, next) = deps
        .store
        .inventory_page(ws, tenant, object_type, limit, after)
        .await?;
    let items: Vec<_> = items
        .iter()
        .map(|i| {
            json!({
                "id": i.object_id,
                "type": i.object_type,
                "name": i.name,
                "meta": i.meta,
                "deleted": i.deleted,
                "seen_at": tenantops_core::time::format(i.seen_at),
                "last_seen_run": tenantops_core::links::view(i.last_seen_run),
            })
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": next.map(|n| cursor::encode(&key, n)) }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/directory/groups?search=&limit=&cursor=`.
pub async fn groups(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let q = common::query(req, &["search", "limit", "cursor"])?;
    let search = q.get("search").copied().unwrap_or_default();
    if search.chars().count() > 256 {
        return Err(ApiError::InvalidQuery(
            "`search` is at most 256 characters".into(),
        ));
    }
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let key = format!("groups|search={}", search.to_lowercase());
    let after = cursor::after::<String>(&q, &key)?;
    let common::TenantScope { ws, tenant, .. } =
        path.scope(deps, Capability::WorkspaceView).await?;
    let (items, next) = deps
        .store
        .search_groups(ws, tenant, search, limit, after)
        .await?;
    let items: Vec<_> = items
        .iter()
        .map(|g| json!({ "id": g.id, "display_name": g.display_name, "meta": g.meta }))
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": next.map(|n| cursor::encode(&key, n)) }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/directory/role-definitions`.
pub async fn role_definitions(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    common::query(req, &[])?;
    let common::TenantScope { ws, tenant, .. } =
        path.scope(deps, Capability::WorkspaceView).await?;
    let entries = deps
        .store
        .directory(tenantops_aws::keys::role_definitions_of(ws, tenant))
        .await?;
    let items: Vec<_> = entries
        .iter()
        .map(|e| {
            let (source, id) = e.id.split_once(':').unwrap_or(("", e.id.as_str()));
            json!({ "id": id, "source": source, "display_name": e.display_name, "meta": e.meta })
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": null }),
    ))
}

/// `GET /v1/me/notifications?limit=`: the caller's own, newest first.
pub async fn notifications(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let q = common::query(req, &["limit"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let items = deps.store.notifications(&caller, limit).await?;
    let items: Vec<_> = items
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "workspace_id": n.workspace_id,
                "tenant_id": n.tenant_id,
                "run_id": n.run_id,
                "type": n.operation,
                "status": n.status,
                "outcome": n.outcome,
                "at": tenantops_core::time::format(n.at),
                "run_url": tenantops_core::links::view(n.run_id),
            })
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": null }),
    ))
}
