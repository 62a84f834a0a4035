//! Plays SQS's event-source mapping for the worker: receives messages, hands them to the
//! same `tenantops_worker::handle` in the event shape Lambda sends, and deletes exactly the
//! messages the handler did not report as failed (`ReportBatchItemFailures`).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::Message;
use serde_json::{Value, json};
use tenantops_aws::Received;
use tenantops_worker::Deps;

/// Batch size, as the template's event source configures it.
pub const BATCH_SIZE: usize = 5;

/// The Lambda SQS event for `messages` (received with the SDK, as a test may).
pub fn event(messages: &[Message], queue_url: &str) -> anyhow::Result<SqsEvent> {
    let received: Vec<Received> = messages
        .iter()
        .map(|m| Received {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
            body: m.body().map(str::to_owned),
            md5_of_body: m.md5_of_body().map(str::to_owned),
            attributes: m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    event_of(&received, queue_url)
}

/// The Lambda SQS event for `messages`.
pub fn event_of(messages: &[Received], queue_url: &str) -> anyhow::Result<SqsEvent> {
    let queue_name = queue_url.rsplit('/').next().unwrap_or_default();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": m.attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).context("building the SQS event")
}

/// Receives one batch (waiting up to `wait`), runs it, deletes the successes. Returns how
/// many messages it received.
pub async fn poll_once(deps: &Deps, wait: Duration) -> anyhow::Result<usize> {
    let messages = deps
        .queue
        .receive(BATCH_SIZE, wait)
        .await
        .context("receiving work messages")?;
    if messages.is_empty() {
        return Ok(0);
    }
    let deadline = chrono::Utc::now() + chrono::TimeDelta::seconds(120);
    let response =
        tenantops_worker::handle(event_of(&messages, deps.queue.url())?, deadline, deps).await;
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<Received> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id.as_str()))
        .cloned()
        .collect();
    if !done.is_empty() {
        deps.queue
            .delete(&done)
            .await
            .context("deleting processed messages")?;
    }
    Ok(messages.len())
}

/// Polls until a receive comes back empty (for tests: run everything that is queued now).
pub async fn drain(deps: &Deps) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = poll_once(deps, Duration::from_secs(0)).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// Polls forever, as the event-source mapping does.
pub async fn run(deps: &Deps) {
    loop {
        if let Err(e) = poll_once(deps, Duration::from_secs(1)).await {
            tracing::error!(error = %e, "worker poll failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
