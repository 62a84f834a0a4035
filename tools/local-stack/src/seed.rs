//! The demo: two workspaces, each with a customer tenant, one user per role, and a provider
//! connection. Seeded through the API handler as the demo users, so the demo exercises the
//! same code paths (and leaves the same audit trail) as a client would.

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tenantops_api::Deps;
use tenantops_core::{TenantId, UserId, WorkspaceId};

use crate::gateway::invoke;

/// Who is who in the demo. `outsider` belongs to the other workspace only; `platform` is a
/// platform operator (its token carries the operators' claim) and a member of no workspace.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUsers {
    pub owner: UserId,
    pub manager: UserId,
    pub operator: UserId,
    pub readonly: UserId,
    pub outsider: UserId,
    pub platform: UserId,
}

impl DemoUsers {
    /// Users named `{prefix}-{role}`.
    pub fn named(prefix: &str) -> anyhow::Result<Self> {
        let u = |r: &str| format!("{prefix}-{r}").parse::<UserId>();
        Ok(Self {
            owner: u("owner")?,
            manager: u("manager")?,
            operator: u("operator")?,
            readonly: u("readonly")?,
            outsider: u("outsider")?,
            platform: u("platform")?,
        })
    }

    /// The workspace users (not the platform operator, whose token differs).
    pub fn all(&self) -> [(&'static str, &UserId); 5] {
        [
            ("owner", &self.owner),
            ("manager", &self.manager),
            ("operator", &self.operator),
            ("readonly", &self.readonly),
            ("outsider", &self.outsider),
        ]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Demo {
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub other_workspace_id: WorkspaceId,
    pub other_tenant_id: TenantId,
    pub users: DemoUsers,
}

/// The demo tenant's app registration (graph-sim accepts it; it is not a real secret).
pub const DEMO_CLIENT_ID: &str = "6f1c7a52-2d2b-4f0e-9a51-3f0d6c1e9b10";
pub const DEMO_CLIENT_SECRET: &str = "demo-client-secret-not-for-production";
/// The app registration of the second, not yet onboarded, simulated tenant.
pub const ONBOARDING_CLIENT_ID: &str = "2d6f0c4b-7a1e-4f53-9c2d-8e5b1a7f3c60";
pub const ONBOARDING_CLIENT_SECRET: &str = "onboarding-client-secret-not-for-production";

async fn call(
    deps: &Deps,
    as_user: &UserId,
    method: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let (status, reply) = invoke(deps, method, path, as_user.as_str(), Some(body)).await?;
    if !(200..300).contains(&status) {
        bail!("seeding: {method} {path} answered {status}: {reply}");
    }
    Ok(reply)
}

fn id<T: std::str::FromStr>(v: &Value, pointer: &str) -> anyhow::Result<T> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("seeding: no {pointer} in {v}"))
}

/// A fresh GUID-shaped Entra id per seed, so that seeds never collide.
pub fn fresh_entra_id() -> String {
    let h = format!("{:032x}", ulid::Ulid::new().0);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Seeds the demo through the API.
pub async fn seed(deps: &Deps, users: DemoUsers) -> anyhow::Result<Demo> {
    let ws = call(
        deps,
        &users.owner,
        "POST",
        "/v1/workspaces",
        json!({ "name": "Contoso MSP" }),
    )
    .await?;
    let ws: WorkspaceId = id(&ws, "/workspace/id")?;
    for (user, role) in [
        (&users.manager, "manager"),
        (&users.operator, "operator"),
        (&users.readonly, "readonly"),
    ] {
        call(
            deps,
            &users.owner,
            "PUT",
            &format!("/v1/workspaces/{ws}/members/{user}"),
            json!({ "role": role }),
        )
        .await?;
    }
    let other = call(
        deps,
        &users.outsider,
        "POST",
        "/v1/workspaces",
        json!({ "name": "Fabrikam MSP" }),
    )
    .await?;
    let other: WorkspaceId = id(&other, "/workspace/id")?;

    let tenant = call(
        deps,
        &users.owner,
        "POST",
        &format!("/v1/workspaces/{ws}/tenants"),
        json!({ "entra_tenant_id": fresh_entra_id(), "display_name": "Contoso Pharma" }),
    )
    .await?;
    let tenant: TenantId = id(&tenant, "/tenant/id")?;
    let other_tenant = call(
        deps,
        &users.outsider,
        "POST",
        &format!("/v1/workspaces/{other}/tenants"),
        json!({ "entra_tenant_id": fresh_entra_id(), "display_name": "Fabrikam Retail" }),
    )
    .await?;
    let other_tenant: TenantId = id(&other_tenant, "/tenant/id")?;
    call(
        deps,
        &users.owner,
        "PUT",
        &format!("/v1/workspaces/{ws}/tenants/{tenant}/provider-connection"),
        json!({ "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET }),
    )
    .await?;
    Ok(Demo {
        workspace_id: ws,
        tenant_id: tenant,
        other_workspace_id: other,
        other_tenant_id: other_tenant,
        users,
    })
}
