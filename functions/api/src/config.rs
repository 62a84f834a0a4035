//! Every environment variable the API function reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
/// Secrets Manager name prefix for provider-connection secrets, e.g. `tenantops/dev/`.
/// The API may create and overwrite secrets under it, never read them.
pub const SECRET_PREFIX: &str = "TENANTOPS_SECRET_PREFIX";
/// The run lifecycle event bus: a cancelled queued run's `Completed` event.
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";
/// The shortest interval between two slots of a backup schedule, in whole minutes (1 or
/// more); a cadence firing more often is refused with `schedule.too_frequent`. A drift
/// schedule's minimum is this but at most 60 (`ScheduleKind::min_interval`).
pub const MIN_SCHEDULE_INTERVAL_MINUTES: &str = "TENANTOPS_MIN_SCHEDULE_INTERVAL_MINUTES";

/// How many manual backups (`backup_schedule.run_now` and `backup_schedule.retry`) one
/// tenant may start per quota window (1 or more); past it, 429 `quota.exceeded`.
pub const MANUAL_BACKUP_QUOTA: &str = "TENANTOPS_MANUAL_BACKUP_QUOTA";
/// The quota window's length in seconds (1 or more); windows are fixed, aligned to the epoch.
pub const MANUAL_BACKUP_QUOTA_WINDOW_SECONDS: &str = "TENANTOPS_MANUAL_BACKUP_QUOTA_WINDOW_SECONDS";

/// How long a run may stay queued or running before the problem class `stuck` counts it,
/// in seconds (1 or more).
pub const STUCK_AFTER_SECONDS: &str = "TENANTOPS_STUCK_AFTER_SECONDS";
/// The JWT claim that names platform operators (e.g. `cognito:groups`, `roles`).
pub const PLATFORM_OPERATOR_CLAIM: &str = "TENANTOPS_PLATFORM_OPERATOR_CLAIM";
/// The value of that claim that makes its bearer a platform operator; empty: nobody is.
pub const PLATFORM_OPERATOR_VALUE: &str = "TENANTOPS_PLATFORM_OPERATOR_VALUE";

/// The snapshot bucket, read (never written) for the diff of two backup sets.
pub const SNAPSHOT_BUCKET: &str = "TENANTOPS_SNAPSHOT_BUCKET";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 10] = [
    TABLE_NAME,
    SECRET_PREFIX,
    EVENT_BUS_NAME,
    MIN_SCHEDULE_INTERVAL_MINUTES,
    MANUAL_BACKUP_QUOTA,
    MANUAL_BACKUP_QUOTA_WINDOW_SECONDS,
    STUCK_AFTER_SECONDS,
    PLATFORM_OPERATOR_CLAIM,
    PLATFORM_OPERATOR_VALUE,
    SNAPSHOT_BUCKET,
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Missing(#[from] MissingEnv),
    #[error("environment variable {name} must be a whole number from 1, not `{value}`")]
    NotAPositiveNumber { name: &'static str, value: String },
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub table_name: String,
    pub secret_prefix: String,
    pub event_bus_name: String,
    pub min_schedule_interval_minutes: u32,
    pub manual_backup_quota: u32,
    pub manual_backup_quota_window_seconds: u32,
    pub stuck_after_seconds: u32,
    pub platform_operator_claim: String,
    /// Empty when the deployment names no platform operators.
    pub platform_operator_value: String,
    pub snapshot_bucket: String,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            secret_prefix: required_env(SECRET_PREFIX)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
            min_schedule_interval_minutes: positive(MIN_SCHEDULE_INTERVAL_MINUTES)?,
            manual_backup_quota: positive(MANUAL_BACKUP_QUOTA)?,
            manual_backup_quota_window_seconds: positive(MANUAL_BACKUP_QUOTA_WINDOW_SECONDS)?,
            stuck_after_seconds: positive(STUCK_AFTER_SECONDS)?,
            platform_operator_claim: required_env(PLATFORM_OPERATOR_CLAIM)?,
            // Set by the template, possibly to the empty string (no operators).
            platform_operator_value: std::env::var(PLATFORM_OPERATOR_VALUE)
                .map_err(|_| MissingEnv(PLATFORM_OPERATOR_VALUE))?,
            snapshot_bucket: required_env(SNAPSHOT_BUCKET)?,
        })
    }
}

/// A required variable holding a whole number from 1.
fn positive(name: &'static str) -> Result<u32, ConfigError> {
    let value = required_env(name)?;
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(ConfigError::NotAPositiveNumber { name, value })
}
