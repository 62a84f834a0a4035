//! What every job shares: the worker's dependencies, the claimed run a job works on
//! ([`Job`]: its progress, its deadline and checkpoint, the tenant's credentials), what a job
//! reports ([`Report`]) and why it stops early ([`Stop`]). Jobs import this module; it
//! imports none of them.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tenantops_aws::events::LifecycleEvents;
use tenantops_aws::{Progressed, SecretVault, SnapshotStore, Store, StoreError, WorkQueue};
use tenantops_core::params::DEFAULT_CONNECTION_ID;
use tenantops_core::{Checkpoint, Counters, Failure, Outcome, ReasonCode, Run, Transition};
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
    /// How long before the invocation's deadline a run stops taking new work
    /// ([`crate::config::DEADLINE_MARGIN_S`]).
    pub deadline_margin: chrono::TimeDelta,
    /// The per-workspace limit on runs running at once, and how a run over it is deferred.
    pub fairness: Fairness,
}

/// How many runs of one workspace run at once, and how long a message of a workspace at
/// its limit is put off (see `crate::defer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fairness {
    /// [`crate::config::WORKSPACE_CONCURRENCY`].
    pub per_workspace: u32,
    /// A deferred message comes back after this many seconds, plus up to
    /// [`Fairness::defer_jitter_s`] more.
    pub defer_min_s: u32,
    /// The random part of the delay, so a burst's deferred messages do not return together.
    pub defer_jitter_s: u32,
}

impl Fairness {
    /// The deployed values with the given limit: a 10-30 s delay, long enough that a burst's
    /// deferred messages cost the workers little skimming, short next to the runs it waits
    /// for.
    pub fn limited_to(per_workspace: u32) -> Self {
        Fairness {
            per_workspace,
            defer_min_s: 10,
            defer_jitter_s: 20,
        }
    }
}

impl Default for Fairness {
    fn default() -> Self {
        Fairness::limited_to(crate::config::DEFAULT_WORKSPACE_CONCURRENCY)
    }
}

/// A claimed run being executed: the run, this attempt's name on its lease, the deps, the
/// invocation's deadline, and the counters as this attempt has moved them.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub run: &'a Run,
    /// This attempt's name on the lease; the run's transitions require it.
    pub owner: &'a str,
    pub deps: &'a Deps,
    /// When the Lambda invocation ends (its context's deadline).
    pub deadline: DateTime<Utc>,
    /// The run's counters as stored: the claim's (the checkpoint's, or zero) plus every
    /// [`Job::progress`] since. A checkpoint saves them with its state.
    pub tally: &'a Mutex<Counters>,
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
            Progressed::Moved => {}
            Progressed::CancelRequested => {
                tracing::info!("cancel requested; stopping at this checkpoint");
                return Err(Stop::Cancelled);
            }
        }
        let mut c = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        c.total += delta.total;
        c.processed += delta.processed;
        c.succeeded += delta.succeeded;
        c.failed += delta.failed;
        c.skipped += delta.skipped;
        Ok(())
    }

    /// True once the invocation is within the margin of its deadline: take no new work,
    /// finish what is in flight, then [`Job::pause`].
    pub fn should_yield(&self) -> bool {
        Utc::now() + self.deps.deadline_margin >= self.deadline
    }

    /// True once less than twice the margin is left: room for work in flight, not for a
    /// closing step that cannot yield (a backup's manifest and set), which then waits for
    /// the next invocation.
    pub fn lacks_room_to_close(&self) -> bool {
        Utc::now() + self.deps.deadline_margin * 2 >= self.deadline
    }

    /// The state the run's last checkpoint saved, when this attempt resumes one.
    pub fn resumed(&self) -> Option<&Value> {
        self.run.checkpoint.as_ref().map(|c| &c.state)
    }

    /// Saves a checkpoint under the lease: `state` (the job's own resume point) with the
    /// counters as they stand, in one write.
    pub async fn checkpoint(&self, state: Value) -> Result<(), Stop> {
        let counters = *self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        // Milliseconds, as stored: the next claim restates the saved time it read.
        let saved_at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let checkpoint = Checkpoint {
            counters,
            state,
            saved_at,
        };
        self.deps
            .store
            .transition_as(
                self.run,
                Some(self.owner),
                &Transition::Checkpoint { checkpoint },
            )
            .await
            .map_err(Stop::from)
    }

    /// Saves a checkpoint and stops so that the run continues in a new invocation.
    pub async fn pause(&self, state: Value) -> Stop {
        match self.checkpoint(state).await {
            Ok(()) => Stop::Continue,
            Err(stop) => stop,
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
        let secret = deps
            .secrets
            .read(&conn.secret_name, conn.secret_version_id.as_deref())
            .await
            .map_err(|e| {
            tracing::error!(error = %e, code = ?e.code, "could not read the connection's secret");
            Stop::Fail(ReasonCode::Internal)
        })?;
        Ok(Credentials {
            tenant_id: tenant.entra_tenant_id,
            client_id: conn.client_id,
            client_secret: secret,
            secret_version: conn.version,
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
    /// The invocation's deadline is near and a checkpoint is saved: continue the run in a
    /// new invocation (a new message; not a failure, so it costs the message no receive).
    Continue,
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
