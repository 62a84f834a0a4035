//! `tenantops restores preview|show|execute`. A preview keeps its confirmation token in the
//! config directory; `execute` shows the preview's summary and asks for the tenant's display
//! name before it sends the token (unless `--yes`).

use std::io::{BufRead, Write};

use serde_json::json;
use tenantops_client::{PageQuery, PreviewResponse, Restore, RestoreView};
use tenantops_core::{TenantId, WorkspaceId};

use super::runs::{json_arg, started};
use super::{Ctx, page};
use crate::cli::RestoresCmd;
use crate::config;
use crate::error::CliError;
use crate::output;
use crate::watch;

fn summary_lines(r: &Restore) -> Vec<String> {
    let s = r.summary;
    let mut lines = vec![
        format!(
            "restore {} of backup set {}: {}, {}, expires {}",
            r.id,
            r.backup_set_id,
            r.status,
            if r.executable {
                "executable"
            } else {
                "not executable"
            },
            r.expires_at
        ),
        format!(
            "  {} items: create {}, update {}, skip_unchanged {}; unresolved targets {}, blocked items {}, high-risk items {}",
            r.item_count,
            s.create,
            s.update,
            s.skip_unchanged,
            s.unresolved_targets,
            s.blocked_items,
            r.high_risk_items
        ),
    ];
    if !r.blockers.is_empty() {
        lines.push(format!("  blockers: {}", r.blockers.join(", ")));
    }
    lines
}

fn show(view: &RestoreView) -> Result<(), CliError> {
    for l in summary_lines(&view.restore) {
        output::line(&l)?;
    }
    let rows = view
        .items
        .iter()
        .map(|i| {
            vec![
                i.index.to_string(),
                i.object_type.clone(),
                output::opt(&i.name),
                i.action.clone(),
                i.status.clone(),
                i.blockers.join(","),
                output::opt(&i.written_id),
            ]
        })
        .collect();
    output::table(
        &[
            "#", "TYPE", "NAME", "ACTION", "STATUS", "BLOCKERS", "WRITTEN",
        ],
        rows,
    )?;
    output::more(view.next_cursor.as_deref());
    Ok(())
}

/// Asks `prompt` on stderr and reads the answer from stdin: it must be `expected`.
pub(super) fn confirm(prompt: &str, expected: &str) -> Result<(), CliError> {
    {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "{prompt}: ");
        let _ = e.flush();
    }
    let mut typed = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut typed)
        .map_err(CliError::Stdin)?;
    if typed.trim() == expected {
        Ok(())
    } else {
        Err(CliError::NotConfirmed)
    }
}

/// Prints a preview's answer, keeping its confirmation token for `restores execute`, and with
/// `watch` follows its run and shows the restore (the exit code is then the run's outcome's).
pub async fn previewed(
    ctx: &Ctx,
    ws: WorkspaceId,
    t: TenantId,
    p: PreviewResponse,
    watch: bool,
) -> Result<u8, CliError> {
    let client = &ctx.client;
    let kept = match &p.confirmation_token {
        Some(token) => Some(config::save_confirmation(&p.restore.id, token)?),
        None => None,
    };
    let first = format!(
        "restore {} {}: preview run {}",
        p.restore.id, p.restore.status, p.run.id
    );
    let then = if kept.is_some() {
        format!(
            "  its confirmation token is kept for `tenantops restores execute {}`",
            p.restore.id
        )
    } else {
        "  an active preview of the same selection: its token went to the preview that created it"
            .to_owned()
    };
    if !watch {
        ctx.out.show(&p, || {
            output::line(&first)?;
            output::line(&then)
        })?;
        return Ok(0);
    }
    output::note(&first);
    output::note(&then);
    let run = watch::follow(client, &p.links.view, ctx.out).await?;
    let view = client
        .view_restore(ws, t, &p.restore.id, &PageQuery::default())
        .await?;
    ctx.out.show(&json!({ "run": run, "restore": view }), || {
        watch::report(&run, ctx.out)?;
        show(&view)
    })?;
    Ok(watch::exit_code(run.outcome))
}

pub async fn restores(ctx: &Ctx, cmd: RestoresCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let (ws, t) = ctx.tenant()?;
    match cmd {
        RestoresCmd::Preview {
            backup_set,
            items,
            mapping,
            watch: w,
        } => {
            let mut body = json!({ "backup_set_id": backup_set });
            if let Some(i) = items {
                body["items"] = json_arg("items", &i)?;
            }
            if let Some(m) = mapping {
                body["mapping"] = json_arg("mapping", &m)?;
            }
            let p = client.preview_restore(ws, t, &body).await?;
            previewed(ctx, ws, t, p, w.watch).await
        }
        RestoresCmd::Show { restore, page: p } => {
            let view = client.view_restore(ws, t, &restore, &page(&p)).await?;
            ctx.out.show(&view, || show(&view))?;
            Ok(0)
        }
        RestoresCmd::Execute {
            restore,
            yes,
            watch: w,
        } => {
            let token = config::load_confirmation(&restore)?;
            let first = PageQuery {
                limit: Some(1),
                cursor: None,
            };
            let view = client.view_restore(ws, t, &restore, &first).await?;
            let tenant = client.view_tenant(ws, t).await?.tenant;
            output::note(&format!(
                "into tenant {} ({}, Entra {})",
                tenant.display_name, tenant.id, tenant.entra_tenant_id
            ));
            for l in summary_lines(&view.restore) {
                output::note(&l);
            }
            if !yes {
                let name = &tenant.display_name;
                confirm(
                    &format!("Type the tenant's display name ({name}) to execute this restore"),
                    name,
                )?;
            }
            let s = client.execute_restore(ws, t, &restore, &token).await?;
            started(ctx, s, w.watch).await
        }
    }
}
