//! Plays SQS's event-source mapping for the worker: receives messages, hands them to the
//! same `tenantops_worker::handle` in the event shape Lambda sends, and deletes exactly the
//! messages the handler did not report as failed (`ReportBatchItemFailures`).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Value, json};
use tenantops_worker::Deps;

/// Batch size, as the template's event source configures it.
pub const BATCH_SIZE: i32 = 5;

/// The Lambda SQS event for `messages`.
pub fn event(messages: &[Message], queue_url: &str) -> anyhow::Result<SqsEvent> {
    let queue_name = queue_url.rsplit('/').next().unwrap_or_default();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
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
    let out = deps
        .sqs
        .receive_message()
        .queue_url(&deps.queue_url)
        .max_number_of_messages(BATCH_SIZE)
        .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(1))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .context("receiving work messages")?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let response = tenantops_worker::handle(event(&messages, &deps.queue_url)?, deps).await;
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
        .filter_map(|m| {
            DeleteMessageBatchRequestEntry::builder()
                .id(m.message_id()?)
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    if !done.is_empty() {
        deps.sqs
            .delete_message_batch()
            .queue_url(&deps.queue_url)
            .set_entries(Some(done))
            .send()
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
