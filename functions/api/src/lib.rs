//! The tenantops HTTP API: one Lambda behind an API Gateway HTTP API (payload format 2.0),
//! with the router inside. It talks to DynamoDB and SQS only; it has no Graph dependency, so
//! "start and read surfaces never call Graph" is enforced by the compiler.

mod batch_view;
pub mod config;
mod cursor;
mod error;
mod launch;
pub mod operators;
mod problem;
mod request;
mod response;
mod restore_body;
mod router;
mod routes;
mod run_list;
mod schedule_body;
mod tenant_state;

use tenantops_aws::events::LifecycleEvents;
use tenantops_aws::{SecretVault, SnapshotStore, Store};
use tenantops_core::webhook::UrlPolicy;

pub use error::ApiError;
pub use operators::PlatformOperators;
pub use request::MAX_BODY_BYTES;
pub use router::{PUBLIC_ROUTES, ROUTES, allowed_methods, handle};

/// What the handler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// Write-only access to provider-connection secrets.
    pub secrets: SecretVault,
    /// The run lifecycle bus: a cancel that finishes a queued run publishes its `Completed`
    /// (every other finish is the worker's or the reaper's).
    pub events: LifecycleEvents,
    /// The limits the API enforces (see [`config`]).
    pub limits: Limits,
    /// Who may use the system plane (`/v1/system/...`).
    pub platform: PlatformOperators,
    /// Read-only: the snapshots of objects whose hash differs between two backup sets.
    pub snapshots: SnapshotStore,
    /// Which webhook URLs may be registered: public https only when deployed
    /// ([`UrlPolicy::PUBLIC`], which [`Deps::from_env`] always sets: no variable loosens it);
    /// a local host may allow loopback.
    pub webhook_urls: UrlPolicy,
}

/// The limits the API enforces, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A backup schedule's cadence may not fire more often than this (`schedule.too_frequent`);
    /// a drift schedule's, than this or an hour, whichever is less.
    pub min_schedule_interval_minutes: u32,
    /// Manual backups (run-now, retry) one tenant may start per window (`quota.exceeded`).
    pub manual_backup_quota: u32,
    /// The quota's window, in seconds.
    pub manual_backup_quota_window_seconds: u32,
    /// A run queued or running this long is `stuck` (the problem class).
    pub stuck_after_seconds: u32,
}

impl Limits {
    pub fn stuck_after(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.stuck_after_seconds))
    }
}

/// The template's default: a run active for an hour is stuck (the longest measured backup,
/// 20,000 objects, takes under 8 minutes).
pub const STUCK_AFTER_SECONDS_DEFAULT: u32 = 3600;

/// The template's default quota: manual backups per tenant and window.
pub const MANUAL_BACKUP_QUOTA_DEFAULT: u32 = 10;
/// The template's default quota window: an hour.
pub const MANUAL_BACKUP_QUOTA_WINDOW_SECONDS_DEFAULT: u32 = 3600;

impl Default for Limits {
    /// The template's defaults.
    fn default() -> Self {
        Limits {
            min_schedule_interval_minutes: tenantops_core::schedule::MIN_INTERVAL_MINUTES_DEFAULT,
            manual_backup_quota: MANUAL_BACKUP_QUOTA_DEFAULT,
            manual_backup_quota_window_seconds: MANUAL_BACKUP_QUOTA_WINDOW_SECONDS_DEFAULT,
            stuck_after_seconds: STUCK_AFTER_SECONDS_DEFAULT,
        }
    }
}

impl Deps {
    /// Builds the dependencies from the environment (see [`config`]).
    pub async fn from_env() -> Result<Self, config::ConfigError> {
        let cfg = config::ApiConfig::from_env()?;
        let sdk = tenantops_aws::config::load().await;
        Ok(Self {
            store: Store::from_sdk(&sdk, cfg.table_name),
            secrets: SecretVault::from_sdk(&sdk, cfg.secret_prefix),
            events: LifecycleEvents::from_sdk(&sdk, cfg.event_bus_name),
            limits: Limits {
                min_schedule_interval_minutes: cfg.min_schedule_interval_minutes,
                manual_backup_quota: cfg.manual_backup_quota,
                manual_backup_quota_window_seconds: cfg.manual_backup_quota_window_seconds,
                stuck_after_seconds: cfg.stuck_after_seconds,
            },
            platform: PlatformOperators::new(
                cfg.platform_operator_claim,
                cfg.platform_operator_value,
            ),
            snapshots: SnapshotStore::from_sdk(&sdk, cfg.snapshot_bucket),
            webhook_urls: UrlPolicy::PUBLIC,
        })
    }
}
