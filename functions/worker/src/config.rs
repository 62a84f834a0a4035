//! Every environment variable the worker reads. The SAM template sets exactly these.

use tenantops_aws::config::{MissingEnv, required_env};

pub const TABLE_NAME: &str = "TENANTOPS_TABLE_NAME";
pub const QUEUE_URL: &str = "TENANTOPS_QUEUE_URL";
pub const EVENT_BUS_NAME: &str = "TENANTOPS_EVENT_BUS_NAME";
pub const GRAPH_BASE_URL: &str = tenantops_graph::client::GRAPH_BASE_URL;
pub const LOGIN_BASE_URL: &str = tenantops_graph::client::LOGIN_BASE_URL;
/// The snapshot bucket (Object Lock) that backups write to.
pub const SNAPSHOT_BUCKET: &str = "TENANTOPS_SNAPSHOT_BUCKET";

/// Seconds before the invocation's deadline after which a run takes no new work: it
/// finishes what is in flight, saves a checkpoint and hands itself on (optional).
pub const DEADLINE_MARGIN_S: &str = "TENANTOPS_WORKER_DEADLINE_MARGIN_S";

/// The margin when [`DEADLINE_MARGIN_S`] is not set. In-flight work after the last check is
/// at most a page of objects (a 100-object page at 8 reads at a time is a dozen rounds of
/// Graph requests, a few seconds even when paced by Intune's budget) plus the part put, the
/// checkpoint, the hand-on message and the finish of the batch's other messages: 20 s of a
/// 120 s timeout leaves room for a slow page without giving up much of the invocation.
pub const DEFAULT_DEADLINE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(20);

/// How many runs of one workspace may run at once (optional; see
/// [`DEFAULT_WORKSPACE_CONCURRENCY`]).
pub const WORKSPACE_CONCURRENCY: &str = "TENANTOPS_WORKSPACE_CONCURRENCY";

/// The limit when [`WORKSPACE_CONCURRENCY`] is not set: below the worker's reserved
/// concurrency (10), so a burst from one workspace always leaves invocations to the others,
/// while a deployment with a single workspace (the usual MSP) still backs up 8 tenants at
/// once at 02:00.
pub const DEFAULT_WORKSPACE_CONCURRENCY: u32 = 8;

/// The names above, for the tidy test that holds the template to the code.
pub const ENV_VARS: [&str; 8] = [
    TABLE_NAME,
    QUEUE_URL,
    EVENT_BUS_NAME,
    GRAPH_BASE_URL,
    LOGIN_BASE_URL,
    SNAPSHOT_BUCKET,
    DEADLINE_MARGIN_S,
    WORKSPACE_CONCURRENCY,
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Missing(#[from] MissingEnv),
    #[error("{0} must be a whole number of seconds")]
    Invalid(&'static str),
    #[error("{0} must be a whole number of at least 1")]
    InvalidLimit(&'static str),
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub table_name: String,
    pub queue_url: String,
    pub event_bus_name: String,
    pub graph: tenantops_graph::GraphConfig,
    pub snapshot_bucket: String,
    /// See [`DEADLINE_MARGIN_S`].
    pub deadline_margin: chrono::TimeDelta,
    /// See [`WORKSPACE_CONCURRENCY`].
    pub workspace_concurrency: u32,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env(TABLE_NAME)?,
            queue_url: required_env(QUEUE_URL)?,
            event_bus_name: required_env(EVENT_BUS_NAME)?,
            graph: tenantops_graph::GraphConfig::from_env(),
            snapshot_bucket: required_env(SNAPSHOT_BUCKET)?,
            deadline_margin: match std::env::var(DEADLINE_MARGIN_S) {
                Ok(v) if !v.is_empty() => v
                    .parse::<u32>()
                    .map(|s| chrono::TimeDelta::seconds(i64::from(s)))
                    .map_err(|_| ConfigError::Invalid(DEADLINE_MARGIN_S))?,
                _ => DEFAULT_DEADLINE_MARGIN,
            },
            workspace_concurrency: match std::env::var(WORKSPACE_CONCURRENCY) {
                Ok(v) if !v.is_empty() => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(ConfigError::InvalidLimit(WORKSPACE_CONCURRENCY))?,
                _ => DEFAULT_WORKSPACE_CONCURRENCY,
            },
        })
    }
}
