//! The worker: an SQS-triggered Lambda that executes operation runs against Microsoft Graph.
//!
//! Per message: claim the run (conditional, with a lease; a finished run is acknowledged
//! without work), execute it by type, and finish it with an honest outcome, counters and
//! reason-coded failures, which also frees a while-active identity. Failed messages are
//! reported back (`ReportBatchItemFailures`), never acknowledged silently; a long throttle
//! hands the message back with a visibility delay instead of sleeping in a billed Lambda.
//!
//! Every run knows the invocation's deadline. A run that reaches the margin before it saves a
//! checkpoint and is handed on: a new message for it, and the current one acknowledged, so
//! a long run never uses up its message's receives. A batch's messages are worked
//! concurrently (see [`handle`]).

mod backup;
mod capture;
pub mod config;
mod drift;
mod execute;
mod job;
mod listing;
mod preview;
mod preview_cross;
mod restore;
mod restore_inplace;
mod restore_write;
pub mod retention;
mod sync;
mod verify;

use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use tenantops_aws::events::Lifecycle;
use tenantops_aws::queue::MAX_VISIBILITY;
use tenantops_aws::slots::SlotClaim;
use tenantops_aws::{RunMessage, StoreError};
use tenantops_core::{Run, RunStatus, Transition};
use tracing::Instrument;

pub use job::{Deps, Fairness, Report};

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
    #[error("run {0} checkpointed but its continuation message could not be sent")]
    NotHandedOn(String, #[source] tenantops_aws::DispatchError),
    #[error("run {0} could not be deferred: its message could not be sent again")]
    NotDeferred(String, #[source] tenantops_aws::DispatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handles one SQS batch before `deadline` (the invocation's); returns the ids of the
/// messages that must come back.
///
/// The batch's messages are worked concurrently, not one after another: each run gets the
/// whole invocation and checkpoints at the margin, so a long run never leaves its batch
/// mates unstarted at the timeout (each would lose one of its receives, and wait a
/// visibility timeout). Giving unstarted messages back is no alternative: SQS counts a
/// receive whether or not the message was worked. Runs of different tenants draw on
/// different Graph budgets, so concurrency here does not slow each other's Graph calls.
pub async fn handle(event: SqsEvent, deadline: DateTime<Utc>, deps: &Deps) -> SqsBatchResponse {
    let work = event.records.iter().map(|message| async move {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        let result = process(message, deadline, deps)
            .instrument(span.clone())
            .await;
        (id, span, result)
    });
    let mut response = SqsBatchResponse::default();
    for (id, span, result) in futures::future::join_all(work).await {
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

async fn process(
    message: &SqsMessage,
    deadline: DateTime<Utc>,
    deps: &Deps,
) -> Result<(), MessageError> {
    let body = message.body.as_deref().ok_or(MessageError::Malformed)?;
    let msg: RunMessage = serde_json::from_str(body).map_err(|_| MessageError::Malformed)?;
    let dispatched = deps
        .store
        .get_dispatched(msg.run_id)
        .await?
        .ok_or_else(|| MessageError::UnknownRun(msg.run_id.to_string()))?;
    let superseded = dispatched.supersedes(&msg);
    let run = dispatched.run;
    let span = tracing::info_span!(
        "run",
        run_id = %run.id,
        tenant = %run.tenant_id,
        workspace = %run.workspace_id,
        r#type = %run.operation,
    );
    if superseded {
        // The reaper dispatched the run again since this message was sent: the later message
        // stands, this one must not start the run (backlog is not loss, nor double work).
        span.in_scope(|| tracing::info!("superseded by a later dispatch; acknowledging"));
        return Ok(());
    }
    execute_message(run, msg.dispatch, message, deadline, deps)
        .instrument(span)
        .await
}

async fn execute_message(
    run: Run,
    dispatch: u32,
    message: &SqsMessage,
    deadline: DateTime<Utc>,
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
    // Only a message of the run's current dispatch generation may claim it, and only with
    // one of its workspace's slots.
    let slot = match deps
        .store
        .claim_with_slot(&run, &owner, &claim, dispatch, deps.fairness.per_workspace)
        .await
    {
        Ok(SlotClaim::Claimed(slot)) => slot,
        Ok(SlotClaim::WorkspaceFull) => return defer(&run, dispatch, deps).await,
        Err(StoreError::TransitionRefused) => return Err(MessageError::Leased(run.id.to_string())),
        Err(e) => return Err(e.into()),
    };
    let (run_id, workspace) = (run.id, run.workspace_id);
    let result = execute_claimed(run, &owner, &claim, dispatch, message, deadline, deps).await;
    // The run no longer holds this attempt's lease once it finished or yielded (a hand-on
    // whose send failed yielded too). Any other error leaves the run's lease, and so the
    // slot, to expire: freeing the slot early could let one run too many start.
    if matches!(
        result,
        Ok(()) | Err(MessageError::HandedBack { .. } | MessageError::NotHandedOn(..))
    ) && let Err(e) = deps
        .store
        .release_slot(workspace, run_id, &owner, slot)
        .await
    {
        // The slot is freed when the lease it carries expires.
        tracing::warn!(error = %e, slot, "could not release the workspace slot");
    }
    result
}

/// Puts off a run whose workspace is at its limit: the same message (same dispatch
/// generation) again, delayed, and this one acknowledged, so a deferral costs no receive and
/// the run stays queued (or yielded) as it was. Other workspaces' messages go on being
/// claimed meanwhile.
async fn defer(run: &Run, dispatch: u32, deps: &Deps) -> Result<(), MessageError> {
    let f = deps.fairness;
    let jitter =
        u32::try_from(ulid::Ulid::new().random() % u128::from(f.defer_jitter_s + 1)).unwrap_or(0);
    let delay_s = f.defer_min_s + jitter;
    deps.queue
        .dispatcher()
        .send_delayed(
            RunMessage {
                run_id: run.id,
                dispatch,
            },
            delay_s,
        )
        .await
        .map_err(|e| MessageError::NotDeferred(run.id.to_string(), e))?;
    tracing::info!(delay_s, "workspace at its concurrency limit; run deferred");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn execute_claimed(
    mut run: Run,
    owner: &str,
    claim: &Transition,
    dispatch: u32,
    message: &SqsMessage,
    deadline: DateTime<Utc>,
    deps: &Deps,
) -> Result<(), MessageError> {
    // The local copy follows the stored run (the condition just proved the transition legal).
    let _ = run.apply(claim);
    if run.checkpoint.is_some() {
        tracing::info!(counters = ?run.counters, "resuming the run from its checkpoint");
    } else if let Err(e) = deps.events.publish(Lifecycle::Started, &run).await {
        tracing::error!(error = %e, code = ?e.code, "could not publish the Started event");
    }

    let tally = Mutex::new(run.counters);
    let job = job::Job {
        run: &run,
        owner,
        deps,
        deadline,
        tally: &tally,
    };
    match execute::execute(job).await {
        execute::Execution::Continue => hand_on(&run, owner, dispatch, deps).await,
        execute::Execution::HandBack(after) => {
            let after = after.min(MAX_VISIBILITY);
            let now = Utc::now();
            let resume_at =
                now + chrono::TimeDelta::from_std(after).unwrap_or(chrono::TimeDelta::zero());
            deps.store
                .transition_as(&run, Some(owner), &Transition::Yield { now, resume_at })
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
        execute::Execution::Done(report) => finish(run, owner, report, deps).await,
    }
}

/// Hands a checkpointed run on to a new invocation: the lease ends now (so the new message's
/// claim succeeds at once), then a new work message; the current message is acknowledged.
/// If the send fails the current message is not acknowledged: it comes back after the
/// visibility timeout and resumes from the checkpoint all the same.
async fn hand_on(run: &Run, owner: &str, dispatch: u32, deps: &Deps) -> Result<(), MessageError> {
    let now = Utc::now();
    match deps
        .store
        .transition_as(
            run,
            Some(owner),
            &Transition::Yield {
                now,
                resume_at: now,
            },
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::TransitionRefused) => {
            tracing::warn!("run is no longer ours; acknowledging");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    // The same dispatch generation it was claimed with: a continuation is not a re-dispatch.
    deps.queue
        .dispatcher()
        .send_message(RunMessage {
            run_id: run.id,
            dispatch,
        })
        .await
        .map_err(|e| MessageError::NotHandedOn(run.id.to_string(), e))?;
    tracing::info!(counters = ?run.counters, "run checkpointed and handed on");
    Ok(())
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
