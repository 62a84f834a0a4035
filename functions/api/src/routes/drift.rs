//! Drift reports, read from the table only: a tenant's latest reports, and one report with a
//! page of its items. A report is written by its `drift.check` run (started through the
//! operations route); its items hold field values of normalized payloads (never secrets) and
//! who made each change, so they need `drift.view`, not only `backup.view`.
//!
//! And the diff of two backup sets in the same item shape, computed per request from their
//! manifest entries (the table) and, only for an object whose content hash differs, its two
//! snapshots (S3, read-only): unchanged and assignment-only changes cost no S3 request.

use chrono::Utc;
use serde_json::{Value, json};
use tenantops_aws::AuditEntry;
use tenantops_aws::drift::StoredDriftItem;
use tenantops_core::backup::ManifestEntry;
use tenantops_core::drift::{DriftCounts, DriftItem, DriftKind, DriftReport, Pairing, pair};
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::BackupRunNowParams;
use tenantops_core::{
    BackupSetId, Capability, Identity, Initiator, NewRun, OperationParams, ReasonCode, Run, RunId,
    TenantId, Trigger, WorkspaceId,
};

use super::common;
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::launch::{self, Launch};
use crate::request::ApiRequest;
use crate::response::Reply;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

fn report_json(r: &DriftReport) -> Value {
    json!({
        "id": r.id.to_string(),
        "tenant_id": r.tenant_id.to_string(),
        "run": tenantops_core::links::view(r.id),
        "baseline_backup_set_id": r.baseline_set_id.to_string(),
        "types": r.types,
        "unread_types": r.unread_types,
        "counts": r.counts,
        "item_count": r.item_count,
        "created_at": tenantops_core::time::format(r.created_at),
        "accepted_run": r.accepted_run_id.map(tenantops_core::links::view),
    })
}

/// An item as the API shows it: its fields and its index in the report.
fn item_json(i: &StoredDriftItem) -> Value {
    let mut v = serde_json::to_value(&i.item).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("index".into(), json!(i.index));
    }
    v
}

/// A report id from the path: a malformed one names no report, the same answer as a missing
/// one.
fn report_id(raw: &str) -> Result<RunId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(Resource::DriftReport))
}

/// The tenant's report, once the caller may view the tenant's drift.
async fn report_in(
    deps: &Deps,
    path: common::TenantPath,
    report: RunId,
) -> Result<DriftReport, ApiError> {
    let scope = path.scope(deps, Capability::DriftView).await?;
    deps.store
        .drift_report(scope.ws, scope.tenant, report)
        .await?
        .ok_or(ApiError::NotFound(Resource::DriftReport))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/drift?limit=&cursor=`: reports, newest first.
pub async fn list(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("drift|{}|{}", path.ws, path.tenant);
    let after = cursor::after::<RunId>(&q, &query_key)?;
    let scope = path.scope(deps, Capability::DriftView).await?;
    let page = deps
        .store
        .drift_reports(scope.ws, scope.tenant, limit, after)
        .await?;
    let items: Vec<Value> = page.items.iter().map(report_json).collect();
    Ok(Reply::json(
        200,
        &json!({
            "items": items,
            "next_cursor": page.next.map(|id| cursor::encode(&query_key, id)),
        }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/drift/{report}?limit=&cursor=`: the report and a
/// page of its items (by object type, then id).
pub async fn view(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    report: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let report = report_id(report)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("drift|{}|{}|{report}", path.ws, path.tenant);
    let after = cursor::after::<u32>(&q, &query_key)?;
    let found = report_in(deps, path, report).await?;
    let page = deps.store.drift_items_page(&found, limit, after).await?;
    let items: Vec<Value> = page.items.iter().map(item_json).collect();
    Ok(Reply::json(
        200,
        &json!({
            "report": report_json(&found),
            "items": items,
            "next_cursor": page.next.map(|i| cursor::encode(&query_key, i)),
        }),
    ))
}

/// `POST /v1/workspaces/{ws}/tenants/{t}/drift/{report}/accept`: the tenant's current state
/// becomes the baseline. Starts a backup of the report's types through the one start path,
/// whose transaction also links the run from the report (once: a second accept is a 409) and
/// writes the `drift.accept` audit entry.
pub async fn accept(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    report: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let report = report_id(report)?;
    let caller = path.caller.clone();
    let click = launch::click(req, &caller)?;
    let found = report_in(deps, path, report).await?;
    let (ws, tenant) = (found.workspace_id, found.tenant_id);
    let params = OperationParams::BackupScheduleRunNow(BackupRunNowParams {
        backup_schedule_id: None,
    });
    let identity = Identity::derive(ws, tenant, &params, &click);
    let now = Utc::now();
    let run = Run::queued_with_scope(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params: &params,
            identity: &identity,
            initiator: Initiator::User(caller.clone()),
            trigger: Trigger::Manual,
        },
        Some(found.types.as_slice()),
        now,
    );
    let audit = AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: ws,
        tenant_id: Some(tenant),
        actor: caller.to_string(),
        action: "drift.accept".into(),
        target: report.to_string(),
        before: None,
        after: Some(json!({ "run_id": run.id.to_string() })),
        at: now,
    };
    let preconditions = deps.store.accept_drift_report(&found, run.id, &audit)?;
    // A key replayed for another report's accept is another request.
    let fingerprint = format!("{}|accept|{report}", request_fingerprint(tenant, &params));
    launch::launch(
        deps,
        Launch {
            caller: &caller,
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            fingerprint,
            capability: Capability::BackupRun,
            preconditions: &preconditions,
        },
        |_| ApiError::DriftAlreadyAccepted,
    )
    .await
}

/// Report items read per query while checking a revert's selection.
const ITEMS_PAGE: usize = 100;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemRef {
    object_type: String,
    object_id: String,
}

/// `POST /v1/workspaces/{ws}/tenants/{t}/drift/{report}/revert` `{items, mapping?}`: what a
/// revert hands to the restore preview (`restores::preview_with`, through the router): the
/// baseline set, exactly the selected items, each a changed or removed object of the report
/// (an added one has nothing in the baseline: 409 `restore.items_invalid`), and the
/// `drift.revert` audit entry for the preview's start transaction.
pub async fn revert_selection(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    report: &str,
) -> Result<(Value, Vec<tenantops_aws::Precondition>), ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let report = report_id(report)?;
    let caller = path.caller.clone();
    let found = report_in(deps, path, report).await?;
    let (ws, tenant) = (found.workspace_id, found.tenant_id);
    let Value::Object(mut body) = req.json_body()? else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(extra) = body.keys().find(|k| *k != "items" && *k != "mapping") {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; expected `items` and `mapping`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let items = body
        .remove("items")
        .ok_or_else(|| ApiError::InvalidBody("`items` is required".into()))?;
    // The list's shape and size are the preview's to check; here, that each is the report's.
    let selected: Vec<ItemRef> = serde_json::from_value(items.clone()).map_err(|_| {
        ApiError::InvalidBody("`items` must be a list of {\"object_type\", \"object_id\"}".into())
    })?;
    let mut revertible = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let page = deps
            .store
            .drift_items_page(&found, ITEMS_PAGE, after)
            .await?;
        for i in &page.items {
            if i.item.kind != DriftKind::Added {
                revertible.insert((i.item.object_type.clone(), i.item.object_id.clone()));
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if selected
        .iter()
        .any(|i| !revertible.contains(&(i.object_type.clone(), i.object_id.clone())))
    {
        return Err(ApiError::Restore(ReasonCode::RestoreItemsInvalid));
    }
    let audit = AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: ws,
        tenant_id: Some(tenant),
        actor: caller.to_string(),
        action: "drift.revert".into(),
        target: report.to_string(),
        before: None,
        after: Some(json!({
            "backup_set_id": found.baseline_set_id.to_string(),
            "items": selected.len(),
        })),
        at: Utc::now(),
    };
    let mut preview = json!({
        "backup_set_id": found.baseline_set_id.to_string(),
        "items": items,
    });
    if let Some(mapping) = body.remove("mapping") {
        preview["mapping"] = mapping;
    }
    Ok((preview, vec![deps.store.revert_drift_audit(&audit)?]))
}

/// Manifest entries read per query.
const MANIFEST_PAGE: usize = 500;

/// Every manifest entry of a set, in (type, id) order.
async fn entries(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
    set: BackupSetId,
) -> Result<Vec<ManifestEntry>, ApiError> {
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let page = deps
            .store
            .manifest_entries(ws, tenant, set, MANIFEST_PAGE, after)
            .await?;
        out.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.sort_by(|a, b| (&a.object_type, &a.object_id).cmp(&(&b.object_type, &b.object_id)));
    Ok(out)
}

/// A snapshot's normalized payload; one that cannot be read fails the request (logged once).
async fn snapshot(deps: &Deps, key: &str) -> Result<Value, ApiError> {
    let bytes = deps.snapshots.get(key).await.map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/backups/{a}/diff/{b}?limit=&cursor=`: what changed
/// from set `a` to set `b`, as drift items (by object type, then id), a page at a time.
pub async fn backup_diff(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    (from, to): (&str, &str),
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let set = |s: &str| {
        s.parse::<BackupSetId>()
            .map_err(|_| ApiError::NotFound(Resource::BackupSet))
    };
    let (from, to) = (set(from)?, set(to)?);
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("diff|{}|{}|{from}|{to}", path.ws, path.tenant);
    let after = cursor::after::<u32>(&q, &query_key)?;
    let common::TenantScope { ws, tenant, .. } = path.scope(deps, Capability::DriftView).await?;
    for id in [from, to] {
        deps.store
            .backup_set(ws, tenant, id)
            .await?
            .ok_or(ApiError::NotFound(Resource::BackupSet))?;
    }
    let (before, after_entries) = (
        entries(deps, ws, tenant, from).await?,
        entries(deps, ws, tenant, to).await?,
    );
    let pairs: Vec<Pairing<'_>> = pair(&before, &after_entries)
        .into_iter()
        .filter(|p| *p != Pairing::Unchanged)
        .collect();
    let mut counts = DriftCounts {
        unchanged: u32::try_from(pair(&before, &after_entries).len() - pairs.len())
            .unwrap_or(u32::MAX),
        ..DriftCounts::default()
    };
    let first = after.map_or(0, |a| a as usize + 1);
    let mut items = Vec::new();
    for (index, p) in pairs.iter().enumerate() {
        let kind = match p {
            Pairing::Added(_) => DriftKind::Added,
            Pairing::Removed(_) => DriftKind::Removed,
            _ => DriftKind::Changed,
        };
        counts.count(kind);
        if index < first || items.len() >= limit {
            continue;
        }
        let item = match *p {
            Pairing::Added(e) => DriftItem::added(e),
            Pairing::Removed(e) => DriftItem::removed(e),
            // Only the assignments differ: the snapshots are the same object.
            Pairing::Changed(b, a) if b.hash == a.hash => {
                DriftItem::changed(b, a, &Value::Null, &Value::Null).0
            }
            Pairing::Changed(b, a) => {
                let (old, new) = (
                    snapshot(deps, &b.snapshot_key).await?,
                    snapshot(deps, &a.snapshot_key).await?,
                );
                // A two-set diff stores nothing: a cut diff keeps its excerpt only.
                DriftItem::changed(b, a, &old, &new).0
            }
            Pairing::Unchanged => continue,
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        items.push(item_json(&StoredDriftItem { index, item }));
    }
    let last = first + items.len();
    let next = (last < pairs.len() && !items.is_empty()).then(|| {
        let index = u32::try_from(last - 1).unwrap_or(u32::MAX);
        cursor::encode(&query_key, index)
    });
    Ok(Reply::json(
        200,
        &json!({
            "from_backup_set_id": from.to_string(),
            "to_backup_set_id": to.to_string(),
            "counts": counts,
            "items": items,
            "next_cursor": next,
        }),
    ))
}
