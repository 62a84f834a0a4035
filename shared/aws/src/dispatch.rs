//! SQS dispatch: the message that hands a run to a worker, and the run's dispatch generation
//! that makes a superseded message recognisable.
//!
//! The start path and the scheduler send generation 0 (a message without `dispatch`; a run
//! item without the attribute is at generation 0). Only the reaper dispatches a run again,
//! and each time it first raises the run's generation (a conditional write restating the one
//! it saw), then sends a message carrying the new one. A worker claims a run only with a
//! message of the run's current generation, in the claim's own condition, and acknowledges an
//! older message without work: however many messages of a run exist, at most one of them can
//! ever start it, and re-dispatching never duplicates work.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use tenantops_core::{Run, RunId, Transition};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{from_item, number_attr};
use crate::keys;
use crate::queue::{Backlog, QueueError, backlog_of};
use crate::table::Store;
use crate::transitions::Seen;

/// SQS's limit of messages per `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;

/// The run attribute holding its dispatch generation (absent: 0).
pub(crate) const DISPATCH: &str = "dispatch";

/// The work message. Workers receive the run id and the dispatch generation the message was
/// sent for; the run itself is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMessage {
    pub run_id: RunId,
    /// The run's dispatch generation when this message was sent (0, and left out, for the
    /// first dispatch).
    #[serde(default, skip_serializing_if = "is_first")]
    pub dispatch: u32,
}

fn is_first(dispatch: &u32) -> bool {
    *dispatch == 0
}

impl RunMessage {
    /// The first dispatch of a run (the start path, the scheduler).
    pub fn first(run_id: RunId) -> Self {
        RunMessage {
            run_id,
            dispatch: 0,
        }
    }

    fn body(&self) -> String {
        serde_json::json!(self).to_string()
    }
}

/// A run as a worker (or the reaper's dead-letter drain) reads it, with its current dispatch
/// generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    pub run: Run,
    pub dispatch: u32,
}

impl Dispatched {
    /// A message of an older generation: a later dispatch stands instead of it, so it must be
    /// acknowledged without work. Generations only grow, so this never changes back.
    pub fn supersedes(&self, message: &RunMessage) -> bool {
        message.dispatch < self.dispatch
    }
}

/// `#dispatch = :g`, an absent attribute counting as generation 0.
pub(crate) fn dispatch_is(p: &mut Placeholders, generation: u32) -> String {
    let eq = p.eq(DISPATCH, number_attr(generation));
    if generation == 0 {
        format!("({} OR {eq})", p.absent(DISPATCH))
    } else {
        eq
    }
}

/// The dispatch generation stored on a run item.
pub(crate) fn dispatch_of(item: &crate::item::Item) -> u32 {
    match item.get(DISPATCH) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

impl Store {
    /// A run with its dispatch generation, read consistently.
    pub async fn get_dispatched(&self, id: RunId) -> Result<Option<Dispatched>, StoreError> {
        let Some(item) = self.get_item(&keys::run(id), true).await? else {
            return Ok(None);
        };
        let dispatch = dispatch_of(&item);
        Ok(Some(Dispatched {
            run: from_item("run", item)?,
            dispatch,
        }))
    }

    /// A worker's claim (see [`Store::transition_as`]) with a message of generation
    /// `dispatch`, refused ([`StoreError::TransitionRefused`]) unless that is still the
    /// run's generation: a message the reaper superseded since it was read cannot start it.
    pub async fn claim_dispatched(
        &self,
        run: &Run,
        worker: &str,
        claim: &Transition,
        dispatch: u32,
    ) -> Result<(), StoreError> {
        self.transition_checked(run, Some(worker), Some(Seen::Dispatch(dispatch)), claim)
            .await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("SQS SendMessage failed")]
pub struct DispatchError {
    pub code: Option<String>,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    client: Client,
    queue_url: String,
}

impl Dispatcher {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends up to [`MAX_BATCH`] work messages in one `SendMessageBatch`. `Ok` lists the
    /// runs whose message SQS did not accept; `Err` means none was sent.
    pub async fn send_batch(&self, runs: &[RunId]) -> Result<Vec<RunId>, DispatchError> {
        let entries = runs
            .iter()
            .take(MAX_BATCH)
            .enumerate()
            .map(|(i, run_id)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(RunMessage::first(*run_id).body())
                    .build()
                    .map_err(|e| DispatchError {
                        code: None,
                        source: Box::new(e),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e: SdkError<_, _>| DispatchError {
                code: e.code().map(str::to_owned),
                source: Box::new(e),
            })?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse::<usize>().ok())
            .filter_map(|i| runs.get(i).copied())
            .collect())
    }

    /// Sends a run's first work message.
    pub async fn send(&self, run_id: RunId) -> Result<(), DispatchError> {
        self.send_message(RunMessage::first(run_id)).await
    }

    /// Sends a work message of a given dispatch generation (the reaper's re-dispatch, after
    /// it raised the run's generation to it).
    pub async fn send_message(&self, message: RunMessage) -> Result<(), DispatchError> {
        self.send_delayed(message, 0).await
    }

    /// Sends a work message that becomes receivable `delay_s` seconds from now (SQS's
    /// `DelaySeconds`, at most 900): a worker defers a run of a workspace at its limit.
    pub async fn send_delayed(
        &self,
        message: RunMessage,
        delay_s: u32,
    ) -> Result<(), DispatchError> {
        let body = message.body();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_delay_seconds(
                (delay_s > 0).then(|| i32::try_from(delay_s.min(900)).unwrap_or(900)),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e: SdkError<_, _>| DispatchError {
                code: e.code().map(str::to_owned),
                source: Box::new(e),
            })
    }

    /// How many messages the work queue holds, approximately (see [`Backlog`]).
    pub async fn backlog(&self) -> Result<Backlog, QueueError> {
        backlog_of(&self.client, &self.queue_url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_message_is_the_bare_run_id_and_a_later_one_names_its_generation() {
        let run_id = RunId::new();
        let first = RunMessage::first(run_id);
        assert_eq!(
            first.body(),
            serde_json::json!({ "run_id": run_id }).to_string()
        );
        // Messages sent before generations existed read as the first dispatch.
        let old: RunMessage =
            serde_json::from_str(&serde_json::json!({ "run_id": run_id }).to_string())
                .expect("parses");
        assert_eq!(old, first);
        let later = RunMessage {
            run_id,
            dispatch: 2,
        };
        let parsed: RunMessage = serde_json::from_str(&later.body()).expect("parses");
        assert_eq!(parsed, later);
    }
}
