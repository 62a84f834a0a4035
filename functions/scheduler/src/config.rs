//! Every environment variable the scheduler reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 1] = [TABLE_NAME];

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub table_name: String,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
        })
    }
}
