//! The notifier: the webhook queue's consumer. Two kinds of message arrive there:
//!
//! - **Events** from the run bus, through the template's `WebhookEventsRule`
//!   (`OperationRun Completed`, `Schedule SlotMissed`, `Webhook Test`). Each is turned into the
//!   webhook events it is (`run.failed`, `drift.detected`, ...) and fanned out: one delivery
//!   message per subscription of the workspace that wants it, sent back to the same queue.
//! - **Deliveries**: one attempt each (`deliver.rs`), recorded in the subscription's log.
//!   A failed attempt sends the delivery again with the retry's wait as `DelaySeconds` (a wait
//!   past SQS's 900 s is chained: the message carries when it is due and is sent on until
//!   then); past the retry window it is marked `failed` and described in the dead-letter queue.
//!
//! Every delivery of one event to one subscription has one `webhook-id` (derived from the
//! event's id), however often the event or the delivery is handled, so receivers deduplicate.
//! Only failed messages are reported back (`ReportBatchItemFailures`); locally
//! `tenantops_local::notifier_host` plays the event-source mapping.

pub mod config;
mod deliver;

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_aws::events::{Lifecycle, SLOT_MISSED, WEBHOOK_TEST};
use tenantops_aws::webhook_queue::{MAX_DELAY_SECONDS, WebhookQueue};
use tenantops_aws::webhooks::WebhookRecord;
use tenantops_aws::{QueueError, SecretVault, Store, StoreError};
use tenantops_core::webhook::{
    self, Attempt, CompletedRun, Delivery, DeliveryStatus, EventType, RetrySchedule, UrlPolicy,
};
use tenantops_core::{ScheduleId, TenantId, WebhookId, WorkspaceId};

/// How long one attempt may take (connect, send, the answer's status).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// Reads subscriptions' signing secrets.
    pub secrets: SecretVault,
    pub queue: WebhookQueue,
    pub retries: RetrySchedule,
    /// Which addresses deliveries may reach ([`UrlPolicy::PUBLIC`] when deployed).
    pub urls: UrlPolicy,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the message is neither an event nor a delivery")]
    Unreadable(#[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("a delivery message could not be written")]
    Encode(#[source] serde_json::Error),
}

/// One delivery of one event to one subscription, as its messages carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub webhook_id: WebhookId,
    pub event_type: EventType,
    /// The body every attempt sends, exactly (ids, codes and links only).
    pub payload: String,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due; a message received earlier is sent on until then.
    #[serde(default, with = "tenantops_core::time::option")]
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Envelope {
    Delivery(DeliveryMessage),
}

/// An EventBridge event as a rule's SQS target receives it.
#[derive(Debug, Deserialize)]
struct BusEvent {
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
    detail: Value,
}

#[derive(Debug, Deserialize)]
struct SlotMissed {
    workspace_id: WorkspaceId,
    #[serde(default)]
    tenant_id: Option<TenantId>,
    schedule_id: ScheduleId,
    #[serde(default)]
    slots: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TestRequest {
    workspace_id: WorkspaceId,
    webhook_id: WebhookId,
}

/// Handles one batch; only the messages that failed are reported (to be received again).
pub async fn handle(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let outcomes =
        futures::future::join_all(event.records.iter().map(|m| handle_one(m, deps))).await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in event.records.iter().zip(outcomes) {
        if let Err(e) = outcome {
            tracing::error!(error = %e, "webhook message failed; it is received again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn handle_one(message: &SqsMessage, deps: &Deps) -> Result<(), NotifyError> {
    let body = message.body.as_deref().unwrap_or_default();
    match serde_json::from_str::<Envelope>(body) {
        Ok(Envelope::Delivery(d)) => attempt(d, deps).await,
        Err(_) => {
            let event: BusEvent = serde_json::from_str(body).map_err(NotifyError::Unreadable)?;
            fan_out(&event, deps).await
        }
    }
}

/// The webhook events a bus event is, with their `data` and workspace, and the one
/// subscription a test names.
async fn events_of(
    event: &BusEvent,
    deps: &Deps,
) -> Result<
    (
        Option<WorkspaceId>,
        Option<WebhookId>,
        Vec<(EventType, Value)>,
    ),
    NotifyError,
> {
    let completed = Lifecycle::Completed.detail_type();
    if event.detail_type == completed {
        let Ok(run) = serde_json::from_value::<CompletedRun>(event.detail.clone()) else {
            return Ok((None, None, Vec::new()));
        };
        let mut out: Vec<(EventType, Value)> =
            run.events().into_iter().map(|e| (e, run.data())).collect();
        if run.may_have_drift()
            && let Some(report) = deps
                .store
                .drift_report(run.workspace_id, run.tenant_id, run.run_id)
                .await?
        {
            let c = report.counts;
            if c.added + c.removed + c.changed > 0 {
                out.push((
                    EventType::DriftDetected,
                    run.drift_data(c.added, c.removed, c.changed),
                ));
            }
        }
        return Ok((Some(run.workspace_id), None, out));
    }
    if event.detail_type == SLOT_MISSED {
        let Ok(m) = serde_json::from_value::<SlotMissed>(event.detail.clone()) else {
            return Ok((None, None, Vec::new()));
        };
        let slots: Vec<DateTime<Utc>> = m.slots.iter().filter_map(|s| s.parse().ok()).collect();
        let data = webhook::slot_missed_data(m.workspace_id, m.tenant_id, m.schedule_id, &slots);
        return Ok((
            Some(m.workspace_id),
            None,
            vec![(EventType::ScheduleSlotMissed, data)],
        ));
    }
    if event.detail_type == WEBHOOK_TEST {
        let Ok(t) = serde_json::from_value::<TestRequest>(event.detail.clone()) else {
            return Ok((None, None, Vec::new()));
        };
        let data = webhook::test_data(t.workspace_id, t.webhook_id);
        return Ok((
            Some(t.workspace_id),
            Some(t.webhook_id),
            vec![(EventType::Test, data)],
        ));
    }
    Ok((None, None, Vec::new()))
}

/// Sends one delivery message per (event, subscription that wants it).
async fn fan_out(event: &BusEvent, deps: &Deps) -> Result<(), NotifyError> {
    let (Some(ws), only, events) = events_of(event, deps).await? else {
        return Ok(());
    };
    if events.is_empty() {
        return Ok(());
    }
    let subscriptions: Vec<WebhookRecord> = match only {
        Some(id) => deps.store.webhook(ws, id).await?.into_iter().collect(),
        None => deps.store.webhooks(ws).await?,
    };
    let at = event.time.unwrap_or_else(Utc::now);
    let mut messages = Vec::new();
    for (event_type, data) in &events {
        for sub in &subscriptions {
            if *event_type != EventType::Test && !sub.events.contains(event_type) {
                continue;
            }
            let message = DeliveryMessage {
                id: webhook::delivery_id(&format!("{}/{}", event.id, event_type.as_str()), sub.id),
                workspace_id: ws,
                webhook_id: sub.id,
                event_type: *event_type,
                payload: webhook::payload(*event_type, at, data),
                created_at: at,
                attempts: Vec::new(),
                due_at: None,
            };
            messages.push((encode(message)?, 0));
        }
    }
    tracing::info!(
        detail_type = %event.detail_type,
        deliveries = messages.len(),
        "webhook event fanned out"
    );
    deps.queue.send(&messages).await?;
    Ok(())
}

fn encode(message: DeliveryMessage) -> Result<String, NotifyError> {
    serde_json::to_string(&Envelope::Delivery(message)).map_err(NotifyError::Encode)
}

/// Whole seconds from `now` to `due`, for `DelaySeconds` (at most SQS's 900).
fn delay_until(due: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let secs = (due - now).num_seconds().max(0);
    u32::try_from(secs)
        .unwrap_or(MAX_DELAY_SECONDS)
        .min(MAX_DELAY_SECONDS)
}

/// One attempt of a delivery (or, before it is due, the message sent on).
async fn attempt(mut message: DeliveryMessage, deps: &Deps) -> Result<(), NotifyError> {
    let now = Utc::now();
    if let Some(due) = message.due_at.filter(|due| *due > now) {
        let delay = delay_until(due, now);
        deps.queue.send(&[(encode(message)?, delay)]).await?;
        return Ok(());
    }
    let Some(sub) = deps
        .store
        .webhook(message.workspace_id, message.webhook_id)
        .await?
    else {
        tracing::info!(delivery = %message.id, "the subscription was deleted; delivery dropped");
        return Ok(());
    };
    let result = deliver::attempt(&sub, &message, deps).await;
    let number = u32::try_from(message.attempts.len()).unwrap_or(u32::MAX) + 1;
    let tried = Attempt {
        number,
        at: now,
        status_code: result.status_code,
        error: result.error,
    };
    let succeeded = tried.succeeded();
    message.attempts.push(tried);
    let first_at = message.attempts.first().map_or(now, |a| a.at);
    let next = if succeeded {
        None
    } else {
        deps.retries.next_attempt(number, first_at, Utc::now())
    };
    let status = match (succeeded, next) {
        (true, _) => DeliveryStatus::Delivered,
        (false, Some(_)) => DeliveryStatus::Retrying,
        (false, None) => DeliveryStatus::Failed,
    };
    let record = Delivery {
        id: message.id.clone(),
        webhook_id: message.webhook_id,
        workspace_id: message.workspace_id,
        event_type: message.event_type,
        status,
        attempts: message.attempts.clone(),
        created_at: message.created_at,
        next_attempt_at: next,
    };
    deps.store.record_delivery(&record).await?;
    tracing::info!(
        delivery = %message.id,
        attempt = number,
        status_code = ?result.status_code,
        error = ?result.error,
        outcome = ?status,
        "webhook delivery attempted"
    );
    match (status, next) {
        (DeliveryStatus::Retrying, Some(due)) => {
            message.due_at = Some(due);
            let delay = delay_until(due, Utc::now());
            deps.queue.send(&[(encode(message)?, delay)]).await?;
        }
        (DeliveryStatus::Failed, _) => {
            deps.queue.dead_letter(&encode(message)?).await?;
        }
        _ => {}
    }
    Ok(())
}
