//! Plays the notifier's SQS event-source mapping: receives up to the template's batch size
//! (10) from the webhook queue, hands the batch to `tenantops_notifier::handle` in the event
//! shape Lambda sends, and deletes exactly the messages the handler did not report as failed
//! (`ReportBatchItemFailures`). Delayed messages (a retry's wait) become receivable when SQS
//! says so, as in AWS.

use std::time::Duration;

use anyhow::Context;
use tenantops_aws::{Received, WorkQueue};
use tenantops_notifier::Deps;

use crate::worker_host::event_of;

/// The template's `NotifierEventSourceMapping` `BatchSize`.
pub const BATCH_SIZE: usize = 10;

#[derive(Debug, Clone)]
pub struct NotifierHost {
    queue: WorkQueue,
}

impl NotifierHost {
    /// The host of the queue `deps` sends its deliveries to.
    pub fn new(sdk: &aws_config::SdkConfig, deps: &Deps) -> Self {
        Self {
            queue: WorkQueue::from_sdk(sdk, deps.queue.url()),
        }
    }

    /// Receives one batch (waiting up to `wait`) and handles it; how many were received.
    pub async fn invoke(&self, deps: &Deps, wait: Duration) -> anyhow::Result<usize> {
        let messages = self
            .queue
            .receive(BATCH_SIZE, wait)
            .await
            .context("receiving webhook messages")?;
        if messages.is_empty() {
            return Ok(0);
        }
        let event = event_of(&messages, self.queue.url())?;
        let response = tenantops_notifier::handle(event, deps).await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let done: Vec<Received> = messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id.as_str()))
            .cloned()
            .collect();
        if !done.is_empty() {
            self.queue
                .delete(&done)
                .await
                .context("deleting handled webhook messages")?;
        }
        Ok(messages.len())
    }

    /// Handles everything receivable now (and what that sends without delay).
    pub async fn drain(&self, deps: &Deps) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let got = self.invoke(deps, Duration::ZERO).await?;
            if got == 0 {
                return Ok(total);
            }
            total += got;
        }
    }

    /// Polls forever, as the event-source mapping does.
    pub async fn run(self, deps: Deps) {
        loop {
            if let Err(e) = self.invoke(&deps, Duration::from_secs(1)).await {
                tracing::error!(error = %e, "notifier poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
