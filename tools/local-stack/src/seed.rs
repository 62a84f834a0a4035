//! The demo: two workspaces, each with a customer tenant, and one user per role.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tenantops_aws::{AuditEntry, Store, TenantRecord, TenantStatus};
use tenantops_core::{Role, TenantId, UserId, WorkspaceId};

/// Who is who in the demo. `outsider` belongs to the other workspace only.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUsers {
    pub owner: UserId,
    pub manager: UserId,
    pub operator: UserId,
    pub readonly: UserId,
    pub outsider: UserId,
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
        })
    }

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

fn audit(
    ws: WorkspaceId,
    tenant: Option<TenantId>,
    actor: &UserId,
    action: &str,
    target: String,
) -> AuditEntry {
    AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: ws,
        tenant_id: tenant,
        actor: actor.to_string(),
        action: action.to_owned(),
        target,
        before: None,
        after: None,
        at: Utc::now(),
    }
}

/// Seeds the demo through the store's own operations (no items written behind its back).
pub async fn seed(store: &Store, users: DemoUsers) -> anyhow::Result<Demo> {
    let ws = WorkspaceId::new();
    let other = WorkspaceId::new();
    let tenant = TenantId::new();
    let other_tenant = TenantId::new();
    store
        .create_workspace(
            ws,
            "Contoso MSP",
            &users.owner,
            &audit(ws, None, &users.owner, "workspace.create", ws.to_string()),
        )
        .await?;
    for (user, role) in [
        (&users.manager, Role::Manager),
        (&users.operator, Role::Operator),
        (&users.readonly, Role::Readonly),
    ] {
        let mut entry = audit(ws, None, &users.owner, "member.put", user.to_string());
        entry.after = Some(json!({ "role": role }));
        store.put_member(ws, user, role, &entry).await?;
    }
    store
        .create_workspace(
            other,
            "Fabrikam MSP",
            &users.outsider,
            &audit(
                other,
                None,
                &users.outsider,
                "workspace.create",
                other.to_string(),
            ),
        )
        .await?;
    for (w, t, actor, name) in [
        (ws, tenant, &users.owner, "Contoso Pharma"),
        (other, other_tenant, &users.outsider, "Fabrikam Retail"),
    ] {
        let record = TenantRecord {
            tenant_id: t,
            workspace_id: w,
            // A fresh GUID-shaped Entra id per seed, so seeds never collide.
            entra_tenant_id: guid_from(ulid::Ulid::new()),
            display_name: name.to_owned(),
            status: TenantStatus::Active,
            created_at: Utc::now(),
        };
        store
            .create_tenant(
                &record,
                &audit(w, Some(t), actor, "tenant.create", t.to_string()),
            )
            .await?;
    }
    Ok(Demo {
        workspace_id: ws,
        tenant_id: tenant,
        other_workspace_id: other,
        other_tenant_id: other_tenant,
        users,
    })
}

fn guid_from(u: ulid::Ulid) -> String {
    let h = format!("{:032x}", u.0);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
