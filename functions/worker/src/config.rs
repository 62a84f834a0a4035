//! Every environment variable the worker reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";
pub const GRAPH_BASE_URL: &str = tenantops_graph::client::GRAPH_BASE_URL;
pub const LOGIN_BASE_URL: &str = tenantops_graph::client::LOGIN_BASE_URL;
/// The snapshot bucket (Object Lock) that backups write to.
pub const SNAPSHOT_BUCKET: &str = "TENANTOPS_SNAPSHOT_BUCKET";

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 6] = [
    TABLE_NAME,
    QUEUE_URL,
    EVENT_BUS_NAME,
    GRAPH_BASE_URL,
    LOGIN_BASE_URL,
    SNAPSHOT_BUCKET,
];

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub table_name: String,
    pub queue_url: String,
    pub event_bus_name: String,
    pub graph: tenantops_graph::GraphConfig,
    pub snapshot_bucket: String,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
            graph: tenantops_graph::GraphConfig::from_env(),
            snapshot_bucket: required_env(SNAPSHOT_BUCKET)?,
        })
    }
}
