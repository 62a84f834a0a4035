//! Every environment variable the notifier reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};
use tenantops_core::webhook::RetrySchedule;

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
/// The webhook queue: events from the bus's rule, and the notifier's own delivery messages.
pub const QUEUE_URL: &str = "TENANTOPS_WEBHOOK_QUEUE_URL";
/// Where a delivery that failed for its whole retry window is described.
pub const DEAD_LETTER_QUEUE_URL: &str = "TENANTOPS_WEBHOOK_DEAD_LETTER_QUEUE_URL";
/// The wait after a first failed attempt, in seconds; each later wait doubles it.
pub const RETRY_FIRST_DELAY_SECONDS: &str = "TENANTOPS_WEBHOOK_RETRY_FIRST_DELAY_SECONDS";
/// The longest wait between two attempts, in seconds.
pub const RETRY_MAX_DELAY_SECONDS: &str = "TENANTOPS_WEBHOOK_RETRY_MAX_DELAY_SECONDS";
/// No attempt is made this many seconds after the first: the delivery has failed.
pub const RETRY_WINDOW_SECONDS: &str = "TENANTOPS_WEBHOOK_RETRY_WINDOW_SECONDS";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 6] = [
    TABLE_NAME,
    QUEUE_URL,
    DEAD_LETTER_QUEUE_URL,
    RETRY_FIRST_DELAY_SECONDS,
    RETRY_MAX_DELAY_SECONDS,
    RETRY_WINDOW_SECONDS,
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Missing(#[from] MissingEnv),
    #[error("environment variable {name} must be a whole number from 1, not `{value}`")]
    NotAPositiveNumber { name: &'static str, value: String },
}

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub table_name: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub retries: RetrySchedule,
}

impl NotifierConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            dead_letter_queue_url: required_env(DEAD_LETTER_QUEUE_URL)?,
            retries: RetrySchedule {
                first_delay_seconds: positive(RETRY_FIRST_DELAY_SECONDS)?,
                max_delay_seconds: positive(RETRY_MAX_DELAY_SECONDS)?,
                window_seconds: positive(RETRY_WINDOW_SECONDS)?,
            },
        })
    }
}

fn positive(name: &'static str) -> Result<u32, ConfigError> {
    let value = required_env(name)?;
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(ConfigError::NotAPositiveNumber { name, value })
}
