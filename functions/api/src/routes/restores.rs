//! Restores: a preview (a dry run computed from DynamoDB and the snapshots in S3, never from
//! Graph), reading it, and executing it with its confirmation token.

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tenantops_aws::restores::{
    ExecuteConditions, ExecutePrecondition, ItemStatus, PlanSummary, RestoreItem, RestoreRecord,
    RestoreStatus, expiry_of,
};
use tenantops_aws::{InventoryItem, keys};
use tenantops_core::backup::ManifestEntry;
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::RestoreExecuteParams;
use tenantops_core::restore::{
    self as plan, Action, Blocker, DiffBase, LatestBackup, MAX_DIFF_CHANGES, MAX_ITEMS, Mapping,
    Observed,
};
use tenantops_core::{
    BackupSetId, Capability, Click, Identity, Initiator, NewRun, OperationParams, ReasonCode,
    RestoreId, Run, TenantId, Trigger, WorkspaceId,
};

use super::common::{self, Audit};
use crate::Deps;
use crate::error::ApiError;
use crate::launch::{Launch, launch};
use crate::request::ApiRequest;
use crate::response::Reply;

/// Manifest entries read per query while collecting a set.
const MANIFEST_PAGE: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemRef {
    object_type: String,
    object_id: String,
}

#[derive(Debug)]
struct PreviewRequest {
    backup_set: BackupSetId,
    items: Option<Vec<ItemRef>>,
    mapping: Mapping,
}

fn refused(code: ReasonCode) -> ApiError {
    ApiError::Restore(code)
}

/// `{backup_set_id, items?, mapping?}`, checked field by field so each mistake has its code.
fn parse_preview(body: Value) -> Result<PreviewRequest, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(extra) = map
        .keys()
        .find(|k| !["backup_set_id", "items", "mapping"].contains(&k.as_str()))
    {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; expected `backup_set_id`, `items` and `mapping`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let backup_set = match map.remove("backup_set_id") {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| refused(ReasonCode::RestoreBackupSetNotFound))?,
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "`backup_set_id` must be a string".into(),
            ));
        }
        None => return Err(ApiError::InvalidBody("`backup_set_id` is required".into())),
    };
    let items = match map.remove("items") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let items: Vec<ItemRef> =
                serde_json::from_value(v).map_err(|_| refused(ReasonCode::RestoreItemsInvalid))?;
            let distinct: HashSet<(&str, &str)> = items
                .iter()
                .map(|i| (i.object_type.as_str(), i.object_id.as_str()))
                .collect();
            if items.is_empty() || items.len() > MAX_ITEMS || distinct.len() != items.len() {
                return Err(refused(ReasonCode::RestoreItemsInvalid));
            }
            Some(items)
        }
    };
    let mapping: Mapping = match map.remove("mapping") {
        None | Some(Value::Null) => Mapping::default(),
        Some(v) => {
            serde_json::from_value(v).map_err(|_| refused(ReasonCode::RestoreMappingInvalid))?
        }
    };
    mapping
        .validate()
        .map_err(|_| refused(ReasonCode::RestoreMappingInvalid))?;
    Ok(PreviewRequest {
        backup_set,
        items,
        mapping,
    })
}

/// 32 random bytes, base64url: returned once, stored only as its sha256.
fn confirmation_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `lastModifiedDateTime` (or Conditional Access's `modifiedDateTime`) of inventory metadata.
fn last_modified(meta: &Value) -> Option<DateTime<Utc>> {
    meta.get("lastModifiedDateTime")
        .or_else(|| meta.get("modifiedDateTime"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

async fn read_json(deps: &Deps, key: &str) -> Result<Value, ApiError> {
    let bytes = deps.snapshots.get(key).await?;
    serde_json::from_slice(&bytes).map_err(|_| refused(ReasonCode::RestoreSnapshotMissing))
}

/// `POST /v1/workspaces/{ws}/tenants/{t}/restores`: computes and stores a preview.
pub async fn preview(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let common::TenantPath { caller, ws, tenant } = common::tenant_path(req, ws, tenant)?;
    // The capability before the tenant lookup (unlike `TenantPath::scope`): a role without
    // it is refused whether or not the tenant exists.
    common::authorize(deps, ws, &caller, Capability::RestorePreview).await?;
    let tenant_record = common::tenant_record(deps, ws, tenant).await?;
    if tenant_record.status != tenantops_aws::TenantStatus::Active {
        return Err(ApiError::TenantArchived);
    }
    let request = parse_preview(req.json_body()?)?;
    deps.store
        .backup_set(ws, tenant, request.backup_set)
        .await?
        .ok_or(refused(ReasonCode::RestoreBackupSetNotFound))?;
    let entries = manifest(deps, ws, tenant, request.backup_set).await?;
    let selected: Vec<&ManifestEntry> = match &request.items {
        None => entries.iter().take(MAX_ITEMS + 1).collect(),
        Some(items) => items
            .iter()
            .map(|i| {
                entries
                    .iter()
                    .find(|e| e.object_type == i.object_type && e.object_id == i.object_id)
                    .ok_or(refused(ReasonCode::RestoreItemsInvalid))
            })
            .collect::<Result<_, _>>()?,
    };
    if selected.is_empty() || selected.len() > MAX_ITEMS {
        return Err(refused(ReasonCode::RestoreItemsInvalid));
    }

    // The stamp first: an inventory write after this read moves it, so the preview can never
    // be executed on an inventory newer than the one it read below.
    let inventory_version = deps.store.inventory_version(ws, tenant).await?;
    let types: BTreeSet<&str> = selected.iter().map(|e| e.object_type.as_str()).collect();
    let mut inventory: HashMap<&str, HashMap<String, InventoryItem>> = HashMap::new();
    for ty in &types {
        let items = deps.store.inventory(ws, tenant, ty).await?;
        inventory.insert(
            ty,
            items
                .into_iter()
                .map(|i| (i.object_id.clone(), i))
                .collect(),
        );
    }
    let groups: HashSet<String> = deps
        .store
        .directory(keys::groups_of(ws, tenant))
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    let filters: HashSet<String> = deps
        .store
        .inventory(ws, tenant, "assignmentFilters")
        .await?
        .into_iter()
        .filter(|f| !f.deleted)
        .map(|f| f.object_id)
        .collect();
    let high_risk_enabled = deps
        .store
        .get_workspace(ws)
        .await?
        .is_some_and(|w| w.settings.restore_high_risk);

    let mut items = Vec::with_capacity(selected.len());
    let mut summary = PlanSummary::default();
    let mut high_risk_items = 0;
    for (index, entry) in selected.iter().enumerate() {
        let of_type = inventory.get(entry.object_type.as_str());
        let seen = of_type.and_then(|m| m.get(&entry.object_id));
        let observed = seen.map(|i| Observed {
            deleted: i.deleted,
            last_modified: last_modified(&i.meta),
        });
        let latest = deps
            .store
            .latest_snapshot(ws, tenant, &entry.object_type, &entry.object_id)
            .await?;
        let latest_plan = latest.as_ref().map(|l| LatestBackup {
            hash: l.hash.clone(),
            backed_up_at: l.backed_up_at,
        });
        let action = plan::decide_action(&entry.hash, observed.as_ref(), latest_plan.as_ref());
        let snapshot = read_json(deps, &entry.snapshot_key).await?;
        let diff_base = plan::diff_base(action, observed.as_ref(), latest_plan.as_ref());
        let mut diff = match (diff_base, &latest, seen) {
            (DiffBase::LatestBackup, Some(l), _) if l.hash == entry.hash => Vec::new(),
            (DiffBase::LatestBackup, Some(l), _) => {
                let base = read_json(deps, &l.snapshot_key).await?;
                plan::diff(&base, &snapshot)
            }
            (DiffBase::Inventory, _, Some(i)) => {
                let (before, after) = plan::comparable_to_meta(&snapshot, &i.meta);
                plan::diff(&before, &after)
            }
            _ => plan::diff(&json!({}), &snapshot),
        };
        let diff_truncated = diff.len() > MAX_DIFF_CHANGES;
        diff.truncate(MAX_DIFF_CHANGES);
        let targets = plan::resolve_targets(
            &entry.assignments,
            &|g| groups.contains(g),
            &|f| filters.contains(f),
            &request.mapping,
        );
        let policy = plan::type_policy(&entry.object_type, true);
        let blockers = plan::blockers_of(policy, high_risk_enabled, action, &targets);
        if policy.high_risk && action != Action::SkipUnchanged {
            high_risk_items += 1;
        }
        match action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::SkipUnchanged => summary.skip_unchanged += 1,
        }
        summary.unresolved_targets += targets
            .iter()
            .filter(|t| t.status == plan::TargetStatus::Unresolved)
            .count() as u32;
        if !blockers.is_empty() {
            summary.blocked_items += 1;
        }
        let preexisting_same_name = of_type
            .map(|m| {
                m.values()
                    .filter(|i| !i.deleted && i.name == entry.name)
                    .map(|i| i.object_id.clone())
                    .collect()
            })
            .unwrap_or_default();
        items.push(RestoreItem {
            index: index as u32,
            object_type: entry.object_type.clone(),
            object_id: entry.object_id.clone(),
            name: entry.name.clone(),
            hash: entry.hash.clone(),
            snapshot_key: entry.snapshot_key.clone(),
            action,
            diff_base,
            diff,
            diff_truncated,
            targets,
            blockers,
            preexisting_same_name,
            status: ItemStatus::Pending,
            owner: None,
            attempts: 0,
            written_id: None,
            step: None,
            failure: None,
        });
    }
    let blockers: Vec<Blocker> = items
        .iter()
        .flat_map(|i| i.blockers.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let token = confirmation_token();
    let now = Utc::now();
    let record = RestoreRecord {
        restore_id: RestoreId::new(),
        workspace_id: ws,
        tenant_id: tenant,
        backup_set_id: request.backup_set,
        created_by: caller.clone(),
        created_at: now,
        expires_at: expiry_of(now),
        status: RestoreStatus::Previewed,
        token_hash: plan::token_hash(&token),
        mapping: request.mapping,
        item_count: items.len() as u32,
        summary,
        executable: blockers.is_empty(),
        blockers,
        high_risk_items,
        inventory_version,
        run_id: None,
        completed_at: None,
    };
    let audit = Audit {
        workspace: ws,
        tenant: Some(tenant),
        actor: &caller,
        action: "restore.previewed",
        target: record.restore_id.to_string(),
    }
    .entry(
        None,
        Some(json!({
            "backup_set_id": record.backup_set_id,
            "items": record.item_count,
            "summary": record.summary,
            "executable": record.executable,
            "blockers": record.blockers,
        })),
    );
    deps.store.create_restore(&record, &items, &audit).await?;
    let mut body = view(&record, &items);
    body["confirmation_token"] = json!(token);
    Ok(Reply::json(201, &body))
}

/// Every manifest entry of a set.
async fn manifest(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
    set: BackupSetId,
) -> Result<Vec<ManifestEntry>, ApiError> {
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = deps
            .store
            .manifest_entries(ws, tenant, set, MANIFEST_PAGE, after)
            .await?;
        entries.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(entries),
        }
    }
}

/// The restore as clients see it (no token hash, no internal stamps).
fn view(record: &RestoreRecord, items: &[RestoreItem]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|i| {
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
        })
        .collect();
    json!({
        "restore": {
            "id": record.restore_id,
            "backup_set_id": record.backup_set_id,
            "status": record.status,
            "created_by": record.created_by,
            "created_at": tenantops_core::time::format(record.created_at),
            "expires_at": tenantops_core::time::format(record.expires_at),
            "executable": record.executable,
            "blockers": record.blockers,
            "summary": record.summary,
            "high_risk_items": record.high_risk_items,
            "mapping": record.mapping,
            "run_id": record.run_id,
        },
        "items": items,
    })
}

fn restore_id(raw: &str) -> Result<RestoreId, ApiError> {
    raw.parse()
        .map_err(|_| refused(ReasonCode::RestoreNotFound))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/restores/{id}`.
pub async fn get(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let common::TenantPath { caller, ws, tenant } = common::tenant_path(req, ws, tenant)?;
    common::authorize(deps, ws, &caller, Capability::RestorePreview).await?;
    let id = restore_id(id)?;
    let record = deps
        .store
        .get_restore(ws, tenant, id)
        .await?
        .ok_or(refused(ReasonCode::RestoreNotFound))?;
    let items = deps.store.restore_items(ws, tenant, id).await?;
    Ok(Reply::json(200, &view(&record, &items)))
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
    let (kinds, preconditions): (Vec<ExecutePrecondition>, Vec<_>) = checks.into_iter().unzip();
    let explain = |i: usize| match kinds.get(i) {
        Some(ExecutePrecondition::Restore) => refused(why_not(&record, &token_hash, now)),
        Some(ExecutePrecondition::InventoryStamp) => refused(ReasonCode::RestoreInventoryChanged),
        Some(ExecutePrecondition::HighRiskSetting) => refused(ReasonCode::RestoreHighRiskDisabled),
        None => ApiError::internal_message("unknown restore precondition"),
    };
    launch(
        deps,
        Launch {
            caller: &caller,
            fingerprint: request_fingerprint(tenant, &params),
            run,
            lock: identity.lock,
            capability: Capability::RestoreExecute,
            preconditions: &preconditions,
        },
        explain,
    )
    .await
}

/// Why the restore's own condition failed, from what was read just before.
fn why_not(record: &RestoreRecord, token_hash: &str, now: DateTime<Utc>) -> ReasonCode {
    if record.token_hash != token_hash {
        return ReasonCode::RestoreConfirmationInvalid;
    }
    match record.status {
        RestoreStatus::Completed => ReasonCode::RestoreAlreadyExecuted,
        RestoreStatus::Previewed if !record.executable => record
            .blockers
            .first()
            .map(|b| b.reason())
            .unwrap_or(ReasonCode::RestoreMappingUnresolved),
        RestoreStatus::Previewed if now > record.expires_at => ReasonCode::RestorePreviewStale,
        _ => ReasonCode::ConcurrentChange,
    }
}
