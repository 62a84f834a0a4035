//! Run lifecycle events on EventBridge: `OperationRun Queued`, `Started`, `Completed`. The
//! detail names the run and its outcome and failure codes; never params' secrets, messages
//! or payloads.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::json;
use tenantops_core::{Run, links};

pub const SOURCE: &str = "tenantops";
/// A test delivery to one webhook subscription (`{workspace_id, webhook_id}`), published by
/// the API's test route for the notifier.
pub const WEBHOOK_TEST: &str = "Webhook Test";
/// Slots a schedule skipped (`{workspace_id, tenant_id?, schedule_id, slots}`).
pub const SLOT_MISSED: &str = "Schedule SlotMissed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Queued,
    Started,
    Completed,
}

impl Lifecycle {
    pub fn detail_type(self) -> &'static str {
        match self {
            Lifecycle::Queued => "OperationRun Queued",
            Lifecycle::Started => "OperationRun Started",
            Lifecycle::Completed => "OperationRun Completed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("EventBridge PutEvents failed")]
pub struct EventsError {
    pub code: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

#[derive(Debug, Clone)]
pub struct LifecycleEvents {
    client: Client,
    bus: String,
}

impl LifecycleEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), bus)
    }

    /// The event's detail: what a subscriber needs to find and judge the run.
    pub fn detail(run: &Run) -> serde_json::Value {
        json!({
            "run_id": run.id,
            "workspace_id": run.workspace_id,
            "tenant_id": run.tenant_id,
            "type": run.operation,
            "status": run.status,
            "outcome": run.outcome,
            "initiator": run.initiator,
            "failure_codes": run.failures.iter().map(|f| f.code).collect::<Vec<_>>(),
            "counters": run.counters,
            "url": links::view(run.id),
        })
    }

    /// The `OperationRun Queued` detail. In AWS the template's `RunQueuedPipe` renders it
    /// from the table stream (its input template has exactly these fields).
    pub fn queued_detail(run: &Run) -> serde_json::Value {
        json!({
            "run_id": run.id,
            "workspace_id": run.workspace_id,
            "tenant_id": run.tenant_id,
            "type": run.operation,
            "status": run.status,
            "outcome": run.outcome,
            "initiator": run.initiator,
            "failure_codes": [],
            "url": links::view(run.id),
        })
    }

    pub async fn publish(&self, stage: Lifecycle, run: &Run) -> Result<(), EventsError> {
        let detail = match stage {
            Lifecycle::Queued => Self::queued_detail(run),
            Lifecycle::Started | Lifecycle::Completed => Self::detail(run),
        };
        self.publish_detail(stage.detail_type(), &detail).await
    }

    /// Publishes one event of `detail_type` (ids, codes and links only).
    pub async fn publish_detail(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), EventsError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| EventsError {
                code: e.code().map(str::to_owned),
                source: Some(Box::new(e)),
            })?;
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code().map(str::to_owned));
            return Err(EventsError { code, source: None });
        }
        Ok(())
    }
}
