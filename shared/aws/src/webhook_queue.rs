//! The webhook queue as the notifier writes it: delivery messages sent to its own queue, each
//! with the `DelaySeconds` its retry waits (SQS's most is 900 s; a longer wait is chained by
//! the notifier), and a delivery that failed for good described in the webhook dead-letter
//! queue. Receiving and deleting are the event-source mapping's ([`crate::WorkQueue`] plays
//! them locally).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::queue::{MAX_RECEIVE, QueueError};

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY_SECONDS: u32 = 900;

#[derive(Debug, Clone)]
pub struct WebhookQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
}

impl WebhookQueue {
    pub fn new(client: Client, url: impl Into<String>, dead_letter_url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    pub fn from_sdk(
        sdk: &aws_config::SdkConfig,
        url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self::new(Client::new(sdk), url, dead_letter_url)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `(body, delay seconds)` messages, ten to a `SendMessageBatch`; a delay is capped
    /// at [`MAX_DELAY_SECONDS`]. Any entry refused fails the call (the caller retries all:
    /// a delivery sent twice is recorded once per attempt count and carries one `webhook-id`).
    pub async fn send(&self, messages: &[(String, u32)]) -> Result<(), QueueError> {
        for chunk in messages.chunks(MAX_RECEIVE) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (body, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(i32::try_from((*delay).min(MAX_DELAY_SECONDS)).unwrap_or(0))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::sdk("SendMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError {
                    operation: "SendMessageBatch",
                    code: Some(failed.code().to_owned()),
                    source: "an entry was refused".into(),
                });
            }
        }
        Ok(())
    }

    /// Describes a delivery that failed for good in the dead-letter queue.
    pub async fn dead_letter(&self, body: &str) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError::sdk("SendMessage", e))?;
        Ok(())
    }
}
