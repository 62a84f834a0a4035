//! Every environment variable the reaper reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};
use tenantops_aws::reaping::Thresholds;

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";
pub const DEAD_LETTER_QUEUE_URL: &str = "TENANTOPS_DEAD_LETTER_QUEUE_URL";
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";
/// Seconds a queued run may wait after its latest dispatch before the reaper looks at it
/// (900 when unset). Keep it well above a minute in AWS: SQS's message counts lag by that.
pub const DISPATCH_DEADLINE_SECONDS: &str = "TENANTOPS_REAPER_DISPATCH_DEADLINE_SECONDS";
/// Seconds a running run may sit past its lease or resume time before the reaper looks at
/// it (1200 when unset); longer than the work queue's visibility timeout.
pub const STALE_GRACE_SECONDS: &str = "TENANTOPS_REAPER_STALE_GRACE_SECONDS";
/// How many times the reaper dispatches a run again before it fails it `run.stale` (2 when
/// unset).
pub const MAX_REDISPATCHES: &str = "TENANTOPS_REAPER_MAX_REDISPATCHES";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 7] = [
    TABLE_NAME,
    QUEUE_URL,
    DEAD_LETTER_QUEUE_URL,
    EVENT_BUS_NAME,
    DISPATCH_DEADLINE_SECONDS,
    STALE_GRACE_SECONDS,
    MAX_REDISPATCHES,
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Missing(#[from] MissingEnv),
    #[error("environment variable {name} must be a whole number, not `{value}`")]
    NotANumber { name: &'static str, value: String },
}

#[derive(Debug, Clone)]
pub struct ReaperConfig {
    pub table_name: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub event_bus_name: String,
    pub thresholds: Thresholds,
}

impl ReaperConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Thresholds::default();
        let seconds = |name, default: chrono::Duration| {
            Ok::<_, ConfigError>(
                number(name)?
                    .map(|s| chrono::Duration::seconds(i64::from(s)))
                    .unwrap_or(default),
            )
        };
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            dead_letter_queue_url: required_env(DEAD_LETTER_QUEUE_URL)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
            thresholds: Thresholds {
                dispatch_deadline: seconds(DISPATCH_DEADLINE_SECONDS, defaults.dispatch_deadline)?,
                stale_grace: seconds(STALE_GRACE_SECONDS, defaults.stale_grace)?,
                max_redispatches: number(MAX_REDISPATCHES)?.unwrap_or(defaults.max_redispatches),
            },
        })
    }
}

/// An optional variable holding a whole number; `None` when unset or empty.
fn number(name: &'static str) -> Result<Option<u32>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ConfigError::NotANumber { name, value }),
        _ => Ok(None),
    }
}
