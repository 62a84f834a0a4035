//! A batch's children: one run per targeted tenant, started when the stream shows the batch
//! inserted. Each start is the store's child start (`tenantops_aws::batches`), so the relay
//! may be retried at any point: a tenant whose child is recorded is passed over, and the
//! child item is written in the transaction that creates the run.
//!
//! A restore batch (`tenantops_core::batch::needs_confirmation`) starts one restore per tenant,
//! previewed: the baseline set restored into the tenant, confirmed by the batch's token. Its
//! confirmation inserts a second batch, whose children execute those restores.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use futures::StreamExt;
use tenantops_aws::batches::{BaselineRestore, ChildStart};
use tenantops_aws::restores::{ExecuteConditions, ExecutePrecondition, RestoreRecord};
use tenantops_aws::{Precondition, StoreError};
use tenantops_core::batch::{self, Batch, Child, ChildOrigin};
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::RestoreExecuteParams;
use tenantops_core::{
    Click, Identity, Initiator, NewRun, OperationParams, OperationType, ReasonCode, RestoreId, Run,
    TenantId, Trigger, UserId,
};

use crate::Deps;

#[derive(Debug, thiserror::Error)]
pub enum ChildrenError {
    /// The batch's params no longer parse as its type's (a type changed under it).
    #[error("the batch's params do not parse")]
    Params(#[source] tenantops_core::ParamsError),
    /// A restore batch's params are not a baseline restore.
    #[error("the restore batch's params do not parse")]
    Baseline(#[source] serde_json::Error),
    /// A restore batch without its creator or token, or an execution without its restore
    /// batch: not a batch the API writes.
    #[error("the restore batch is incomplete: {0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Child starts in flight at once: each is one transaction on its own items (its tenant's
/// lock, its child item) beside a read of the shared batch item, so they do not collide; 16
/// start 1,000 children well within the relay's timeout.
const STARTS_AT_ONCE: usize = 16;

/// What each tenant's child is.
enum Children {
    /// A run of the batch's type and params.
    Runs(OperationParams),
    /// A restore of the baseline into the tenant, previewed, by the batch's creator.
    Previews {
        baseline: BaselineRestore,
        user: UserId,
        token_hash: String,
    },
    /// The execution of the tenant's restore (its restore batch's child), by that batch's
    /// token.
    Executions {
        restores: HashMap<TenantId, RestoreId>,
        user: UserId,
        token_hash: String,
    },
}

impl Children {
    async fn of(batch: &Batch, deps: &Deps) -> Result<Children, ChildrenError> {
        let user = match &batch.created_by {
            Initiator::User(user) => Some(user.clone()),
            Initiator::Scheduler => None,
        };
        let incomplete = ChildrenError::Incomplete;
        if batch::needs_confirmation(batch.operation) {
            return Ok(Children::Previews {
                baseline: serde_json::from_value(batch.params.clone())
                    .map_err(ChildrenError::Baseline)?,
                user: user.ok_or(incomplete("no creator"))?,
                token_hash: batch.token_hash.clone().ok_or(incomplete("no token"))?,
            });
        }
        if batch.operation == OperationType::RestoreExecute {
            let of = batch.execute_of.ok_or(incomplete("no restore batch"))?;
            let previews = deps
                .store
                .get_batch(batch.workspace_id, of)
                .await?
                .ok_or(incomplete("its restore batch is missing"))?;
            let restores = deps
                .store
                .batch_children(of)
                .await?
                .into_iter()
                .filter_map(|c| Some((c.tenant_id, c.restore_id?)))
                .collect();
            return Ok(Children::Executions {
                restores,
                user: user.ok_or(incomplete("no creator"))?,
                token_hash: previews.token_hash.ok_or(incomplete("no token"))?,
            });
        }
        OperationParams::parse(batch.operation, Some(batch.params.clone()))
            .map(Children::Runs)
            .map_err(ChildrenError::Params)
    }

    async fn start(
        &self,
        batch: &Batch,
        tenant: TenantId,
        deps: &Deps,
    ) -> Result<ChildStart, StoreError> {
        match self {
            Children::Runs(params) => {
                let pre = deps
                    .store
                    .child_preconditions(batch.workspace_id, tenant, params)?;
                start_child(batch, params, tenant, pre, deps).await
            }
            Children::Previews {
                baseline,
                user,
                token_hash,
            } => start_preview(batch, baseline, user, token_hash, tenant, deps).await,
            Children::Executions {
                restores,
                user,
                token_hash,
            } => match restores.get(&tenant) {
                Some(restore) => {
                    start_execution(batch, *restore, user, token_hash, tenant, deps).await
                }
                None => refuse(batch, tenant, ReasonCode::RestoreNotFound, deps).await,
            },
        }
    }
}

/// Starts every child of `batch` not recorded yet. Returns how many it recorded (started,
/// attached or refused).
pub async fn start_children(batch: &Batch, deps: &Deps) -> Result<usize, ChildrenError> {
    if batch.cancelled_at.is_some() {
        return Ok(0);
    }
    let children = Children::of(batch, deps).await?;
    let recorded: HashSet<TenantId> = deps
        .store
        .batch_children(batch.id)
        .await?
        .into_iter()
        .map(|c| c.tenant_id)
        .collect();
    let todo: Vec<TenantId> = batch
        .tenants
        .iter()
        .filter(|t| !recorded.contains(t))
        .copied()
        .collect();
    let results: Vec<Result<ChildStart, StoreError>> = futures::stream::iter(todo)
        .map(|tenant| children.start(batch, tenant, deps))
        .buffer_unordered(STARTS_AT_ONCE)
        .collect()
        .await;
    let mut count = 0;
    for result in results {
        if let ChildStart::Recorded(_) = result? {
            count += 1;
        }
    }
    tracing::info!(batch_id = %batch.id, children = count, "batch children started");
    Ok(count)
}

/// One tenant's child: a run of `params` with its type's identity (a unique-per-click type's
/// click is the batch, so the batch's child in a tenant is one identity), started if
/// `preconditions` hold (each refused as its reason).
async fn start_child(
    batch: &Batch,
    params: &OperationParams,
    tenant: TenantId,
    preconditions: Vec<(Precondition, ReasonCode)>,
    deps: &Deps,
) -> Result<ChildStart, StoreError> {
    let (run, lock) = child_run(batch, params, tenant);
    let fingerprint = request_fingerprint(tenant, params);
    deps.store
        .start_child(batch, &run, lock, &fingerprint, preconditions)
        .await
}

fn child_run(
    batch: &Batch,
    params: &OperationParams,
    tenant: TenantId,
) -> (Run, tenantops_core::LockKind) {
    let ws = batch.workspace_id;
    let identity = Identity::derive(ws, tenant, params, &Click::Nonce(batch.id.ulid()));
    let trigger = match batch.created_by {
        Initiator::User(_) => Trigger::Batch,
        Initiator::Scheduler => Trigger::Schedule,
    };
    let mut run = Run::queued_with_scope(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params,
            identity: &identity,
            initiator: batch.created_by.clone(),
            trigger,
        },
        batch.scope.as_deref(),
        Utc::now(),
    );
    run.context.batch_id = Some(batch.id);
    (run, identity.lock)
}

/// A restore of the baseline into `tenant`, previewing, created with its preview run (the
/// restore route's start, with the batch's token and creator).
async fn start_preview(
    batch: &Batch,
    baseline: &BaselineRestore,
    user: &UserId,
    token_hash: &str,
    tenant: TenantId,
    deps: &Deps,
) -> Result<ChildStart, StoreError> {
    let now = Utc::now();
    let mut record = RestoreRecord::previewing(
        batch.workspace_id,
        tenant,
        baseline.backup_set_id,
        user.clone(),
        token_hash.to_owned(),
        now,
    );
    record.source_tenant_id =
        (baseline.source_tenant_id != tenant).then_some(baseline.source_tenant_id);
    record.selection = baseline.items.clone();
    record.mapping = baseline.mapping.clone();
    let params = record.preview_params();
    let (run, lock) = child_run(batch, &params, tenant);
    record.preview_run_id = Some(run.id);
    // A fresh restore id cannot exist.
    let mut pre = vec![(deps.store.new_restore(&record)?, ReasonCode::Internal)];
    pre.extend(source_checks(
        &record,
        user,
        "restore.preview_started",
        run.id,
        now,
        deps,
    )?);
    let fingerprint = request_fingerprint(tenant, &params);
    deps.store
        .start_child(batch, &run, lock, &fingerprint, pre)
        .await
}

/// The execution of `restore` (the tenant's child of the confirmed restore batch): the
/// restore route's execute start, its conditions held to the batch's token, each refusal
/// recorded with why.
async fn start_execution(
    batch: &Batch,
    restore: RestoreId,
    user: &UserId,
    token_hash: &str,
    tenant: TenantId,
    deps: &Deps,
) -> Result<ChildStart, StoreError> {
    let ws = batch.workspace_id;
    let Some(record) = deps.store.get_restore(ws, tenant, restore).await? else {
        return refuse(batch, tenant, ReasonCode::RestoreNotFound, deps).await;
    };
    let params = OperationParams::RestoreExecute(RestoreExecuteParams {
        restore_id: restore.ulid(),
    });
    let (run, lock) = child_run(batch, &params, tenant);
    let now = Utc::now();
    let checks = deps.store.execute_preconditions(&ExecuteConditions {
        workspace: ws,
        tenant,
        restore,
        token_hash,
        run: run.id,
        inventory_version: (record.status != tenantops_aws::restores::RestoreStatus::Executing)
            .then_some(record.inventory_version),
        high_risk: record.high_risk_items > 0,
        now,
    })?;
    let mut pre: Vec<(Precondition, ReasonCode)> = checks
        .into_iter()
        .map(|(kind, check)| {
            let why = match kind {
                ExecutePrecondition::Restore => record.why_not_executable(token_hash, now),
                ExecutePrecondition::InventoryStamp => ReasonCode::RestoreInventoryChanged,
                ExecutePrecondition::HighRiskSetting => ReasonCode::RestoreHighRiskDisabled,
            };
            (check, why)
        })
        .collect();
    pre.extend(source_checks(
        &record,
        user,
        "restore.execute_started",
        run.id,
        now,
        deps,
    )?);
    let fingerprint = request_fingerprint(tenant, &params);
    deps.store
        .start_child(batch, &run, lock, &fingerprint, pre)
        .await
}

/// A restore into another tenant's checks of its source (active, and `action` in its audit
/// log), each refused as its reason; none for a restore in place.
fn source_checks(
    record: &RestoreRecord,
    user: &UserId,
    action: &str,
    run: tenantops_core::RunId,
    now: chrono::DateTime<Utc>,
    deps: &Deps,
) -> Result<Vec<(Precondition, ReasonCode)>, StoreError> {
    let Some(source) = record.source_tenant_id else {
        return Ok(Vec::new());
    };
    let [active, audit] =
        deps.store
            .source_checks(record, source, user.as_str(), action, run, now)?;
    Ok(vec![
        (active, ReasonCode::TenantArchived),
        (audit, ReasonCode::Internal),
    ])
}

async fn refuse(
    batch: &Batch,
    tenant: TenantId,
    reason: ReasonCode,
    deps: &Deps,
) -> Result<ChildStart, StoreError> {
    let child = Child {
        tenant_id: tenant,
        origin: ChildOrigin::Refused,
        run_id: None,
        reason: Some(reason),
        restore_id: None,
    };
    deps.store.record_child(batch.id, child).await
}
