//! Webhook subscriptions of a workspace: an https URL, the events it wants, and the signing
//! secret the create answers once; each subscription's delivery log, and a test delivery.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_core::secret::SecretString;
use tenantops_core::{WebhookId, WorkspaceId, links};

use crate::types::{Page, PageQuery};
use crate::{Call, Client, Error, Route};

/// Where a subscription and its delivery log are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub deliveries: String,
}

/// A subscription (`Webhook`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    pub links: WebhookLinks,
    /// The create's answer only: the signing secret (`whsec_...`), answered this once; never
    /// serialized, so `--json` prints it only where the command line puts it on purpose.
    #[serde(default, skip_serializing)]
    pub secret: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookResponse {
    pub webhook: Webhook,
}

/// One delivery of an event to a subscription, with its attempts (status codes or error
/// codes, never response bodies).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event_type: String,
    pub status: String,
    pub created_at: String,
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    #[serde(default)]
    pub attempts: Value,
}

impl Client {
    pub async fn list_webhooks(&self, ws: WorkspaceId) -> Result<Page<Webhook>, Error> {
        self.json(Call::new(
            Route::ListWebhooks,
            format!("/v1/workspaces/{ws}/webhooks"),
        ))
        .await
    }

    /// Subscribes `url` to `events`; the answer carries the signing secret, once.
    pub async fn create_webhook(
        &self,
        ws: WorkspaceId,
        url: &str,
        events: &[String],
    ) -> Result<WebhookResponse, Error> {
        self.json(
            Call::new(
                Route::CreateWebhook,
                format!("/v1/workspaces/{ws}/webhooks"),
            )
            .body(json!({ "url": url, "events": events })),
        )
        .await
    }

    pub async fn view_webhook(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
    ) -> Result<WebhookResponse, Error> {
        self.json(Call::new(Route::ViewWebhook, links::webhook(ws, id)))
            .await
    }

    pub async fn delete_webhook(&self, ws: WorkspaceId, id: WebhookId) -> Result<(), Error> {
        self.empty(Call::new(Route::DeleteWebhook, links::webhook(ws, id)))
            .await
    }

    /// The subscription's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
        page: &PageQuery,
    ) -> Result<Page<Delivery>, Error> {
        self.json(
            Call::new(Route::WebhookDeliveries, links::webhook_deliveries(ws, id))
                .query(page.pairs()),
        )
        .await
    }

    /// Sends a test event to the subscription (delivered as any other, and logged).
    pub async fn test_webhook(&self, ws: WorkspaceId, id: WebhookId) -> Result<Value, Error> {
        self.json(Call::new(
            Route::TestWebhook,
            format!("{}/test", links::webhook(ws, id)),
        ))
        .await
    }
}
