//! Following a run through its `links.view` until it completes: a progress bar from its
//! counters, polling that backs off while nothing moves, and the exit code its outcome
//! gives (0 succeeded, 2 partially succeeded, 1 failed or cancelled).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tenantops_client::{Client, Outcome, Run, RunStatus};

use crate::error::CliError;
use crate::output::{self, Output};

/// The first poll's wait, and the wait again whenever the counters moved.
const FIRST_POLL: Duration = Duration::from_millis(250);
/// The longest wait between polls of a run that does not move.
const LONGEST_POLL: Duration = Duration::from_secs(5);

/// The next wait: back to the first when the run moved, else half again as long, capped.
pub fn next_delay(delay: Duration, moved: bool) -> Duration {
    if moved {
        FIRST_POLL
    } else {
        (delay * 3 / 2).min(LONGEST_POLL)
    }
}

/// The exit code of a completed run's outcome.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Succeeded => 0,
        Outcome::PartiallySucceeded => 2,
        Outcome::Failed | Outcome::Cancelled | Outcome::Pending => 1,
    }
}

fn bar(out: Output) -> ProgressBar {
    // Drawn on stderr, and only on a terminal (indicatif hides it elsewhere), so piped and
    // --json output stays clean.
    if out.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Polls the run at `link` (its `links.view`) until it completes; returns it.
pub async fn follow(client: &Client, link: &str, out: Output) -> Result<Run, CliError> {
    let bar = bar(out);
    let mut delay = FIRST_POLL;
    let mut last = None;
    loop {
        let run = match client.follow_run(link).await {
            Ok(view) => view.run,
            Err(e) => {
                bar.abandon();
                return Err(e.into());
            }
        };
        bar.set_length(run.counters.total.max(run.counters.processed));
        bar.set_position(run.counters.processed);
        let failed = if run.counters.failed > 0 {
            format!(", {} failed", run.counters.failed)
        } else {
            String::new()
        };
        bar.set_message(format!("{} {}{failed}", run.kind, run.status.as_str()));
        if run.status == RunStatus::Completed {
            bar.finish_and_clear();
            return Ok(run);
        }
        let moved = last != Some((run.status, run.counters));
        last = Some((run.status, run.counters));
        delay = next_delay(delay, moved);
        tokio::time::sleep(delay).await;
    }
}

/// Prints a completed run: its outcome, counters and the failures' reason codes.
pub fn report(run: &Run, out: Output) -> Result<(), CliError> {
    out.show(run, || {
        let c = run.counters;
        output::line(&format!(
            "run {} ({}) {}: {}",
            run.id,
            run.kind,
            run.status.as_str(),
            run.outcome.as_str()
        ))?;
        output::line(&format!(
            "  processed {}/{}: {} succeeded, {} failed, {} skipped",
            c.processed, c.total, c.succeeded, c.failed, c.skipped
        ))?;
        // Per-type detail, when the run's result has it (an inventory sync's).
        if let Some(types) = run.result.get("types").and_then(Value::as_object) {
            output::line("  by type:")?;
            for (name, r) in types {
                let what = match r.get("failed").and_then(Value::as_str) {
                    Some(code) => format!("failed {code}"),
                    None => format!("{} objects, {} deleted", r["objects"], r["deleted"]),
                };
                output::line(&format!("    {name}: {what}"))?;
            }
        }
        if !run.failures.is_empty() {
            output::line("  failures:")?;
            for f in &run.failures {
                output::line(&format!(
                    "    {}  {}  {}",
                    f.code,
                    f.object_ref.as_deref().unwrap_or("-"),
                    f.message
                ))?;
            }
        }
        Ok(())
    })
}

/// Follows, reports, and answers the outcome's exit code.
pub async fn watch(client: &Client, link: &str, out: Output) -> Result<u8, CliError> {
    let run = follow(client, link, out).await?;
    report(&run, out)?;
    Ok(exit_code(run.outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_while_nothing_moves_and_starts_over_when_it_does() {
        let mut d = FIRST_POLL;
        for _ in 0..20 {
            d = next_delay(d, false);
        }
        assert_eq!(d, LONGEST_POLL);
        assert!(next_delay(FIRST_POLL, false) > FIRST_POLL);
        assert_eq!(next_delay(LONGEST_POLL, true), FIRST_POLL);
    }

    #[test]
    fn the_exit_code_follows_the_outcome() {
        assert_eq!(exit_code(Outcome::Succeeded), 0);
        assert_eq!(exit_code(Outcome::PartiallySucceeded), 2);
        assert_eq!(exit_code(Outcome::Failed), 1);
        assert_eq!(exit_code(Outcome::Cancelled), 1);
    }
}
