//! Executing a claimed run by its type.

use std::time::Duration;

use serde_json::Value;
use tenantops_core::params::DEFAULT_CONNECTION_ID;
use tenantops_core::{Counters, Failure, OperationType, Outcome, ReasonCode, Run};
use tenantops_graph::{Credentials, GraphError};

use crate::{Deps, backup, restore, sync, verify};

/// What a finished execution reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub outcome: Outcome,
    pub counters: Counters,
    pub failures: Vec<Failure>,
    pub result: Option<Value>,
}

impl Report {
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

#[derive(Debug)]
pub enum Execution {
    Done(Report),
    /// Throttled for longer than a Lambda should sleep: come back after this long.
    HandBack(Duration),
}

/// Why a part of the work stopped the whole run.
#[derive(Debug)]
pub enum Stop {
    HandBack(Duration),
    Fail(ReasonCode),
}

impl From<GraphError> for Stop {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Throttled { retry_after } => Stop::HandBack(retry_after),
            other => Stop::Fail(other.reason()),
        }
    }
}

impl From<tenantops_aws::StoreError> for Stop {
    fn from(e: tenantops_aws::StoreError) -> Self {
        tracing::error!(error = %e, "store failure during execution");
        Stop::Fail(ReasonCode::Internal)
    }
}

pub async fn execute(run: &Run, owner: &str, deps: &Deps) -> Execution {
    let result = match run.operation {
        OperationType::InventorySync => sync::inventory(run, owner, deps).await,
        OperationType::DirectoryGroupsSync => sync::groups(run, deps).await,
        OperationType::DirectoryRoleDefinitionsSync => sync::role_definitions(run, deps).await,
        OperationType::ProviderConnectionVerify => verify::check(run, deps).await,
        OperationType::BackupScheduleRunNow
        | OperationType::BackupScheduleRetry
        | OperationType::BackupScheduleScheduled => backup::backup(run, owner, deps).await,
        OperationType::RestoreExecute => restore::execute(run, owner, deps, &deps.snapshots).await,
    };
    match result {
        Ok(report) => Execution::Done(report),
        Err(Stop::HandBack(after)) => Execution::HandBack(after),
        Err(Stop::Fail(code)) => Execution::Done(Report::failed(code)),
    }
}

/// Moves the run's counters forward now (per batch of work), so the viewer shows progress.
pub async fn progress(run: &Run, owner: &str, deps: &Deps, delta: Counters) -> Result<(), Stop> {
    deps.store
        .transition_as(
            run,
            Some(owner),
            &tenantops_core::Transition::Progress { delta },
        )
        .await
        .map_err(Stop::from)
}

/// The tenant's app credentials: the connection's metadata from the table, the secret
/// from Secrets Manager.
pub async fn credentials(run: &Run, deps: &Deps) -> Result<Credentials, Stop> {
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
