//! Every environment variable the scheduler reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
/// The run bus: `Schedule SlotMissed` events for missed slots (webhooks).
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 2] = [TABLE_NAME, EVENT_BUS_NAME];

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub table_name: String,
    pub event_bus_name: String,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
        })
    }
}
