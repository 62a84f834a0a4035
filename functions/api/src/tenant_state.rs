//! A tenant's state as both planes show it: its connection's status (from the connection
//! and its latest check), where its onboarding is blocked, and its "attention" counts (its
//! problem runs). Read from the store here, judged here, rendered by the routes.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tenantops_aws::{ConnectionRecord, RunQuery, TenantRecord, TenantStatus};
use tenantops_core::params::DEFAULT_CONNECTION_ID;
use tenantops_core::problem::{Attention, ProblemClass};
use tenantops_core::{OperationType, Outcome, ReasonCode, Run, RunStatus, TenantId, WorkspaceId};

use crate::Deps;
use crate::error::ApiError;

/// Problem runs count toward attention for this long after they were created.
pub const ATTENTION_WINDOW: Duration = Duration::hours(24);

/// What a tenant's connection and onboarding are judged on.
#[derive(Debug)]
pub struct TenantState {
    pub conn: Option<ConnectionRecord>,
    /// The latest connection check.
    pub check: Option<Run>,
    /// The latest inventory sync that finished with data.
    pub inventory: Option<Run>,
}

/// The newest run of `operation` on the tenant (optionally only finished ones).
pub async fn latest_run(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
    operation: OperationType,
    status: Option<RunStatus>,
) -> Result<Option<Run>, ApiError> {
    let page = deps
        .store
        .list_runs(&RunQuery {
            workspace: Some(ws),
            tenant: Some(tenant),
            types: Some(vec![operation]),
            status,
            active: None,
            problem: None,
            limit: 1,
            after: None,
        })
        .await?;
    Ok(page.items.into_iter().next())
}

impl TenantState {
    pub async fn read(deps: &Deps, ws: WorkspaceId, tenant: TenantId) -> Result<Self, ApiError> {
        let (conn, check, inventory) = futures::try_join!(
            async {
                Ok::<_, ApiError>(
                    deps.store
                        .get_connection(ws, tenant, DEFAULT_CONNECTION_ID)
                        .await?,
                )
            },
            latest_run(
                deps,
                ws,
                tenant,
                OperationType::ProviderConnectionVerify,
                None
            ),
            latest_run(
                deps,
                ws,
                tenant,
                OperationType::InventorySync,
                Some(RunStatus::Completed)
            ),
        )?;
        Ok(Self {
            conn,
            check,
            inventory: inventory
                .filter(|r| matches!(r.outcome, Outcome::Succeeded | Outcome::PartiallySucceeded)),
        })
    }

    /// The latest check, if it checked the current secret (a check older than the last
    /// rotation says nothing about it).
    pub fn current_check(&self) -> Option<&Run> {
        let changed_at = self
            .conn
            .as_ref()
            .map(|c| c.rotated_at.unwrap_or(c.created_at))?;
        self.check.as_ref().filter(|r| r.created_at >= changed_at)
    }

    /// The connection's status and, when failed, the check's reason.
    pub fn connection_status(&self) -> (&'static str, Option<ReasonCode>) {
        connection_status(self.current_check())
    }

    /// Why onboarding is not complete, or `None` once it is.
    pub fn onboarding_blocker(&self, record: &TenantRecord) -> Option<ReasonCode> {
        let check = self.current_check();
        let verifying = check.is_some_and(|r| r.status.is_active());
        let verified = check.is_some_and(|r| r.outcome == Outcome::Succeeded);
        if record.status == TenantStatus::Archived {
            Some(ReasonCode::TenantArchived)
        } else if self.conn.is_none() {
            Some(ReasonCode::OnboardingConnectionMissing)
        } else if verifying {
            Some(ReasonCode::OnboardingVerificationRunning)
        } else if !verified {
            let failed_with = check
                .and_then(|r| r.failures.first())
                .map(|f| f.code)
                .filter(|c| c.blocks_onboarding());
            Some(failed_with.unwrap_or(ReasonCode::OnboardingVerificationRequired))
        } else if self.inventory.is_none() {
            Some(ReasonCode::OnboardingInventoryRequired)
        } else {
            None
        }
    }
}

/// A connection's status from its current check: unverified, verifying, verified, failed.
pub fn connection_status(check: Option<&Run>) -> (&'static str, Option<ReasonCode>) {
    match check {
        None => ("unverified", None),
        Some(r) if r.status.is_active() => ("verifying", None),
        Some(r) if r.outcome == Outcome::Succeeded => ("verified", None),
        Some(r) => ("failed", r.failures.first().map(|f| f.code)),
    }
}

/// Each tenant's attention counts in `ws` at `now`: its failed, partial and stale runs
/// created in the last [`ATTENTION_WINDOW`], and its runs stuck now, of the operation types
/// in `viewable` only (a member never counts runs their role may not see, so each count
/// matches the list its link opens). Two reads for the whole workspace (its recent problem
/// runs, and the runs active now), whatever its size.
pub async fn attention(
    deps: &Deps,
    ws: WorkspaceId,
    now: DateTime<Utc>,
    viewable: &[OperationType],
) -> Result<HashMap<TenantId, Attention>, ApiError> {
    let (problems, active) = futures::try_join!(
        deps.store
            .recent_problem_runs(ws, None, now - ATTENTION_WINDOW),
        deps.store.active_runs(Some(ws)),
    )?;
    let mut counts: HashMap<TenantId, Attention> = HashMap::new();
    for p in problems
        .iter()
        .filter(|p| viewable.contains(&p.run.operation))
    {
        let a = counts.entry(p.run.tenant_id).or_default();
        match p.run.outcome {
            Outcome::Failed => a.count(ProblemClass::Failed),
            Outcome::PartiallySucceeded => a.count(ProblemClass::Partial),
            _ => {}
        }
        if p.stale {
            a.count(ProblemClass::Stale);
        }
    }
    let stuck_after = deps.limits.stuck_after();
    for run in active.iter().filter(|r| {
        viewable.contains(&r.operation) && ProblemClass::Stuck.matches(r, now, stuck_after)
    }) {
        counts
            .entry(run.tenant_id)
            .or_default()
            .count(ProblemClass::Stuck);
    }
    Ok(counts)
}
