//! `tenantops runs start|list|show|watch|cancel`. A started run is followed through the
//! `links.view` its start answered.

use tenantops_client::{RunFilter, RunStatus, StartResponse};

use super::{Ctx, page};
use crate::cli::{RunsCmd, StatusArg};
use crate::error::CliError;
use crate::output::{self, Output};
use crate::watch;

/// Parses a JSON flag.
pub fn json_arg(flag: &'static str, text: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_str(text).map_err(|source| CliError::ArgJson { flag, source })
}

/// Prints a start's answer and, with `watch`, follows the run: the exit code is then its
/// outcome's.
pub async fn started(ctx: &Ctx, s: StartResponse, follow: bool) -> Result<u8, CliError> {
    if follow {
        if !ctx.out.json {
            output::note(&start_line(&s));
        }
        return watch::watch(&ctx.client, &s.links.view, ctx.out).await;
    }
    ctx.out.show(&s, || {
        output::line(&start_line(&s))?;
        output::line(&format!("  follow it: tenantops runs watch {}", s.run.id))
    })?;
    Ok(0)
}

fn start_line(s: &StartResponse) -> String {
    let how = if s.deduplicated {
        "already active (deduplicated)"
    } else {
        "started"
    };
    format!(
        "run {} ({}) {how}: {}",
        s.run.id,
        s.run.kind,
        s.run.status.as_str()
    )
}

fn show(run: &tenantops_client::Run, out: Output) -> Result<(), CliError> {
    out.show(run, || {
        let c = run.counters;
        output::fields(&[
            ("run", run.id.to_string()),
            ("type", run.kind.clone()),
            ("tenant", run.tenant_id.to_string()),
            ("status", run.status.as_str().to_owned()),
            ("outcome", run.outcome.as_str().to_owned()),
            ("initiator", run.initiator.clone()),
            (
                "counters",
                format!(
                    "processed {}/{}: {} succeeded, {} failed, {} skipped",
                    c.processed, c.total, c.succeeded, c.failed, c.skipped
                ),
            ),
            ("created", run.created_at.clone()),
            ("completed", output::opt(&run.completed_at)),
        ])?;
        for f in &run.failures {
            output::line(&format!(
                "  failure {}  {}  {}",
                f.code,
                f.object_ref.as_deref().unwrap_or("-"),
                f.message
            ))?;
        }
        Ok(())
    })
}

pub async fn runs(ctx: &Ctx, cmd: RunsCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    match cmd {
        RunsCmd::Start {
            kind,
            params,
            idempotency_key,
            watch: w,
        } => {
            let (ws, t) = ctx.tenant()?;
            let params = params.map(|p| json_arg("params", &p)).transpose()?;
            let s = client
                .start_run(ws, t, &kind, params, idempotency_key.as_deref())
                .await?;
            started(ctx, s, w.watch).await
        }
        RunsCmd::List {
            tenant_only,
            kind,
            status,
            active,
            problem,
            page: p,
        } => {
            let tenant = if tenant_only {
                Some(ctx.tenant()?.1)
            } else {
                None
            };
            let filter = RunFilter {
                tenant,
                kind,
                status: status.map(|s| match s {
                    StatusArg::Queued => RunStatus::Queued,
                    StatusArg::Running => RunStatus::Running,
                    StatusArg::Completed => RunStatus::Completed,
                }),
                active: active.then_some(true),
                problem: problem.map(|p| p.as_str().to_owned()),
                page: page(&p),
            };
            let runs = client.list_runs(ctx.workspace()?, &filter).await?;
            ctx.out.show(&runs, || {
                let rows = runs
                    .items
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.kind.clone(),
                            r.status.as_str().to_owned(),
                            r.outcome.as_str().to_owned(),
                            format!("{}/{}", r.counters.processed, r.counters.total),
                            r.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &["RUN", "TYPE", "STATUS", "OUTCOME", "PROGRESS", "CREATED"],
                    rows,
                )?;
                output::more(runs.next_cursor.as_deref());
                Ok(())
            })?;
            Ok(0)
        }
        RunsCmd::Show { run } => {
            let view = client.view_run(run).await?;
            show(&view.run, ctx.out)?;
            Ok(0)
        }
        RunsCmd::Watch { run } => {
            // The run's viewer link, as the API answers it.
            let view = client.view_run(run).await?;
            watch::watch(client, &view.links.view, ctx.out).await
        }
        RunsCmd::Cancel { run } => {
            let view = client.cancel_run(run).await?;
            ctx.out.show(&view, || {
                let how = if view.run.cancel_requested_at.is_some()
                    && view.run.status != RunStatus::Completed
                {
                    "stopping: its worker stops at its next checkpoint"
                } else {
                    view.run.outcome.as_str()
                };
                output::line(&format!("run {} ({}): {how}", view.run.id, view.run.kind))
            })?;
            Ok(0)
        }
    }
}
