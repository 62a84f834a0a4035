//! What every job shares: the worker's dependencies, the claimed run a job works on
//! ([`Job`]: its progress and the tenant's credentials), what a job reports ([`Report`]) and
//! why it stops early ([`Stop`]). Jobs import this module; it imports none of them.

use std::time::Duration;

use serde_json::Value;
use tenantops_aws::events::LifecycleEvents;
use tenantops_aws::{Progressed, SecretVault, SnapshotStore, Store, StoreError, WorkQueue};
use tenantops_core::params::DEFAULT_CONNECTION_ID;
use tenantops_core::{Counters, Failure, Outcome, ReasonCode, Run};
use tenantops_graph::{Credentials, GraphClient, GraphError};

/// What the worker needs, built once per cold start.
#[derive(Debug)]
pub struct Deps {
    pub store: Store,
    pub graph: GraphClient,
    /// Read access to provider-connection secrets.
    pub secrets: SecretVault,
    /// The work queue: a long throttle hands the message back through it.
    pub queue: WorkQueue,
    pub events: LifecycleEvents,
    /// The snapshot bucket: backup payloads and manifests.
    pub snapshots: SnapshotStore,
    /// How long a claim owns a run: [`crate::LEASE`], shorter in tests that kill workers.
    pub lease: chrono::TimeDelta,
}

/// A claimed run being executed: the run, this attempt's name on its lease, and the deps.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub run: &'a Run,
    /// This attempt's name on the lease; the run's transitions require it.
    pub owner: &'a str,
    pub deps: &'a Deps,
}

impl Job<'_> {
    /// Moves the run's counters forward now (per batch of work), so the viewer shows progress.
    /// Also the run's checkpoint: if a cancel was requested, the counters stay as they were
    /// and the job stops with [`Stop::Cancelled`].
    pub async fn progress(&self, delta: Counters) -> Result<(), Stop> {
        match self
            .deps
            .store
            .progress_unless_cancelled(self.run, self.owner, delta)
            .await?
        {
            Progressed::Moved => Ok(()),
            Progressed::CancelRequested => {
                tracing::info!("cancel requested; stopping at this checkpoint");
                Err(Stop::Cancelled)
            }
        }
    }

    /// The tenant's app credentials: the connection's metadata from the table, the secret
    /// from Secrets Manager.
    pub async fn credentials(&self) -> Result<Credentials, Stop> {
        let (run, deps) = (self.run, self.deps);
        let connection_id = run
            .context
            .provider_connection_id
            .clone()
            .unwrap_or_else(|| DEFAULT_CONNECTION_ID.to_owned());
        let tenant = deps
            .store
            .get_tenant(run.workspace_id, run.tenant_id)
            .await?
            .ok_or(Stop::Fail(ReasonCode::TenantNotFound))?;
        let conn = deps
            .store
            .get_connection(run.workspace_id, run.tenant_id, &connection_id)
            .await?
            .ok_or(Stop::Fail(ReasonCode::ConnectionNotFound))?;
        let secret = deps.secrets.read(&conn.secret_name).await.map_err(|e| {
            tracing::error!(error = %e, code = ?e.code, "could not read the connection's secret");
            Stop::Fail(ReasonCode::Internal)
        })?;
        Ok(Credentials {
            tenant_id: tenant.entra_tenant_id,
            client_id: conn.client_id,
            client_secret: secret,
        })
    }
}

/// What a finished execution reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub outcome: Outcome,
    pub counters: Counters,
    pub failures: Vec<Failure>,
    pub result: Option<Value>,
}

impl Report {
    /// The run stopped at a checkpoint because a cancel was requested: its counters stay as
    /// the last checkpoint left them.
    pub fn cancelled() -> Report {
        Report {
            outcome: Outcome::Cancelled,
            counters: Counters::default(),
            failures: Vec::new(),
            result: None,
        }
    }

    /// The whole run failed for one reason.
    pub fn failed(code: ReasonCode) -> Report {
        Report {
            outcome: Outcome::Failed,
            counters: Counters::default(),
            failures: vec![Failure::of(code)],
            result: None,
        }
    }

    /// The outcome that parts succeeding and failing add up to.
    pub fn outcome_of(succeeded: u64, failed: u64) -> Outcome {
        match (succeeded, failed) {
            (_, 0) => Outcome::Succeeded,
            (0, _) => Outcome::Failed,
            _ => Outcome::PartiallySucceeded,
        }
    }
}

/// Why a part of the work stopped the whole run.
#[derive(Debug)]
pub enum Stop {
    /// Throttled for longer than a Lambda should sleep: come back after this long.
    HandBack(Duration),
    Fail(ReasonCode),
    /// A cancel was requested: finish the run `cancelled`.
    Cancelled,
}

impl From<GraphError> for Stop {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Throttled { retry_after } => Stop::HandBack(retry_after),
            other => Stop::Fail(other.reason()),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure during execution");
        Stop::Fail(ReasonCode::Internal)
    }
}
