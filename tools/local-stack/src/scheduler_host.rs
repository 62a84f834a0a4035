//! The scheduler's EventBridge rule (`rate(1 minute)`), played locally: at each minute, the
//! same handler gets the same event shape, with that minute as its `time`.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tenantops_scheduler::{Deps, ScheduledEvent};

/// The minute after `now`, as EventBridge would stamp its tick.
fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) + TimeDelta::minutes(1)
}

/// Ticks forever. A failed tick is logged, as Lambda would record it; the next one follows.
pub async fn run(deps: &Deps) {
    loop {
        let minute = next_minute(Utc::now());
        let wait = (minute - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        match tenantops_scheduler::handle(&ScheduledEvent::at(minute), deps).await {
            Ok(report) if report.due > 0 => {
                tracing::info!(fired = report.fired, due = report.due, "scheduler tick");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "scheduler tick failed"),
        }
    }
}
