//! `tenantops batch start|view|cancel|execute|retry`. A started batch is followed through the
//! `links.view` it answered until no child is starting or active; the exit code follows its
//! status as a watched run's follows its outcome (0 succeeded, 2 partially succeeded, 1 failed
//! or cancelled). A restore batch's confirmation token is kept in the config directory, as a
//! restore preview's is, for `batch execute`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tenantops_client::{BatchRequest, BatchStatus, BatchTargets, BatchView, Client};

use super::Ctx;
use super::restores::confirm;
use super::runs::json_arg;
use crate::cli::BatchesCmd;
use crate::config;
use crate::error::CliError;
use crate::output::{self, Output};
use crate::watch::next_delay;

/// The first poll's wait (polls back off as a watched run's do).
const FIRST_POLL: Duration = Duration::from_millis(250);

/// Whether the batch still has children to start or to finish.
pub fn in_progress(status: BatchStatus) -> bool {
    matches!(status, BatchStatus::Starting | BatchStatus::Running)
}

/// The exit code of a finished batch's status.
pub fn exit_code(status: BatchStatus) -> u8 {
    match status {
        // A restore batch's previews are done (or confirmed): what it asked of its children.
        BatchStatus::Succeeded | BatchStatus::AwaitingConfirmation | BatchStatus::Executed => 0,
        BatchStatus::PartiallySucceeded => 2,
        BatchStatus::Failed
        | BatchStatus::Cancelled
        | BatchStatus::Starting
        | BatchStatus::Running => 1,
    }
}

/// A status or origin as the API spells it (`partially_succeeded`).
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `batch ID (TYPE) STATUS: N tenants`.
fn headline(v: &BatchView) -> String {
    format!(
        "batch {} ({}) {}: {} tenants",
        v.batch.id,
        v.batch.kind,
        word(&v.batch.status),
        v.batch.progress.tenants
    )
}

/// The counts, on one line.
fn counts(v: &BatchView) -> String {
    let p = v.batch.progress;
    format!(
        "not started {}, refused {}, queued {}, running {}, completed {}: {} succeeded, {} partially succeeded, {} failed, {} cancelled",
        p.not_started,
        p.refused,
        p.queued,
        p.running,
        p.completed,
        p.succeeded,
        p.partially_succeeded,
        p.failed,
        p.cancelled
    )
}

/// The batch, its counts, its failed tenants with their reasons, one line per child.
fn show(v: &BatchView) -> Result<(), CliError> {
    output::line(&headline(v))?;
    output::line(&format!("  {}", counts(v)))?;
    if let Some(at) = &v.batch.cancelled_at {
        output::line(&format!("  cancelled at {at}"))?;
    }
    if let Some(first) = &v.batch.retry_of {
        output::line(&format!("  retries batch {first}"))?;
    }
    if !v.failed.is_empty() {
        output::line("  failed tenants:")?;
        for f in &v.failed {
            output::line(&format!(
                "    {}  {}  {}",
                f.tenant_id,
                f.reason,
                output::opt(&f.run_id)
            ))?;
        }
    }
    let rows = v
        .children
        .iter()
        .map(|c| {
            vec![
                c.tenant_id.to_string(),
                word(&c.origin),
                c.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                c.outcome.map(|o| o.as_str().to_owned()).unwrap_or_default(),
                output::opt(&c.run_id),
                output::opt(&c.reason),
            ]
        })
        .collect();
    output::table(
        &["TENANT", "ORIGIN", "STATUS", "OUTCOME", "RUN", "REASON"],
        rows,
    )
}

/// A bar on a terminal (stderr); elsewhere, a plain line whenever the counts move.
enum Progress {
    Bar(ProgressBar),
    Lines,
    Quiet,
}

impl Progress {
    fn new(out: Output) -> Self {
        if out.json {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines;
        }
        let bar = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress::Bar(bar)
    }

    fn update(&self, v: &BatchView, moved: bool) {
        let p = v.batch.progress;
        match self {
            Progress::Bar(bar) => {
                bar.set_length(p.tenants);
                bar.set_position(p.completed + p.refused);
                let failed = p.failed + p.refused;
                let failed = if failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "{} {}{failed}",
                    v.batch.kind,
                    word(&v.batch.status)
                ));
            }
            Progress::Lines if moved => {
                output::note(&format!("{}: {}", word(&v.batch.status), counts(v)))
            }
            Progress::Lines | Progress::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Polls the batch at `link` (its `links.view`) until it is no longer starting or running.
pub async fn follow(client: &Client, link: &str, out: Output) -> Result<BatchView, CliError> {
    let progress = Progress::new(out);
    let mut delay = FIRST_POLL;
    let mut last = None;
    loop {
        let view = match client.follow_batch(link).await {
            Ok(v) => v,
            Err(e) => {
                progress.finish();
                return Err(e.into());
            }
        };
        let now = (view.batch.status, view.batch.progress);
        let moved = last != Some(now);
        progress.update(&view, moved);
        if !in_progress(view.batch.status) {
            progress.finish();
            return Ok(view);
        }
        last = Some(now);
        delay = next_delay(delay, moved);
        tokio::time::sleep(delay).await;
    }
}

/// Prints a created batch and, with `wait`, follows it: the exit code is then its status's. A
/// restore batch's token is kept for `batch execute`.
async fn created_batch(ctx: &Ctx, created: BatchView, wait: bool) -> Result<u8, CliError> {
    if let Some(token) = &created.confirmation_token {
        let id = created.batch.id.to_string();
        config::save_confirmation(&id, token)?;
        output::note(&format!(
            "  its confirmation token is kept for `tenantops batch execute {id}`"
        ));
    }
    if !wait {
        ctx.out.show(&created, || {
            output::line(&headline(&created))?;
            output::line(&format!(
                "  follow it: tenantops batch view {}",
                created.batch.id
            ))
        })?;
        return Ok(0);
    }
    if !ctx.out.json {
        output::note(&format!("{} (started)", headline(&created)));
    }
    let done = follow(&ctx.client, &created.links.view, ctx.out).await?;
    ctx.out.show(&done, || show(&done))?;
    Ok(exit_code(done.batch.status))
}

pub async fn batches(ctx: &Ctx, cmd: BatchesCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let ws = ctx.workspace()?;
    match cmd {
        BatchesCmd::Start {
            kind,
            params,
            all,
            tag,
            tenants,
            exclude,
            idempotency_key,
            wait,
        } => {
            let targets = match (all, tag) {
                (true, _) => BatchTargets::All,
                (false, Some(tag)) => BatchTargets::Tag(tag),
                (false, None) => BatchTargets::Tenants(tenants),
            };
            let request = BatchRequest {
                kind,
                params: params.map(|p| json_arg("params", &p)).transpose()?,
                tenants: targets,
                exclude,
            };
            let created = client
                .create_batch(ws, &request, idempotency_key.as_deref())
                .await?;
            created_batch(ctx, created, wait).await
        }
        BatchesCmd::View { batch } => {
            let view = client.view_batch(ws, batch).await?;
            ctx.out.show(&view, || show(&view))?;
            Ok(0)
        }
        BatchesCmd::Cancel { batch } => {
            let view = client.cancel_batch(ws, batch).await?;
            ctx.out.show(&view, || show(&view))?;
            Ok(0)
        }
        BatchesCmd::Execute { batch, yes, wait } => {
            let token = config::load_confirmation(&batch.to_string())?;
            let view = client.view_batch(ws, batch).await?;
            let restores = view.children.iter().filter(|c| c.restore.is_some()).count();
            output::note(&headline(&view));
            output::note(&format!("  {}", counts(&view)));
            if !yes {
                confirm(
                    &format!("Type the number of tenants whose restores to execute ({restores})"),
                    &restores.to_string(),
                )?;
            }
            let created = client.execute_batch(ws, batch, &token).await?;
            created_batch(ctx, created, wait).await
        }
        BatchesCmd::Retry {
            batch,
            idempotency_key,
            wait,
        } => {
            let created = client
                .retry_batch(ws, batch, idempotency_key.as_deref())
                .await?;
            created_batch(ctx, created, wait).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_follows_the_batchs_status() {
        assert_eq!(exit_code(BatchStatus::Succeeded), 0);
        assert_eq!(exit_code(BatchStatus::PartiallySucceeded), 2);
        assert_eq!(exit_code(BatchStatus::Failed), 1);
        assert_eq!(exit_code(BatchStatus::Cancelled), 1);
        assert!(in_progress(BatchStatus::Starting) && in_progress(BatchStatus::Running));
        assert!(!in_progress(BatchStatus::Cancelled));
        assert_eq!(
            word(&BatchStatus::PartiallySucceeded),
            "partially_succeeded"
        );
    }
}
