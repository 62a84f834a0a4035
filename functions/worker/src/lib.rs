//! The worker: an SQS-triggered Lambda that executes operation runs against Microsoft Graph.
//!
//! Per message: claim the run (conditional, with a lease; a finished run is acknowledged
//! without work), execute it by type, and finish it with an honest outcome, counters and
//! reason-coded failures, which also frees a while-active identity. Failed messages are
//! reported back (`ReportBatchItemFailures`), never acknowledged silently; a long throttle
//! hands the message back with a visibility delay instead of sleeping in a billed Lambda.

mod backup;
pub mod config;
mod execute;
mod job;
mod preview;
mod restore;
pub mod retention;
mod sync;
mod verify;

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use tenantops_aws::events::Lifecycle;
use tenantops_aws::queue::MAX_VISIBILITY;
use tenantops_aws::{RunMessage, StoreError};
use tenantops_core::{Run, RunStatus, Transition};
use tracing::Instrument;

pub use job::{Deps, Report};

/// How long a claim owns a run. Longer than the function timeout, so a live worker never
/// loses its run; short enough that a crashed worker's run is re-claimed soon.
pub const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Why a message was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message is not a run message")]
    Malformed,
    #[error("run {0} does not exist")]
    UnknownRun(String),
    #[error("run {0} is leased to another worker")]
    Leased(String),
    #[error("run {run} handed back for {after:?}")]
    HandedBack { run: String, after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handles one SQS batch; returns the ids of the messages that must come back.
pub async fn handle(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        let result = process(&message, deps).instrument(span.clone()).await;
        if let Err(err) = result {
            span.in_scope(|| match &err {
                MessageError::HandedBack { .. } | MessageError::Leased(_) => {
                    tracing::info!(error = %err, "message returned to the queue");
                }
                _ => tracing::error!(error = %err, "message failed; returned to the queue"),
            });
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn process(message: &SqsMessage, deps: &Deps) -> Result<(), MessageError> {
    let body = message.body.as_deref().ok_or(MessageError::Malformed)?;
    let RunMessage { run_id } = serde_json::from_str(body).map_err(|_| MessageError::Malformed)?;
    let run = deps
        .store
        .get_run(run_id)
        .await?
        .ok_or_else(|| MessageError::UnknownRun(run_id.to_string()))?;
    let span = tracing::info_span!(
        "run",
        run_id = %run.id,
        tenant = %run.tenant_id,
        workspace = %run.workspace_id,
        r#type = %run.operation,
    );
    execute_message(run, message, deps).instrument(span).await
}

async fn execute_message(
    mut run: Run,
    message: &SqsMessage,
    deps: &Deps,
) -> Result<(), MessageError> {
    if run.status == RunStatus::Completed {
        // A redelivery of a finished run: nothing to do, and nothing to retry.
        tracing::info!("run already finished; acknowledging");
        return Ok(());
    }
    // This attempt's name on the lease: later transitions require it.
    let owner = ulid::Ulid::new().to_string();
    let claim = Transition::Claim {
        now: Utc::now(),
        lease: deps.lease,
    };
    match deps.store.transition_as(&run, Some(&owner), &claim).await {
        Ok(()) => {}
        Err(StoreError::TransitionRefused) => return Err(MessageError::Leased(run.id.to_string())),
        Err(e) => return Err(e.into()),
    }
    // The local copy follows the stored run (the condition just proved the transition legal).
    let _ = run.apply(&claim);
    if let Err(e) = deps.events.publish(Lifecycle::Started, &run).await {
        tracing::error!(error = %e, code = ?e.code, "could not publish the Started event");
    }

    let job = job::Job {
        run: &run,
        owner: &owner,
        deps,
    };
    match execute::execute(job).await {
        execute::Execution::HandBack(after) => {
            let after = after.min(MAX_VISIBILITY);
            let now = Utc::now();
            let resume_at =
                now + chrono::TimeDelta::from_std(after).unwrap_or(chrono::TimeDelta::zero());
            deps.store
                .transition_as(&run, Some(&owner), &Transition::Yield { now, resume_at })
                .await?;
            if let Some(receipt) = &message.receipt_handle
                && let Err(e) = deps.queue.hand_back(receipt, after).await
            {
                // The message still comes back, after the queue's own visibility timeout.
                tracing::warn!(error = %e, code = ?e.code, "could not set the message's visibility");
            }
            Err(MessageError::HandedBack {
                run: run.id.to_string(),
                after,
            })
        }
        execute::Execution::Done(report) => finish(run, &owner, report, deps).await,
    }
}

async fn finish(
    mut run: Run,
    owner: &str,
    report: Report,
    deps: &Deps,
) -> Result<(), MessageError> {
    let now = Utc::now();
    let mut steps = Vec::new();
    if report.counters != Default::default() {
        steps.push(Transition::Progress {
            delta: report.counters,
        });
    }
    if let Some(result) = report.result {
        steps.push(Transition::Report { result });
    }
    steps.push(Transition::Finish {
        now,
        outcome: report.outcome,
        failures: report.failures,
    });
    for step in &steps {
        match deps.store.transition_as(&run, Some(owner), step).await {
            Ok(()) => {
                let _ = run.apply(step);
            }
            Err(StoreError::TransitionRefused) => {
                // Our lease was lost (another worker re-claimed the run, or the reaper
                // finished it): theirs stands.
                tracing::warn!("run is no longer ours; acknowledging");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(
        outcome = run.outcome.as_str(),
        failures = run.failures.len(),
        "run finished"
    );
    tenantops_aws::announce_completed(&deps.events, &deps.store, &run).await;
    Ok(())
}
