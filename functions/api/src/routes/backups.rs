//! Backup sets and their manifests, read from the table only: the API never reads S3 (nor
//! Graph) for these. Payloads stay in the snapshot bucket; the entries carry their hashes.

use serde_json::{Value, json};
use tenantops_core::backup::{BackupSet, ManifestEntry};
use tenantops_core::{BackupSetId, Capability};

use super::common;
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

fn set_json(s: &BackupSet) -> Value {
    json!({
        "id": s.id.to_string(),
        "tenant_id": s.tenant_id.to_string(),
        "run": tenantops_core::links::view(s.run_id),
        "run_id": s.run_id.to_string(),
        "schedule_id": s.schedule_id.map(|id| id.to_string()),
        "status": s.status,
        "types": s.types,
        "object_count": s.object_count,
        "manifest_hash": s.manifest_hash,
        "created_at": tenantops_core::time::format(s.created_at),
    })
}

fn entry_json(e: &ManifestEntry) -> Value {
    json!({
        "object_type": e.object_type,
        "object_id": e.object_id,
        "name": e.name,
        "hash": e.hash,
        "assignments": e.assignments,
    })
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/backups?limit=&cursor=`: newest first.
pub async fn list(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("backups|{}|{}", path.ws, path.tenant);
    let after = cursor::after::<BackupSetId>(&q, &query_key)?;
    let scope = path.scope(deps, Capability::BackupView).await?;
    let page = deps
        .store
        .backup_sets(scope.ws, scope.tenant, limit, after)
        .await?;
    let items: Vec<Value> = page.items.iter().map(set_json).collect();
    Ok(Reply::json(
        200,
        &json!({
            "items": items,
            "next_cursor": page.next.map(|id| cursor::encode(&query_key, id)),
        }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/backups/{set}?limit=&cursor=`: the set and a page
/// of its manifest entries (by object type, then id).
pub async fn view(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    set: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    // A malformed id names no set: the same answer as a missing one.
    let set: BackupSetId = set
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::BackupSet))?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("backup|{}|{}|{set}", path.ws, path.tenant);
    let after = cursor::after::<String>(&q, &query_key)?;
    let common::TenantScope { ws, tenant, .. } = path.scope(deps, Capability::BackupView).await?;
    let found = deps
        .store
        .backup_set(ws, tenant, set)
        .await?
        .ok_or(ApiError::NotFound(Resource::BackupSet))?;
    let page = deps
        .store
        .manifest_entries(ws, tenant, set, limit, after)
        .await?;
    let items: Vec<Value> = page.entries.iter().map(entry_json).collect();
    Ok(Reply::json(
        200,
        &json!({
            "backup_set": set_json(&found),
            "items": items,
            "next_cursor": page.next.map(|k| cursor::encode(&query_key, k)),
        }),
    ))
}
