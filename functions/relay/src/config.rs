//! Every environment variable the relay reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 2] = [TABLE_NAME, QUEUE_URL];

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub table_name: String,
    pub queue_url: String,
}

impl RelayConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
        })
    }
}
