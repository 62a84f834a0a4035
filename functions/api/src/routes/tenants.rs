//! Customer tenants, their provider connection, and onboarding status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_aws::{ConnectionRecord, MemberGuard, TenantRecord, TenantStatus};
use tenantops_core::params::DEFAULT_CONNECTION_ID;
use tenantops_core::problem::{Attention, ProblemClass};
use tenantops_core::secret::SecretString;
use tenantops_core::tag::{Tag, parse_tags};
use tenantops_core::{
    Capability, OperationType, Outcome, ReasonCode, Role, Run, TenantId, WorkspaceId, links,
};

use super::common::{self, Audit};
use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::tenant_state::{self, TenantState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    entra_tenant_id: String,
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTenant {
    #[serde(default, deserialize_with = "common::present")]
    display_name: Option<String>,
    /// The whole set: it replaces the tenant's tags (`[]` removes them all).
    #[serde(default, deserialize_with = "common::present")]
    tags: Option<Vec<String>>,
}

/// What a PATCH changes, validated before anything is read.
struct TenantChange {
    display_name: Option<String>,
    tags: Option<Vec<Tag>>,
}

impl TenantChange {
    fn of(body: PatchTenant) -> Result<Self, ApiError> {
        if body.display_name.is_none() && body.tags.is_none() {
            return Err(ApiError::InvalidBody(
                "name `display_name`, `tags` or both".into(),
            ));
        }
        Ok(TenantChange {
            display_name: body
                .display_name
                .map(|n| common::name("display_name", &n))
                .transpose()?,
            tags: body
                .tags
                .map(|t| parse_tags(&t).map_err(|e| ApiError::InvalidBody(format!("`tags`: {e}"))))
                .transpose()?,
        })
    }
}

fn tenant_json(t: &TenantRecord) -> Value {
    json!({
        "id": t.tenant_id,
        "workspace_id": t.workspace_id,
        "entra_tenant_id": t.entra_tenant_id,
        "display_name": t.display_name,
        "status": t.status,
        "tags": t.tags,
        "created_at": tenantops_core::time::format(t.created_at),
        "links": { "runs": links::collection(t.workspace_id, Some(t.tenant_id)) },
    })
}

/// A tenant's attention counts, each with the admin-plane link to its runs.
fn attention_json(t: &TenantRecord, counts: Attention) -> Value {
    let link = |p: ProblemClass| links::problem_collection(t.workspace_id, Some(t.tenant_id), p);
    json!({
        "total": counts.total(),
        "failed": counts.failed,
        "partial": counts.partial,
        "stale": counts.stale,
        "stuck": counts.stuck,
        "links": {
            "failed": link(ProblemClass::Failed),
            "partial": link(ProblemClass::Partial),
            "stale": link(ProblemClass::Stale),
            "stuck": link(ProblemClass::Stuck),
        },
    })
}

/// `POST /v1/workspaces/{ws}/tenants`.
pub async fn create(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let body: CreateTenant = common::body(req)?;
    let record = TenantRecord {
        tenant_id: TenantId::new(),
        workspace_id: ws,
        entra_tenant_id: common::guid("entra_tenant_id", &body.entra_tenant_id)?,
        display_name: common::name("display_name", &body.display_name)?,
        status: TenantStatus::Active,
        created_at: Utc::now(),
        tags: Vec::new(),
    };
    let audit = Audit {
        workspace: ws,
        tenant: Some(record.tenant_id),
        actor: &caller,
        action: "tenant.create",
        target: record.tenant_id.to_string(),
    }
    .entry(None, Some(json!({ "entra_tenant_id": record.entra_tenant_id, "display_name": record.display_name })));
    let roles = Capability::TenantsManage.roles();
    deps.store
        .create_tenant(
            &record,
            Some(MemberGuard {
                user: &caller,
                roles: &roles,
            }),
            &audit,
        )
        .await
        .map_err(|e| ApiError::write(e, Capability::TenantsManage))?;
    Ok(Reply::json(201, &json!({ "tenant": tenant_json(&record) })))
}

/// `GET /v1/workspaces/{ws}/tenants[?tag=]`: every tenant, or those carrying the tag.
pub async fn list(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let q = common::query(req, &["tag"])?;
    let tag = q
        .get("tag")
        .map(|t| Tag::parse(t).map_err(|e| ApiError::InvalidQuery(format!("`tag`: {e}"))))
        .transpose()?;
    let role = common::authorize(deps, ws, &caller, Capability::WorkspaceView).await?;
    let viewable = OperationType::viewable_with(|c| role.has(c));
    let (tenants, attention) = futures::try_join!(
        async { Ok::<_, ApiError>(deps.store.list_tenants(ws).await?) },
        tenant_state::attention(deps, ws, Utc::now(), &viewable),
    )?;
    let items: Vec<Value> = tenants
        .iter()
        .filter(|t| tag.as_ref().is_none_or(|tag| t.tags.contains(tag)))
        .map(|t| {
            let mut item = tenant_json(t);
            let counts = attention.get(&t.tenant_id).copied().unwrap_or_default();
            item["attention"] = attention_json(t, counts);
            item
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": null }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}`.
pub async fn view(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let scope = common::tenant_scope(req, deps, ws, tenant, Capability::WorkspaceView).await?;
    Ok(Reply::json(
        200,
        &json!({ "tenant": tenant_json(&scope.record) }),
    ))
}

/// `PATCH /v1/workspaces/{ws}/tenants/{t}` `{display_name?, tags?}` (rename, retag), and
/// `POST .../archive` when `archive` is set.
pub async fn update(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    archive: bool,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let change = if archive {
        None
    } else {
        Some(TenantChange::of(common::body(req)?)?)
    };
    let common::TenantScope {
        caller,
        ws,
        tenant,
        record: observed,
        ..
    } = path.scope(deps, Capability::TenantsManage).await?;
    let mut new = observed.clone();
    if let Some(change) = change {
        if let Some(name) = change.display_name {
            new.display_name = name;
        }
        if let Some(tags) = change.tags {
            new.tags = tags;
        }
    }
    if archive {
        new.status = TenantStatus::Archived;
    }
    if new == observed {
        return Ok(Reply::json(
            200,
            &json!({ "tenant": tenant_json(&observed) }),
        ));
    }
    let (action, before, after) = if archive {
        (
            "tenant.archive",
            json!({ "status": observed.status }),
            json!({ "status": new.status }),
        )
    } else {
        // Each field the PATCH changed, before and after; the action names what changed.
        let (mut before, mut after) = (json!({}), json!({}));
        if new.display_name != observed.display_name {
            before["display_name"] = json!(observed.display_name);
            after["display_name"] = json!(new.display_name);
        }
        if new.tags != observed.tags {
            before["tags"] = json!(observed.tags);
            after["tags"] = json!(new.tags);
        }
        let action = match (before.get("display_name"), before.get("tags")) {
            (Some(_), None) => "tenant.rename",
            (None, Some(_)) => "tenant.retag",
            _ => "tenant.update",
        };
        (action, before, after)
    };
    let audit = Audit {
        workspace: ws,
        tenant: Some(tenant),
        actor: &caller,
        action,
        target: tenant.to_string(),
    }
    .entry(Some(before), Some(after));
    let roles = Capability::TenantsManage.roles();
    deps.store
        .replace_tenant(
            &observed,
            &new,
            MemberGuard {
                user: &caller,
                roles: &roles,
            },
            &audit,
        )
        .await
        .map_err(|e| ApiError::write(e, Capability::TenantsManage))?;
    Ok(Reply::json(200, &json!({ "tenant": tenant_json(&new) })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutConnection {
    client_id: String,
    client_secret: SecretString,
    #[serde(default)]
    secret_expires_at: Option<String>,
}

/// The connection as clients see it: metadata and a status, never the secret.
fn connection_json(c: &ConnectionRecord, latest_check: Option<&Run>) -> Value {
    // A check older than the last rotation says nothing about the current secret.
    let changed_at = c.rotated_at.unwrap_or(c.created_at);
    let check = latest_check.filter(|r| r.created_at >= changed_at);
    let (status, code) = tenant_state::connection_status(check);
    json!({
        "connection_id": c.connection_id,
        "client_id": c.client_id,
        "secret_ref": c.secret_name,
        "version": c.version,
        "created_at": tenantops_core::time::format(c.created_at),
        "rotated_at": c.rotated_at.map(tenantops_core::time::format),
        "secret_expires_at": c.secret_expires_at.map(tenantops_core::time::format),
        "status": status,
        "status_code": code,
        "last_check": check.map(|r| links::view(r.id)),
    })
}

/// `PUT /v1/workspaces/{ws}/tenants/{t}/provider-connection`: create or rotate. The secret
/// goes to Secrets Manager; the table keeps its name and metadata only.
pub async fn put_connection(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    // serde's messages may quote field values; for a body that carries a secret, say only
    // what is expected.
    let body: PutConnection = serde_json::from_value(req.json_body()?).map_err(|_| {
        ApiError::InvalidBody(
            "expected {\"client_id\": GUID, \"client_secret\": string, \"secret_expires_at\"?: RFC 3339}".into(),
        )
    })?;
    let client_id = common::guid("client_id", &body.client_id)?;
    if body.client_secret.is_empty() || body.client_secret.len() > 1024 {
        return Err(ApiError::InvalidBody(
            "`client_secret` must be 1 to 1024 characters".into(),
        ));
    }
    let secret_expires_at = body
        .secret_expires_at
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::InvalidBody(
                        "`secret_expires_at` must be an RFC 3339 timestamp".into(),
                    )
                })
        })
        .transpose()?;

    let common::TenantScope {
        caller,
        ws,
        tenant,
        record,
        ..
    } = path.scope(deps, Capability::ConnectionManage).await?;
    if record.status == TenantStatus::Archived {
        return Err(ApiError::TenantArchived);
    }
    let existing = deps
        .store
        .get_connection(ws, tenant, DEFAULT_CONNECTION_ID)
        .await?;
    let secret_name = deps.secrets.secret_name(ws, tenant, DEFAULT_CONNECTION_ID);
    // Staged, not live: the record's transaction below decides whether it ever is.
    let secret_version = deps
        .secrets
        .stage(&secret_name, &body.client_secret)
        .await?;
    let now = Utc::now();
    let conn = ConnectionRecord {
        workspace_id: ws,
        tenant_id: tenant,
        connection_id: DEFAULT_CONNECTION_ID.to_owned(),
        client_id,
        secret_name,
        secret_version_id: Some(secret_version.clone()),
        version: existing.as_ref().map_or(1, |e| e.version + 1),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        rotated_at: existing.as_ref().map(|_| now),
        secret_expires_at,
    };
    let meta = |c: &ConnectionRecord| json!({ "client_id": c.client_id, "version": c.version, "secret_expires_at": c.secret_expires_at.map(tenantops_core::time::format) });
    let audit = Audit {
        workspace: ws,
        tenant: Some(tenant),
        actor: &caller,
        action: if existing.is_some() {
            "connection.rotate"
        } else {
            "connection.create"
        },
        target: format!("{tenant}/{DEFAULT_CONNECTION_ID}"),
    }
    .entry(existing.as_ref().map(meta), Some(meta(&conn)));
    let roles = Capability::ConnectionManage.roles();
    deps.store
        .put_connection(
            &conn,
            MemberGuard {
                user: &caller,
                roles: &roles,
            },
            &audit,
        )
        .await
        .map_err(|e| ApiError::write(e, Capability::ConnectionManage))?;
    // Committed: the record names the staged version, which workers read from now on.
    // Making it AWSCURRENT too is for other readers of the name; a failure here is logged,
    // not answered, since nothing the API or the worker reads depends on it.
    if let Err(e) = deps
        .secrets
        .promote(&conn.secret_name, &secret_version)
        .await
    {
        tracing::warn!(error = %e, code = ?e.code, "the committed secret version stays AWSPENDING");
    }
    let status = if existing.is_some() { 200 } else { 201 };
    Ok(Reply::json(
        status,
        &json!({ "connection": connection_json(&conn, None) }),
    ))
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/provider-connection`.
pub async fn view_connection(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let ConnectionState { state, .. } = connection_state(req, deps, ws, tenant).await?;
    let conn = state
        .conn
        .as_ref()
        .ok_or(ApiError::NotFound(Resource::Connection))?;
    Ok(Reply::json(
        200,
        &json!({ "connection": connection_json(conn, state.check.as_ref()) }),
    ))
}

/// What the connection and onboarding views both read: the caller's role, the tenant and
/// its state (connection, latest check, latest inventory).
struct ConnectionState {
    ws: WorkspaceId,
    tenant: TenantId,
    role: Role,
    record: TenantRecord,
    state: TenantState,
}

async fn connection_state(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<ConnectionState, ApiError> {
    let common::TenantScope {
        ws,
        tenant,
        role,
        record,
        ..
    } = common::tenant_scope(req, deps, ws, tenant, Capability::ConnectionView).await?;
    let state = TenantState::read(deps, ws, tenant).await?;
    Ok(ConnectionState {
        ws,
        tenant,
        role,
        record,
        state,
    })
}

#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
}

/// `GET /v1/workspaces/{ws}/tenants/{t}/onboarding`: the steps and what blocks the next one.
/// DB-only, like every read.
pub async fn onboarding(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let ConnectionState {
        ws,
        tenant,
        role,
        record,
        state,
    } = connection_state(req, deps, ws, tenant).await?;
    let blocking = state.onboarding_blocker(&record);
    let check = state.current_check();
    let verifying = check.is_some_and(|r| r.status.is_active());
    let verified = check.is_some_and(|r| r.outcome == Outcome::Succeeded);
    let conn = state.conn.as_ref();
    let inventory = state.inventory.as_ref();
    let steps = [
        Step {
            step: "connection_added",
            done: conn.is_some(),
            run: None,
        },
        Step {
            step: "verification_passed",
            done: verified,
            run: check.map(|r| links::view(r.id)),
        },
        Step {
            step: "first_inventory_sync",
            done: inventory.is_some(),
            run: inventory.map(|r| links::view(r.id)),
        },
    ];
    let may_verify = role.has(Capability::ConnectionVerify);
    let can_start =
        may_verify && !verifying && conn.is_some() && record.status == TenantStatus::Active;
    let why_not = if !may_verify {
        Some(ReasonCode::AuthForbidden)
    } else if record.status != TenantStatus::Active {
        Some(ReasonCode::TenantArchived)
    } else if conn.is_none() {
        Some(ReasonCode::OnboardingConnectionMissing)
    } else if verifying {
        Some(ReasonCode::OnboardingVerificationRunning)
    } else {
        None
    };
    Ok(Reply::json(
        200,
        &json!({
            "tenant_id": tenant,
            "complete": blocking.is_none(),
            "steps": steps,
            "blocking_reason": blocking.map(|c| json!({ "code": c, "message": c.message() })),
            "verification": {
                "run": check,
                "active": verifying,
                "can_start": can_start,
                "cannot_start_because": why_not,
                "start": links::start(ws, tenant),
            },
        }),
    ))
}
