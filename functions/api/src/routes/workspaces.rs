//! Workspaces and their settings, members, and the audit log.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantops_aws::{
    AuditQuery, MemberGuard, MemberRecord, MemberWrite, WorkspaceRecord, WorkspaceSettings,
};
use tenantops_core::membership::{MemberChange, MembershipError, check_change};
use tenantops_core::problem::{Attention, ProblemClass};
use tenantops_core::{Capability, OperationType, Role, TenantId, UserId, WorkspaceId, links};

use super::common::{self, Audit};
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::tenant_state;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWorkspace {
    name: String,
}

#[derive(Debug, Serialize)]
struct WorkspaceView<'a> {
    id: WorkspaceId,
    name: &'a str,
    role: Role,
}

#[derive(Debug, Serialize)]
struct MemberView<'a> {
    user_id: &'a UserId,
    role: Role,
    #[serde(with = "tenantops_core::time")]
    added_at: chrono::DateTime<Utc>,
}

impl<'a> From<&'a MemberRecord> for MemberView<'a> {
    fn from(m: &'a MemberRecord) -> Self {
        MemberView {
            user_id: &m.user_id,
            role: m.role,
            added_at: m.added_at,
        }
    }
}

/// `POST /v1/workspaces`: the caller becomes its owner.
pub async fn create(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let body: CreateWorkspace = common::body(req)?;
    let name = common::name("name", &body.name)?;
    let ws = WorkspaceRecord {
        workspace_id: WorkspaceId::new(),
        name,
        owner_count: 1,
        created_at: Utc::now(),
        settings: Default::default(),
    };
    let audit = Audit {
        workspace: ws.workspace_id,
        tenant: None,
        actor: &caller,
        action: "workspace.create",
        target: ws.workspace_id.to_string(),
    }
    .entry(None, Some(json!({ "name": ws.name, "owner": caller })));
    deps.store.create_workspace(&ws, &caller, &audit).await?;
    Ok(Reply::json(
        201,
        &json!({ "workspace": WorkspaceView { id: ws.workspace_id, name: &ws.name, role: Role::Owner } }),
    ))
}

/// `GET /v1/workspaces`: the caller's workspaces and role in each.
pub async fn list(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let memberships = deps.store.workspaces_of(&caller).await?;
    let items: Vec<WorkspaceView> = memberships
        .iter()
        .map(|m| WorkspaceView {
            id: m.workspace_id,
            name: &m.workspace_name,
            role: m.role,
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": null }),
    ))
}

/// `GET /v1/workspaces/{ws}`: the workspace as its members see it: name, settings, the
/// caller's role, and counts (tenants, members, runs active now, attention).
pub async fn view(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let role = common::authorize(deps, ws, &caller, Capability::WorkspaceView).await?;
    let now = Utc::now();
    let viewable = OperationType::viewable_with(|c| role.has(c));
    let (record, tenants, members, active, attention) = futures::try_join!(
        async { Ok::<_, ApiError>(deps.store.get_workspace(ws).await?) },
        async { Ok(deps.store.count_tenants(ws).await?) },
        async { Ok(deps.store.list_members(ws).await?.len()) },
        async { Ok(deps.store.active_runs(Some(ws)).await?.len()) },
        tenant_state::attention(deps, ws, now, &viewable),
    )?;
    let record = record.ok_or(ApiError::NotFound(Resource::Workspace))?;
    let mut total = Attention::default();
    for a in attention.values() {
        total.failed += a.failed;
        total.partial += a.partial;
        total.stale += a.stale;
        total.stuck += a.stuck;
    }
    Ok(Reply::json(
        200,
        &json!({
            "workspace": common::workspace_json(&record),
            "role": role,
            "counts": {
                "tenants": tenants,
                "members": members,
                "active_runs": active,
                "attention": total,
            },
            "links": {
                "runs": links::collection(ws, None),
                "problem_runs": links::problem_collection(ws, None, ProblemClass::Failed),
            },
        }),
    ))
}

/// `GET /v1/workspaces/{ws}/members`: visible to every member.
pub async fn members(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    common::authorize(deps, ws, &caller, Capability::WorkspaceView).await?;
    let members = deps.store.list_members(ws).await?;
    let items: Vec<MemberView> = members.iter().map(MemberView::from).collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": null }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutMember {
    role: String,
}

/// `PUT /v1/workspaces/{ws}/members/{user}` `{role}` and `DELETE` of the same.
pub async fn change_member(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    user: &str,
    change: Option<()>,
) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let removing = change.is_none();
    let target: UserId = match user.parse() {
        Ok(u) => u,
        Err(_) if removing => return Err(ApiError::NotFound(Resource::Member)),
        Err(_) => {
            return Err(ApiError::InvalidBody(
                "the user id in the path is not valid".into(),
            ));
        }
    };
    let change = if removing {
        MemberChange::Remove
    } else {
        let body: PutMember = common::body(req)?;
        let role = body.role.parse::<Role>().map_err(|_| {
            ApiError::InvalidBody("`role` must be owner, manager, operator or readonly".into())
        })?;
        MemberChange::Put(role)
    };

    let view = deps.store.membership_view(ws, &caller, &target).await?;
    let (Some(workspace), Some(actor)) = (view.workspace, view.actor) else {
        return Err(ApiError::NotFound(Resource::Workspace));
    };
    let current = view.target.as_ref().map(|m| m.role);
    let permitted = check_change(
        actor.role,
        caller == target,
        current,
        change,
        workspace.owner_count,
    )
    .map_err(|e| match e {
        MembershipError::Forbidden => ApiError::Forbidden(Capability::MembersManage),
        other => ApiError::Membership(other),
    })?;
    let new = match change {
        MemberChange::Put(r) => Some(r),
        MemberChange::Remove => None,
    };
    if new.is_some() && new == current {
        // Nothing changes: answer without writing (and without an audit entry).
        let m = view.target.as_ref().map(MemberView::from);
        return Ok(Reply::json(200, &json!({ "member": m })));
    }
    let action = match (current, new) {
        (None, Some(_)) => "member.add",
        (Some(_), Some(_)) => "member.change_role",
        _ => "member.remove",
    };
    let audit = Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action,
        target: target.to_string(),
    }
    .entry(
        current.map(|r| json!({ "role": r })),
        new.map(|r| json!({ "role": r })),
    );
    deps.store
        .change_member(MemberWrite {
            workspace: &workspace,
            actor: &caller,
            actor_role: actor.role,
            target: &target,
            current,
            new,
            owner_delta: permitted.owner_delta,
            audit: &audit,
        })
        .await
        .map_err(|e| ApiError::write(e, Capability::MembersManage))?;
    match new {
        None => Ok(Reply::no_content()),
        Some(role) => Ok(Reply::json(
            if current.is_none() { 201 } else { 200 },
            &json!({ "member": { "user_id": target, "role": role, "added_at": tenantops_core::time::format(audit.at) } }),
        )),
    }
}

/// `GET /v1/workspaces/{ws}/audit?action=&tenant=&limit=&cursor=`.
pub async fn audit(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let q = common::query(req, &["action", "tenant", "limit", "cursor"])?;
    let action = match q.get("action") {
        None => None,
        Some(v) => {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
            if !ok {
                return Err(ApiError::InvalidQuery(
                    "`action` must look like `member.add`".into(),
                ));
            }
            Some((*v).to_owned())
        }
    };
    let tenant = q
        .get("tenant")
        .map(|v| {
            v.parse::<TenantId>()
                .map_err(|_| ApiError::InvalidQuery("`tenant` must be a tenant id".into()))
        })
        .transpose()?;
    let limit = common::limit(&q, 50, 100)?;
    let raw_cursor = q.get("cursor").copied();
    let query_key = format!(
        "audit|action={}|tenant={}",
        action.clone().unwrap_or_default(),
        tenant.map(|t| t.to_string()).unwrap_or_default()
    );
    let after = cursor::position::<ulid::Ulid>(raw_cursor, &query_key)?;
    common::authorize(deps, ws, &caller, Capability::AuditView).await?;
    let (items, next) = deps
        .store
        .list_audit(&AuditQuery {
            workspace: ws,
            action,
            tenant,
            limit,
            after,
        })
        .await?;
    let next_cursor = next.map(|id| cursor::encode(&query_key, id));
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": next_cursor }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    settings: WorkspaceSettings,
}

/// `PATCH /v1/workspaces/{ws}` `{"settings": {"restore_high_risk": bool}}`: the `workspace.settings` capability (owners).
pub async fn update_workspace(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    common::authorize(deps, ws, &caller, Capability::WorkspaceSettings).await?;
    let body: SettingsBody = common::body(req)?;
    let before = deps
        .store
        .get_workspace(ws)
        .await?
        .ok_or(ApiError::NotFound(Resource::Workspace))?;
    let audit = Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action: "workspace.settings_changed",
        target: ws.to_string(),
    }
    .entry(
        Some(json!({ "settings": before.settings })),
        Some(json!({ "settings": body.settings })),
    );
    deps.store
        .set_workspace_settings(
            ws,
            body.settings,
            MemberGuard {
                user: &caller,
                roles: &Capability::WorkspaceSettings.roles(),
            },
            &audit,
        )
        .await
        .map_err(|e| ApiError::write(e, Capability::WorkspaceSettings))?;
    Ok(Reply::json(
        200,
        &json!({ "workspace": { "id": ws, "name": before.name, "settings": body.settings } }),
    ))
}
