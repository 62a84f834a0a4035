//! Every environment variable the reaper reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";
pub const DEAD_LETTER_QUEUE_URL: &str = "TENANTOPS_DEAD_LETTER_QUEUE_URL";
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 4] = [TABLE_NAME, QUEUE_URL, DEAD_LETTER_QUEUE_URL, EVENT_BUS_NAME];

#[derive(Debug, Clone)]
pub struct ReaperConfig {
    pub table_name: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub event_bus_name: String,
}

impl ReaperConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            dead_letter_queue_url: required_env(DEAD_LETTER_QUEUE_URL)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
        })
    }
}
