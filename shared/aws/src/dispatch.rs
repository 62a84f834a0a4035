//! SQS dispatch: the message that hands a run to a worker.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use tenantops_core::RunId;

/// SQS's limit of messages per `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;

/// The work message. Workers receive only the run id; the run itself is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMessage {
    pub run_id: RunId,
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
                    .message_body(serde_json::json!(RunMessage { run_id: *run_id }).to_string())
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

    pub async fn send(&self, run_id: RunId) -> Result<(), DispatchError> {
        let body = serde_json::json!(RunMessage { run_id }).to_string();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e: SdkError<_, _>| DispatchError {
                code: e.code().map(str::to_owned),
                source: Box::new(e),
            })
    }
}
