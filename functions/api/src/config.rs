//! Every environment variable the API function reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";
/// Secrets Manager name prefix for provider-connection secrets, e.g. `tenantops/dev/`.
/// The API may create and overwrite secrets under it, never read them.
pub const SECRET_PREFIX: &str = "TENANTOPS_SECRET_PREFIX";
/// The snapshot bucket, read (never written) for restore previews.
pub const SNAPSHOT_BUCKET: &str = "TENANTOPS_SNAPSHOT_BUCKET";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 4] = [TABLE_NAME, QUEUE_URL, SECRET_PREFIX, SNAPSHOT_BUCKET];

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub table_name: String,
    pub queue_url: String,
    pub secret_prefix: String,
    pub snapshot_bucket: String,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            secret_prefix: required_env(SECRET_PREFIX)?,
            snapshot_bucket: required_env(SNAPSHOT_BUCKET)?,
        })
    }
}
