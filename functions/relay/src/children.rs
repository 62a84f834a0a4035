//! A batch's children: one run per targeted tenant, started when the stream shows the batch
//! inserted. Each start is the store's child start (`tenantops_aws::batches`), so the relay
//! may be retried at any point: a tenant whose child is recorded is passed over, and the
//! child item is written in the transaction that creates the run.

use std::collections::HashSet;

use chrono::Utc;
use futures::StreamExt;
use tenantops_aws::StoreError;
use tenantops_aws::batches::ChildStart;
use tenantops_core::batch::Batch;
use tenantops_core::identity::request_fingerprint;
use tenantops_core::{Click, Identity, Initiator, NewRun, OperationParams, Run, TenantId, Trigger};

use crate::Deps;

#[derive(Debug, thiserror::Error)]
pub enum ChildrenError {
    /// The batch's params no longer parse as its type's (a type changed under it).
    #[error("the batch's params do not parse")]
    Params(#[source] tenantops_core::ParamsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Child starts in flight at once: each is one transaction on its own items (its tenant's
/// lock, its child item) beside a read of the shared batch item, so they do not collide; 16
/// start 1,000 children well within the relay's timeout.
const STARTS_AT_ONCE: usize = 16;

/// Starts every child of `batch` not recorded yet. Returns how many it recorded (started,
/// attached or refused).
pub async fn start_children(batch: &Batch, deps: &Deps) -> Result<usize, ChildrenError> {
    if batch.cancelled_at.is_some() {
        return Ok(0);
    }
    let params = OperationParams::parse(batch.operation, Some(batch.params.clone()))
        .map_err(ChildrenError::Params)?;
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
        .map(|tenant| start_child(batch, &params, tenant, deps))
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

/// One tenant's child: a run of the batch's type with its type's identity (a unique-per-click
/// type's click is the batch, so the batch's child in a tenant is one identity).
async fn start_child(
    batch: &Batch,
    params: &OperationParams,
    tenant: TenantId,
    deps: &Deps,
) -> Result<ChildStart, StoreError> {
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
    let fingerprint = request_fingerprint(tenant, params);
    let preconditions = deps.store.child_preconditions(ws, tenant, params)?;
    deps.store
        .start_child(batch, &run, identity.lock, &fingerprint, preconditions)
        .await
}
