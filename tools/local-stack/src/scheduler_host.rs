//! The scheduler's EventBridge rule (`rate(1 minute)`), played locally: at each minute, the
//! same handler gets the same event shape, with that minute as its `time`, and is killed past
//! the function's `Timeout` from the template, as Lambda would.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tenantops_aws::events::LifecycleEvents;
use tenantops_scheduler::{Deps, ScheduledEvent};

use crate::template::{SCHEDULER_FUNCTION, Template, timeout_override};

/// Overrides the scheduler's `Timeout` locally (whole seconds).
pub const TIMEOUT_ENV: &str = "TENANTOPS_LOCAL_SCHEDULER_TIMEOUT_S";

/// The scheduler's timeout: the template's, unless [`TIMEOUT_ENV`] overrides it.
pub fn timeout() -> anyhow::Result<Duration> {
    Ok(match timeout_override(TIMEOUT_ENV)? {
        Some(t) => t,
        None => Template::embedded()?.function_timeout(SCHEDULER_FUNCTION)?,
    })
}

/// The minute after `now`, as EventBridge would stamp its tick.
fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) + TimeDelta::minutes(1)
}

/// Ticks forever, announcing missed slots on `events` as the deployed function does. A failed
/// or timed-out tick is logged, as Lambda would record it; the next one follows.
pub async fn run(deps: &Deps, events: &LifecycleEvents, timeout: Duration) {
    loop {
        let minute = next_minute(Utc::now());
        let wait = (minute - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        let event = ScheduledEvent::at(minute);
        let tick = tenantops_scheduler::handle_announcing(&event, deps, events);
        match tokio::time::timeout(timeout, tick).await {
            Ok(Ok(report)) if report.due > 0 => {
                tracing::info!(fired = report.fired, due = report.due, "scheduler tick");
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "scheduler tick failed"),
            Err(_) => tracing::error!(
                timeout_s = timeout.as_secs_f64(),
                "scheduler invocation timed out and was killed"
            ),
        }
    }
}
