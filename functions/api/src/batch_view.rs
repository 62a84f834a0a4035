//! What a batch looks like to clients: the batch (never its token's hash), its status and
//! counts read from its children's runs, each child, the failed tenants with why, and links.

use serde::Serialize;
use serde_json::Value;
use tenantops_aws::batches::ChildRun;
use tenantops_core::batch::{self, Batch, BatchStatus, Child, ChildOrigin, ChildState, Progress};
use tenantops_core::{Outcome, RunStatus, TenantId, links};

use crate::Deps;
use crate::error::ApiError;

pub(crate) async fn children_of(
    deps: &Deps,
    batch: &Batch,
) -> Result<(Vec<Child>, Vec<ChildRun>), ApiError> {
    let children = deps.store.batch_children(batch.id).await?;
    let ids: Vec<_> = children.iter().filter_map(|c| c.run_id).collect();
    let runs = deps.store.child_runs(&ids).await?;
    Ok((children, runs))
}

#[derive(Debug, Serialize)]
pub(crate) struct BatchView {
    batch: BatchBody,
    children: Vec<ChildView>,
    /// The tenants whose child failed or was refused, with why.
    failed: Vec<FailedTenant>,
    links: BatchLinks,
}

#[derive(Debug, Serialize)]
struct BatchBody {
    /// The batch as stored, less its token's hash.
    #[serde(flatten)]
    batch: Value,
    status: BatchStatus,
    progress: Progress,
}

#[derive(Debug, Serialize)]
struct ChildView {
    tenant_id: TenantId,
    origin: ChildOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<tenantops_core::RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    view: Option<String>,
    /// A restore batch's child: its restore (the preview's plan, then its execution).
    #[serde(skip_serializing_if = "Option::is_none")]
    restore: Option<String>,
}

/// The tenants whose child failed or was refused, with why (a refused start's reason, or the
/// failed run's first failure code).
pub(crate) fn failed_of(children: &[Child], runs: &[ChildRun]) -> Vec<FailedTenant> {
    children
        .iter()
        .filter_map(|child| {
            let run = child.run_id.and_then(|id| runs.iter().find(|r| r.id == id));
            let failed_run = run.filter(|r| r.outcome == Outcome::Failed);
            if child.origin != ChildOrigin::Refused && failed_run.is_none() {
                return None;
            }
            let reason = child
                .reason
                .map(|c| c.as_str().to_owned())
                .or_else(|| failed_run.and_then(|r| r.finish_code.clone()))
                .unwrap_or_else(|| tenantops_core::ReasonCode::Internal.as_str().to_owned());
            Some(FailedTenant {
                tenant_id: child.tenant_id,
                run_id: child.run_id,
                reason,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub(crate) struct FailedTenant {
    pub(crate) tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<tenantops_core::RunId>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct BatchLinks {
    view: String,
    cancel: String,
    retry: String,
    runs: String,
    /// A restore batch not confirmed yet: where its token executes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    execute: Option<String>,
    /// A confirmed restore batch: the batch of its executions.
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<String>,
    /// An execution batch: the restore batch it confirms.
    #[serde(skip_serializing_if = "Option::is_none")]
    execute_of: Option<String>,
}

pub(crate) fn view_of(batch: &Batch, children: &[Child], runs: &[ChildRun]) -> BatchView {
    let run_of = |id| runs.iter().find(|r| r.id == id);
    let mut states = Vec::with_capacity(children.len());
    let mut shown = Vec::with_capacity(children.len());
    for child in children {
        let run = child.run_id.and_then(run_of);
        states.push(run.map(|r| ChildState {
            status: r.status,
            outcome: r.outcome,
        }));
        let reason = match (child.reason, run) {
            (Some(code), _) => Some(code.as_str().to_owned()),
            (None, Some(r)) if r.outcome == Outcome::Failed => r.finish_code.clone(),
            _ => None,
        };
        shown.push(ChildView {
            tenant_id: child.tenant_id,
            origin: child.origin,
            run_id: child.run_id,
            status: run.map(|r| r.status),
            outcome: run.map(|r| r.outcome),
            reason,
            view: child.run_id.map(links::view),
            restore: child
                .restore_id
                .map(|r| links::restore(batch.workspace_id, child.tenant_id, r)),
        });
    }
    let progress = Progress::of(batch.tenants.len(), &states);
    let mut shown_batch = serde_json::to_value(batch).unwrap_or_default();
    if let Some(b) = shown_batch.as_object_mut() {
        b.remove("token_hash");
    }
    let ws = batch.workspace_id;
    let confirmable = batch::needs_confirmation(batch.operation);
    BatchView {
        batch: BatchBody {
            batch: shown_batch,
            status: batch.status(&progress),
            progress,
        },
        children: shown,
        failed: failed_of(children, runs),
        links: BatchLinks {
            view: links::batch(batch.workspace_id, batch.id),
            cancel: links::batch_cancel(batch.workspace_id, batch.id),
            retry: links::batch_retry(batch.workspace_id, batch.id),
            runs: links::collection(batch.workspace_id, None),
            execute: (confirmable && batch.execution_id.is_none())
                .then(|| links::batch_execute(ws, batch.id)),
            execution: batch.execution_id.map(|id| links::batch(ws, id)),
            execute_of: batch.execute_of.map(|id| links::batch(ws, id)),
        },
    }
}
