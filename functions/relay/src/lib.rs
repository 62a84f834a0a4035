//! The relay: for every run the table's stream shows inserted, does what follows its start:
//! writes its audit entry and its initiator's notification (`tenantops_aws::starts`) and
//! sends its first work message. A start is then one conditional write and nothing else, and
//! a run is dispatched exactly when it was committed (never a message for a run that does not
//! exist, never a committed run without one). What the relay writes is a function of the
//! committed run, so a retried batch writes the same items again; a message sent twice has
//! the same dispatch generation, and a worker claims a run once whatever it receives.
//!
//! For every batch the stream shows inserted, it starts the batch's children (`children.rs`):
//! the one place besides a start route and the scheduler that creates runs, each through the
//! start transaction with the batch's own conditions, so a retried batch starts nothing twice.
//!
//! The template's event source mapping delivers only run and batch inserts (its filter), in
//! batches, and retries a batch from its first failed record; after its retries the batch's
//! description goes to the relay's dead-letter queue. Locally, `tenantops_local::relay_host`
//! plays it.

pub mod children;
pub mod config;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tenantops_aws::dispatch::MAX_BATCH;
use tenantops_aws::{DispatchError, Dispatcher, Store, StoreError};
use tenantops_core::batch::Batch;
use tenantops_core::{Run, RunId};

#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// The work queue the runs are dispatched to.
    pub dispatcher: Dispatcher,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("writing the starts' audit entries and notifications failed")]
    Record {
        /// The first run's place: it and those after it are not relayed.
        at: usize,
        #[source]
        source: StoreError,
    },
    #[error("batch {batch}'s children were not all started")]
    Children {
        /// The batch's place in the records.
        at: usize,
        batch: tenantops_core::BatchId,
        #[source]
        source: children::ChildrenError,
    },
    #[error("run {run}'s work message was not sent")]
    Dispatch {
        /// The run's place in the batch: it and those after it are not dispatched.
        at: usize,
        run: RunId,
        #[source]
        source: Option<DispatchError>,
    },
}

impl RelayError {
    /// The place in the batch from which the relay must be retried.
    pub fn retry_from(&self) -> usize {
        match self {
            RelayError::Record { at, .. }
            | RelayError::Dispatch { at, .. }
            | RelayError::Children { at, .. } => *at,
        }
    }
}

/// Does what follows each of `runs`' starts: their audit entries and notifications, then
/// their work messages ten to a `SendMessageBatch`, in order.
pub async fn relay(runs: &[Run], deps: &Deps) -> Result<(), RelayError> {
    if runs.is_empty() {
        return Ok(());
    }
    deps.store
        .record_starts(runs)
        .await
        .map_err(|source| RelayError::Record { at: 0, source })?;
    for (chunk_at, chunk) in runs.chunks(MAX_BATCH).enumerate() {
        let ids: Vec<RunId> = chunk.iter().map(|r| r.id).collect();
        let base = chunk_at * MAX_BATCH;
        let not_sent = |at: usize, source| RelayError::Dispatch {
            at: base + at,
            run: ids[at],
            source,
        };
        let refused = deps
            .dispatcher
            .send_batch(&ids)
            .await
            .map_err(|e| not_sent(0, Some(e)))?;
        if let Some(at) = ids.iter().position(|id| refused.contains(id)) {
            return Err(not_sent(at, None));
        }
    }
    tracing::info!(runs = runs.len(), "starts relayed and dispatched");
    Ok(())
}

/// A record the relay acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Insert {
    Run(Box<Run>),
    Batch(Box<Batch>),
}

/// Does what follows `inserts`, in order: consecutive runs are relayed together, and each
/// batch's children are started where it stands. On failure, the error's place is the first
/// insert not done.
pub async fn relay_inserts(inserts: &[Insert], deps: &Deps) -> Result<(), RelayError> {
    let mut runs: Vec<Run> = Vec::new();
    let mut runs_from = 0;
    for (at, insert) in inserts.iter().enumerate() {
        match insert {
            Insert::Run(run) => {
                if runs.is_empty() {
                    runs_from = at;
                }
                runs.push((**run).clone());
            }
            Insert::Batch(batch) => {
                relay(&runs, deps)
                    .await
                    .map_err(|e| shifted(e, runs_from))?;
                runs.clear();
                children::start_children(batch, deps)
                    .await
                    .map_err(|source| RelayError::Children {
                        at,
                        batch: batch.id,
                        source,
                    })?;
            }
        }
    }
    relay(&runs, deps).await.map_err(|e| shifted(e, runs_from))
}

/// `e`, from a relay of runs that began at `from` among the inserts.
fn shifted(e: RelayError, from: usize) -> RelayError {
    match e {
        RelayError::Record { source, .. } => RelayError::Record { at: from, source },
        RelayError::Dispatch { at, run, source } => RelayError::Dispatch {
            at: from + at,
            run,
            source,
        },
        other => other,
    }
}

/// Serves one batch of stream records. A record that is neither a run nor a batch insert is
/// passed over (the mapping's filter keeps them out); one whose image does not map, or a
/// failed write, reports the batch from that record on as failed, so the mapping retries it
/// and, in the end, hands it to the dead-letter queue rather than losing it.
pub async fn handle(event: Event, deps: &Deps) -> DynamoDbEventResponse {
    let mut inserts = Vec::with_capacity(event.records.len());
    let mut sequence = Vec::with_capacity(event.records.len());
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let at = record.change.sequence_number.clone();
        let sort = record
            .change
            .keys
            .get(tenantops_aws::keys::SK)
            .and_then(|v| match v {
                serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mapped = if sort.starts_with(tenantops_aws::keys::BATCH_PREFIX) {
            serde_dynamo::from_item::<_, Batch>(record.change.new_image)
                .map(|b| Insert::Batch(Box::new(b)))
        } else {
            serde_dynamo::from_item::<_, Run>(record.change.new_image)
                .map(|r| Insert::Run(Box::new(r)))
        };
        match mapped {
            Ok(insert) => {
                inserts.push(insert);
                sequence.push(at);
            }
            Err(e) => {
                tracing::error!(error = %e, sequence_number = ?at, "an image that does not map");
                // Everything before it is relayed below; it and what follows are retried.
                return match relay_inserts(&inserts, deps).await {
                    Ok(()) => failed_from(at),
                    Err(e) => retry(&e, sequence),
                };
            }
        }
    }
    match relay_inserts(&inserts, deps).await {
        Ok(()) => DynamoDbEventResponse::default(),
        Err(e) => retry(&e, sequence),
    }
}

/// The response to a relay that failed part-way: retry from the first record not relayed.
fn retry(e: &RelayError, mut sequence: Vec<Option<String>>) -> DynamoDbEventResponse {
    tracing::error!(error = %e, "relaying starts failed; the batch is retried from the first not relayed");
    let at = e.retry_from().min(sequence.len().saturating_sub(1));
    failed_from(sequence.get_mut(at).and_then(Option::take))
}

/// A response that has the mapping retry the batch from the record at `sequence_number`.
fn failed_from(sequence_number: Option<String>) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = sequence_number;
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}
