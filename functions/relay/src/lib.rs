//! The relay: for every run the table's stream shows inserted, does what follows its start:
//! writes its audit entry and its initiator's notification (`tenantops_aws::starts`) and
//! sends its first work message. A start is then one conditional write and nothing else, and
//! a run is dispatched exactly when it was committed (never a message for a run that does not
//! exist, never a committed run without one). What the relay writes is a function of the
//! committed run, so a retried batch writes the same items again; a message sent twice has
//! the same dispatch generation, and a worker claims a run once whatever it receives.
//!
//! The template's event source mapping delivers only run inserts (its filter), in batches, and
//! retries a batch from its first failed record; after its retries the batch's description
//! goes to the relay's dead-letter queue. Locally, `tenantops_local::relay_host` plays it.

pub mod config;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tenantops_aws::dispatch::MAX_BATCH;
use tenantops_aws::{DispatchError, Dispatcher, Store, StoreError};
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
    Record(#[source] StoreError),
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
            RelayError::Record(_) => 0,
            RelayError::Dispatch { at, .. } => *at,
        }
    }
}

/// Does what follows each of `runs`' starts: their audit entries and notifications, then
/// their work messages ten to a `SendMessageBatch`, in order.
pub async fn relay(runs: &[Run], deps: &Deps) -> Result<(), RelayError> {
    deps.store
        .record_starts(runs)
        .await
        .map_err(RelayError::Record)?;
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

/// Serves one batch of stream records. A record that is not a run insert is passed over (the
/// mapping's filter keeps them out); one whose image does not map to a run, or a failed
/// write, reports the batch from that record on as failed, so the mapping retries it and, in
/// the end, hands it to the dead-letter queue rather than losing it.
pub async fn handle(event: Event, deps: &Deps) -> DynamoDbEventResponse {
    let mut runs = Vec::with_capacity(event.records.len());
    let mut sequence = Vec::with_capacity(event.records.len());
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let at = record.change.sequence_number.clone();
        match serde_dynamo::from_item::<_, Run>(record.change.new_image) {
            Ok(run) => {
                runs.push(run);
                sequence.push(at);
            }
            Err(e) => {
                tracing::error!(error = %e, sequence_number = ?at, "a run image that does not map");
                // Everything before it is relayed below; it and what follows are retried.
                return match relay(&runs, deps).await {
                    Ok(()) => failed_from(at),
                    Err(e) => retry(&e, sequence),
                };
            }
        }
    }
    match relay(&runs, deps).await {
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
