//! `tenantops workspaces`, `tenants` and `members`: the workspace's administration.

use std::io::BufRead;

use tenantops_client::{Tenant, TenantResponse};
use tenantops_core::secret::SecretString;

use super::{Ctx, page};
use crate::cli::{MembersCmd, TenantsCmd, WorkspacesCmd};
use crate::error::CliError;
use crate::output;

pub async fn workspaces(ctx: &Ctx, cmd: WorkspacesCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    match cmd {
        WorkspacesCmd::List => {
            let page = client.list_workspaces().await?;
            ctx.out.show(&page, || {
                let rows = page
                    .items
                    .iter()
                    .map(|w| vec![w.id.to_string(), w.name.clone(), w.role.clone()])
                    .collect();
                output::table(&["WORKSPACE", "NAME", "ROLE"], rows)
            })?;
        }
        WorkspacesCmd::Show => {
            let view = client.view_workspace(ctx.workspace()?).await?;
            ctx.out.show(&view, || {
                let w = &view["workspace"];
                let c = &view["counts"];
                let a = &c["attention"];
                output::fields(&[
                    (
                        "workspace",
                        format!(
                            "{} ({})",
                            w["name"].as_str().unwrap_or_default(),
                            w["id"].as_str().unwrap_or_default()
                        ),
                    ),
                    (
                        "your role",
                        view["role"].as_str().unwrap_or_default().to_owned(),
                    ),
                    ("tenants", c["tenants"].to_string()),
                    ("members", c["members"].to_string()),
                    ("active runs", c["active_runs"].to_string()),
                    (
                        "attention",
                        format!(
                            "{} failed, {} partial, {} stale, {} stuck",
                            a["failed"], a["partial"], a["stale"], a["stuck"]
                        ),
                    ),
                    (
                        "restore_high_risk",
                        w["settings"]["restore_high_risk"].to_string(),
                    ),
                ])
            })?;
        }
        WorkspacesCmd::Create { name } => {
            let created = client.create_workspace(&name).await?;
            ctx.out.show(&created, || {
                output::line(&format!(
                    "workspace {} ({}): you are its {}",
                    created.workspace.id, created.workspace.name, created.workspace.role
                ))
            })?;
        }
        WorkspacesCmd::Settings { restore_high_risk } => {
            let answer = client
                .update_workspace_settings(ctx.workspace()?, restore_high_risk)
                .await?;
            ctx.out.show(&answer, || {
                output::line(&format!("restore_high_risk: {restore_high_risk}"))
            })?;
        }
    }
    Ok(0)
}

fn tenant_row(t: &Tenant) -> Vec<String> {
    vec![
        t.id.to_string(),
        t.display_name.clone(),
        t.entra_tenant_id.clone(),
        t.status.clone(),
        t.tags.join(","),
        t.created_at.clone(),
    ]
}

const TENANT_HEADER: [&str; 6] = [
    "TENANT",
    "NAME",
    "ENTRA TENANT",
    "STATUS",
    "TAGS",
    "CREATED",
];

fn show_tenant(ctx: &Ctx, t: &TenantResponse) -> Result<(), CliError> {
    ctx.out.show(t, || {
        output::table(&TENANT_HEADER, vec![tenant_row(&t.tenant)])
    })
}

/// The client secret: `TENANTOPS_CLIENT_SECRET`, else the first line of standard input.
fn client_secret() -> Result<SecretString, CliError> {
    if let Ok(s) = std::env::var("TENANTOPS_CLIENT_SECRET")
        && !s.is_empty()
    {
        return Ok(SecretString::new(s));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    let secret = line.trim();
    if secret.is_empty() {
        return Err(CliError::NoClientSecret);
    }
    Ok(SecretString::new(secret))
}

pub async fn tenants(ctx: &Ctx, cmd: TenantsCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    match cmd {
        TenantsCmd::List { tag } => {
            let page = client
                .list_tenants(ctx.workspace()?, tag.as_deref())
                .await?;
            ctx.out.show(&page, || {
                output::table(&TENANT_HEADER, page.items.iter().map(tenant_row).collect())
            })?;
        }
        TenantsCmd::Show => {
            let (ws, t) = ctx.tenant()?;
            show_tenant(ctx, &client.view_tenant(ws, t).await?)?;
        }
        TenantsCmd::Create {
            entra_tenant_id,
            name,
        } => {
            let created = client
                .create_tenant(ctx.workspace()?, &entra_tenant_id, &name)
                .await?;
            show_tenant(ctx, &created)?;
        }
        TenantsCmd::Rename { name } => {
            let (ws, t) = ctx.tenant()?;
            show_tenant(ctx, &client.rename_tenant(ws, t, &name).await?)?;
        }
        TenantsCmd::Tag { tags } => {
            let (ws, t) = ctx.tenant()?;
            show_tenant(ctx, &client.set_tenant_tags(ws, t, &tags).await?)?;
        }
        TenantsCmd::Archive => {
            let (ws, t) = ctx.tenant()?;
            show_tenant(ctx, &client.archive_tenant(ws, t).await?)?;
        }
        TenantsCmd::Onboarding => {
            let (ws, t) = ctx.tenant()?;
            let o = client.onboarding(ws, t).await?;
            ctx.out.show(&o, || {
                output::line(&format!(
                    "onboarding {}",
                    if o.complete { "complete" } else { "incomplete" }
                ))?;
                if let Some(b) = &o.blocking_reason {
                    output::line(&format!("  blocked: {} ({})", b.message, b.code))?;
                }
                let rows = o
                    .steps
                    .iter()
                    .map(|s| {
                        vec![
                            s.step.clone(),
                            if s.done { "done" } else { "to do" }.to_owned(),
                            output::opt(&s.run),
                        ]
                    })
                    .collect();
                output::table(&["STEP", "STATE", "RUN"], rows)
            })?;
        }
        TenantsCmd::Connection => {
            let (ws, t) = ctx.tenant()?;
            let c = client.view_connection(ws, t).await?;
            show_connection(ctx, &c)?;
        }
        TenantsCmd::Connect {
            client_id,
            secret_expires_at,
        } => {
            let (ws, t) = ctx.tenant()?;
            let secret = client_secret()?;
            let c = client
                .put_connection(ws, t, &client_id, &secret, secret_expires_at.as_deref())
                .await?;
            show_connection(ctx, &c)?;
        }
        TenantsCmd::Groups { search, page: p } => {
            let (ws, t) = ctx.tenant()?;
            let groups = client.groups(ws, t, search.as_deref(), &page(&p)).await?;
            ctx.out.show(&groups, || {
                let rows = groups
                    .items
                    .iter()
                    .map(|g| vec![g.id.clone(), g.display_name.clone()])
                    .collect();
                output::table(&["GROUP", "NAME"], rows)?;
                output::more(groups.next_cursor.as_deref());
                Ok(())
            })?;
        }
    }
    Ok(0)
}

fn show_connection(ctx: &Ctx, c: &tenantops_client::ConnectionResponse) -> Result<(), CliError> {
    ctx.out.show(c, || {
        let c = &c.connection;
        output::fields(&[
            ("connection", c.connection_id.clone()),
            ("client id", c.client_id.clone()),
            ("status", c.status.clone()),
            ("status code", output::opt(&c.status_code)),
            ("version", c.version.to_string()),
            ("secret expires", output::opt(&c.secret_expires_at)),
            ("last check", output::opt(&c.last_check)),
        ])
    })
}

pub async fn members(ctx: &Ctx, cmd: MembersCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let ws = ctx.workspace()?;
    match cmd {
        MembersCmd::List => {
            let page = client.list_members(ws).await?;
            ctx.out.show(&page, || {
                let rows = page
                    .items
                    .iter()
                    .map(|m| vec![m.user_id.clone(), m.role.clone(), m.added_at.clone()])
                    .collect();
                output::table(&["USER", "ROLE", "ADDED"], rows)
            })?;
        }
        MembersCmd::Set { user, role } => {
            let m = client.put_member(ws, &user, role.as_str()).await?;
            ctx.out.show(&m, || {
                output::line(&format!("{}: {}", m.member.user_id, m.member.role))
            })?;
        }
        MembersCmd::Remove { user } => {
            client.remove_member(ws, &user).await?;
            ctx.out.show(&serde_json::json!({ "removed": user }), || {
                output::line(&format!("{user}: removed"))
            })?;
        }
    }
    Ok(0)
}
