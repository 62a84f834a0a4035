//! SQS beyond dispatch: the work queue as its consumer sees it (a worker handing its message
//! back for later; the receive and delete of the event-source mapping, which the local stack
//! plays), its backlog as the reaper reads it, and the dead-letter queue the reaper drains.
//!
//! Messages come back as [`Received`], errors as [`QueueError`]; no SQS type leaves here, so
//! the functions need no SDK crate of their own.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};

/// SQS's limit for a message's visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// SQS's largest receive (and largest `DeleteMessageBatch`).
pub const MAX_RECEIVE: usize = 10;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An SQS call failed; `source` is the SDK error.
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} failed")]
pub struct QueueError {
    pub operation: &'static str,
    /// The SQS error code (`ReceiptHandleIsInvalid`, `QueueDoesNotExist`, ...).
    pub code: Option<String>,
    #[source]
    pub(crate) source: BoxError,
}

impl QueueError {
    pub(crate) fn sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        QueueError {
            operation,
            code: err.code().map(str::to_owned),
            source: Box::new(err),
        }
    }
}

/// A received message: what a consumer needs to handle it and then delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: Option<String>,
    pub md5_of_body: Option<String>,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, ...), when asked for.
    pub attributes: BTreeMap<String, String>,
}

impl Received {
    /// `None` for a message without an id or receipt handle: it could never be deleted.
    fn of(m: Message) -> Option<Received> {
        let attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Some(Received {
            message_id: m.message_id?,
            receipt_handle: m.receipt_handle?,
            body: m.body,
            md5_of_body: m.md5_of_body,
            attributes,
        })
    }
}

/// What a `DeleteMessageBatch` came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub deleted: usize,
    /// Messages SQS did not delete; they come back after their visibility timeout.
    pub failed: usize,
}

/// How many messages a queue holds, as SQS reports it (`GetQueueAttributes`). The counts are
/// approximate and may lag by a minute or more: "The ApproximateNumberOfMessagesDelayed,
/// ApproximateNumberOfMessagesNotVisible, and ApproximateNumberOfMessages metrics may not
/// achieve consistency until at least 1 minute after the producers stop sending messages"
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html>).
/// So a reader may use them as a hint only, never as proof that a given message exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// `ApproximateNumberOfMessages`: available for retrieval now.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: in flight (received, neither deleted nor
    /// back from their visibility timeout, hand-backs included).
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`: sent with a delay that has not passed yet.
    pub delayed: u64,
}

/// The backlog of the queue at `url`.
pub(crate) async fn backlog_of(client: &Client, url: &str) -> Result<Backlog, QueueError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| QueueError::sdk("GetQueueAttributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    let count = |name: QueueAttributeName| {
        attrs
            .get(&name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Backlog {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// One queue, by URL: the calls both typed queues share.
#[derive(Debug, Clone)]
struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    async fn receive(
        &self,
        max: usize,
        hide_for: Option<Duration>,
        wait: Duration,
        attributes: bool,
    ) -> Result<Vec<Received>, QueueError> {
        let max = i32::try_from(max.clamp(1, MAX_RECEIVE)).unwrap_or(1);
        let mut call = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(i32::try_from(wait.as_secs().min(20)).unwrap_or(20));
        if let Some(hide_for) = hide_for {
            call = call.visibility_timeout(seconds(hide_for));
        }
        if attributes {
            call = call.message_system_attribute_names(MessageSystemAttributeName::All);
        }
        let out = call
            .send()
            .await
            .map_err(|e| QueueError::sdk("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(Received::of)
            .collect())
    }

    /// Deletes `messages`, [`MAX_RECEIVE`] per `DeleteMessageBatch`.
    async fn delete(&self, messages: &[Received]) -> Result<Deleted, QueueError> {
        let mut result = Deleted::default();
        for chunk in messages.chunks(MAX_RECEIVE) {
            let entries = chunk
                .iter()
                .filter_map(|m| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(&m.message_id)
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let count = entries.len();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::sdk("DeleteMessageBatch", e))?;
            let failed = out.failed().len().min(count);
            result.failed += failed;
            result.deleted += count - failed;
        }
        Ok(result)
    }
}

/// Whole seconds for SQS, at least one.
fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// The work queue, as its consumer sees it.
#[derive(Debug, Clone)]
pub struct WorkQueue(Queue);

impl WorkQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        WorkQueue(Queue {
            client,
            url: url.into(),
        })
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), url)
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// Hands a received message back: it comes again after `after` (at most
    /// [`MAX_VISIBILITY`], at least a second) instead of its queue's visibility timeout.
    pub async fn hand_back(&self, receipt_handle: &str, after: Duration) -> Result<(), QueueError> {
        self.0
            .client
            .change_message_visibility()
            .queue_url(&self.0.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds(after.min(MAX_VISIBILITY)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::sdk("ChangeMessageVisibility", e))
    }

    /// Receives up to `max` messages (at most [`MAX_RECEIVE`]) with their system attributes,
    /// waiting up to `wait` for one, as the event-source mapping does.
    pub async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>, QueueError> {
        self.0.receive(max, None, wait, true).await
    }

    /// Deletes handled messages.
    pub async fn delete(&self, messages: &[Received]) -> Result<Deleted, QueueError> {
        self.0.delete(messages).await
    }

    /// A dispatcher onto this queue: a worker hands a continued run on with a new message.
    pub fn dispatcher(&self) -> crate::Dispatcher {
        crate::Dispatcher::new(self.0.client.clone(), self.0.url.clone())
    }
}

/// The work queue's dead-letter queue: messages that exhausted their receives.
#[derive(Debug, Clone)]
pub struct DeadLetters(Queue);

impl DeadLetters {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        DeadLetters(Queue {
            client,
            url: url.into(),
        })
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), url)
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// Receives up to [`MAX_RECEIVE`] dead letters without waiting, each hidden from other
    /// receivers for `hide_for` while this one handles it.
    pub async fn receive(&self, hide_for: Duration) -> Result<Vec<Received>, QueueError> {
        self.0
            .receive(MAX_RECEIVE, Some(hide_for), Duration::ZERO, false)
            .await
    }

    /// Deletes handled dead letters.
    pub async fn delete(&self, letters: &[Received]) -> Result<Deleted, QueueError> {
        self.0.delete(letters).await
    }
}
