//! Plays SQS's event-source mapping and the Lambda runtime for the worker, as strictly as
//! AWS: receives up to the template's `BatchSize` messages, hands them to the same
//! `tenantops_worker::handle` in the event shape Lambda sends with the invocation's deadline
//! (start + the function's `Timeout`), kills an invocation that passes its deadline, runs at
//! most the reserved concurrency's invocations at once, and deletes exactly the messages the
//! handler did not report as failed (`ReportBatchItemFailures`).
//!
//! A killed invocation is dropped where it stands and none of its batch is deleted: Lambda
//! treats a timeout as the whole batch failing, so every message comes back after the queue's
//! visibility timeout, having used one receive on the way to the dead-letter queue.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::Message;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantops_aws::Received;
use tenantops_worker::Deps;

pub use crate::template::WorkerLimits;
use crate::template::{Template, timeout_override};

/// Overrides the worker's `Timeout` locally (whole seconds).
pub const TIMEOUT_ENV: &str = "TENANTOPS_LOCAL_WORKER_TIMEOUT_S";

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

/// What one invocation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// The handler returned; `failed` messages stay in the queue, the others were deleted.
    Returned { received: usize, failed: usize },
    /// The handler passed its deadline and was killed; all `received` messages stay.
    TimedOut { received: usize },
}

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub received: usize,
    pub invocations: usize,
    pub timed_out: usize,
}

impl Drained {
    fn add(&mut self, invocation: Invocation) {
        self.invocations += 1;
        match invocation {
            Invocation::Returned { received, .. } => self.received += received,
            Invocation::TimedOut { received } => {
                self.received += received;
                self.timed_out += 1;
            }
        }
    }
}

/// The worker's host: its limits and the polling that respects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerHost {
    pub limits: WorkerLimits,
}

impl WorkerHost {
    pub fn new(limits: WorkerLimits) -> Self {
        Self { limits }
    }

    /// Exactly the template's limits.
    pub fn from_template() -> anyhow::Result<Self> {
        Ok(Self::new(Template::embedded()?.worker_limits()?))
    }

    /// The template's limits, with the timeout overridden by [`TIMEOUT_ENV`] when it is set.
    pub fn configured() -> anyhow::Result<Self> {
        let mut host = Self::from_template()?;
        if let Some(timeout) = timeout_override(TIMEOUT_ENV)? {
            host.limits.timeout = timeout;
        }
        Ok(host)
    }

    /// The same host with another timeout (e.g. a short one for a test).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Receives one batch (waiting up to `wait`) and invokes `handler` with it under the
    /// deadline; deletes the successes. `None`: the receive came back empty.
    pub async fn invoke_with<H, F>(
        &self,
        deps: &Deps,
        wait: Duration,
        handler: &H,
    ) -> anyhow::Result<Option<Invocation>>
    where
        H: Fn(SqsEvent, DateTime<Utc>) -> F,
        F: Future<Output = SqsBatchResponse>,
    {
        let messages = deps
            .queue
            .receive(self.limits.batch_size, wait)
            .await
            .context("receiving work messages")?;
        if messages.is_empty() {
            return Ok(None);
        }
        let received = messages.len();
        let event = event_of(&messages, deps.queue.url())?;
        // As the Lambda runtime computes the context's deadline: at the invocation's start.
        let deadline = Utc::now()
            + chrono::TimeDelta::from_std(self.limits.timeout).context("the worker's timeout")?;
        let Ok(response) =
            tokio::time::timeout(self.limits.timeout, handler(event, deadline)).await
        else {
            // Lambda's "Task timed out": the future is dropped where it stands, and the
            // whole batch returns to the queue after its visibility timeout.
            tracing::error!(
                timeout_s = self.limits.timeout.as_secs_f64(),
                messages = received,
                "worker invocation timed out and was killed; its messages return to the queue"
            );
            return Ok(Some(Invocation::TimedOut { received }));
        };
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
        Ok(Some(Invocation::Returned {
            received,
            failed: received - done.len(),
        }))
    }

    /// One poll with the worker's own handler.
    pub async fn invoke(&self, deps: &Deps, wait: Duration) -> anyhow::Result<Option<Invocation>> {
        let handler = |event: SqsEvent, deadline: DateTime<Utc>| {
            tenantops_worker::handle(event, deadline, deps)
        };
        self.invoke_with(deps, wait, &handler).await
    }

    /// Runs everything queued now: `concurrency` pollers, each invoking until its receive
    /// comes back empty (so never more than `concurrency` invocations at once).
    pub async fn drain_with<H, F>(&self, deps: &Deps, handler: &H) -> anyhow::Result<Drained>
    where
        H: Fn(SqsEvent, DateTime<Utc>) -> F,
        F: Future<Output = SqsBatchResponse>,
    {
        let poller = || async {
            let mut drained = Drained::default();
            while let Some(invocation) = self.invoke_with(deps, Duration::ZERO, handler).await? {
                drained.add(invocation);
            }
            anyhow::Ok(drained)
        };
        let pollers = (0..self.limits.concurrency).map(|_| poller());
        let mut total = Drained::default();
        for drained in futures::future::join_all(pollers).await {
            let drained = drained?;
            total.received += drained.received;
            total.invocations += drained.invocations;
            total.timed_out += drained.timed_out;
        }
        Ok(total)
    }

    /// [`WorkerHost::drain_with`] the worker's own handler.
    pub async fn drain(&self, deps: &Deps) -> anyhow::Result<Drained> {
        let handler = |event: SqsEvent, deadline: DateTime<Utc>| {
            tenantops_worker::handle(event, deadline, deps)
        };
        self.drain_with(deps, &handler).await
    }

    /// Polls forever, as the event-source mapping does, with `concurrency` pollers.
    pub async fn run(&self, deps: &Deps) {
        let poller = || async {
            loop {
                if let Err(e) = self.invoke(deps, Duration::from_secs(1)).await {
                    tracing::error!(error = %e, "worker poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        futures::future::join_all((0..self.limits.concurrency).map(|_| poller())).await;
    }
}

/// Receives one batch (waiting up to `wait`) and runs it on a host with the configured
/// limits. Returns how many messages it received.
pub async fn poll_once(deps: &Deps, wait: Duration) -> anyhow::Result<usize> {
    Ok(match WorkerHost::configured()?.invoke(deps, wait).await? {
        None => 0,
        Some(Invocation::Returned { received, .. } | Invocation::TimedOut { received }) => received,
    })
}

/// Runs everything queued now (and what it hands back immediately) on a host with the
/// configured limits. Returns how many messages it received.
pub async fn drain(deps: &Deps) -> anyhow::Result<usize> {
    Ok(WorkerHost::configured()?.drain(deps).await?.received)
}
