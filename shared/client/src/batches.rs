//! Batches: one request that starts a type's run in many tenants (`POST .../batches`), and
//! the batch as the API reads it from its children. Its URLs come from
//! `tenantops_core::links` or from the `links` the batch answered.
//!
//! The answer's types serialize back to the document the API sent (absent fields stay absent),
//! so `--json` shows the body as it came.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use tenantops_core::links;
use tenantops_core::secret::SecretString;
use tenantops_core::{BatchId, RunId, TenantId, WorkspaceId};

use crate::types::{Outcome, RunStatus};
use crate::{Call, Client, Error, Route};

/// A batch's status (read from its children) and how a tenant's child came to be are the
/// domain's own types.
pub use tenantops_core::batch::{BatchStatus, ChildOrigin};

/// Which tenants a batch targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchTargets {
    /// Every active tenant of the workspace.
    All,
    /// The active tenants carrying this tag.
    Tag(String),
    /// These tenants of the workspace.
    Tenants(Vec<TenantId>),
}

impl Serialize for BatchTargets {
    /// `"all"`, `{"tag": "..."}` or a list of tenant ids (`BatchTargets` in the document).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchTargets::All => s.serialize_str("all"),
            BatchTargets::Tag(tag) => json!({ "tag": tag }).serialize(s),
            BatchTargets::Tenants(ids) => ids.serialize(s),
        }
    }
}

/// The body of `POST .../batches` (`BatchRequest`).
#[derive(Debug, Clone, Serialize)]
pub struct BatchRequest {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    pub tenants: BatchTargets,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<TenantId>,
}

/// A batch's children by status and outcome (`BatchProgress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub tenants: u64,
    /// Targeted tenants without a child yet.
    pub not_started: u64,
    /// Starts refused (an archived tenant, a missing connection, ...).
    pub refused: u64,
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub succeeded: u64,
    pub partially_succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// A batch: what was asked, the tenants it resolved to, its status and counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub id: BatchId,
    pub workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    pub kind: String,
    pub params: Value,
    /// `"all"`, a list of tenant ids, or `{"tag"}`, as the API shows them.
    pub targets: Value,
    #[serde(default)]
    pub exclude: Vec<TenantId>,
    pub tenants: Vec<TenantId>,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    /// The batch whose failed children this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<BatchId>,
    /// A confirmed restore batch: the batch of its restores' executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<BatchId>,
    /// An execution batch: the restore batch it confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_of: Option<BatchId>,
    pub status: BatchStatus,
    pub progress: BatchProgress,
}

/// One tenant's child: how it came to be, and its run's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchChild {
    pub tenant_id: TenantId,
    pub origin: ChildOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// A refused start's reason code, or a failed run's first failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The child run's viewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// A restore batch's child: its restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

/// A tenant whose child failed or was refused, with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchFailedTenant {
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLinks {
    pub view: String,
    pub cancel: String,
    pub retry: String,
    pub runs: String,
    /// A restore batch not confirmed yet: where its token executes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<String>,
    /// A confirmed restore batch: its execution batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// An execution batch: the restore batch it confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_of: Option<String>,
}

/// The answer of a batch's create, view and cancel (`BatchView`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchView {
    pub batch: Batch,
    pub children: Vec<BatchChild>,
    pub failed: Vec<BatchFailedTenant>,
    pub links: BatchLinks,
    /// A new restore batch only: the token that executes it, answered this once; never
    /// serialized (so never printed as JSON).
    #[serde(default, skip_serializing)]
    pub confirmation_token: Option<SecretString>,
}

impl Client {
    /// Creates a batch: 202 a new one (`starting`), 200 the one this Idempotency-Key created.
    pub async fn create_batch(
        &self,
        ws: WorkspaceId,
        request: &BatchRequest,
        idempotency_key: Option<&str>,
    ) -> Result<BatchView, Error> {
        self.json(
            Call::new(Route::CreateBatch, format!("/v1/workspaces/{ws}/batches"))
                .body(request)
                .idempotency_key(idempotency_key),
        )
        .await
    }

    /// A batch known by id.
    pub async fn view_batch(&self, ws: WorkspaceId, batch: BatchId) -> Result<BatchView, Error> {
        self.follow_batch(&links::batch(ws, batch)).await
    }

    /// A batch through the `links.view` it answered.
    pub async fn follow_batch(&self, link: &str) -> Result<BatchView, Error> {
        self.json(Call::new(Route::ViewBatch, link)).await
    }

    /// Cancels a batch: no child starts after it, its queued children are cancelled.
    pub async fn cancel_batch(&self, ws: WorkspaceId, batch: BatchId) -> Result<BatchView, Error> {
        self.json(Call::new(
            Route::CancelBatch,
            links::batch_cancel(ws, batch),
        ))
        .await
    }

    /// Confirms a restore batch with its token: 202 the batch of its restores' executions, 200
    /// the one an earlier confirmation created.
    pub async fn execute_batch(
        &self,
        ws: WorkspaceId,
        batch: BatchId,
        confirmation_token: &SecretString,
    ) -> Result<BatchView, Error> {
        self.json(
            Call::new(Route::ExecuteBatch, links::batch_execute(ws, batch))
                .body(json!({ "confirmation_token": confirmation_token.expose() })),
        )
        .await
    }

    /// Retries a batch's failed and refused children as a new batch (`retry_of` the first):
    /// 202 new, 200 the one this Idempotency-Key created.
    pub async fn retry_batch(
        &self,
        ws: WorkspaceId,
        batch: BatchId,
        idempotency_key: Option<&str>,
    ) -> Result<BatchView, Error> {
        self.json(
            Call::new(Route::RetryBatch, links::batch_retry(ws, batch))
                .idempotency_key(idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_documents_three_shapes() {
        let t: TenantId = "01JD0000000000000000000000".parse().expect("an id");
        let body = |tenants| {
            serde_json::to_value(BatchRequest {
                kind: "inventory.sync".into(),
                params: None,
                tenants,
                exclude: Vec::new(),
            })
            .expect("serializable")
        };
        assert_eq!(
            body(BatchTargets::All),
            json!({"type": "inventory.sync", "tenants": "all"})
        );
        assert_eq!(
            body(BatchTargets::Tag("gold".into()))["tenants"],
            json!({"tag": "gold"})
        );
        assert_eq!(body(BatchTargets::Tenants(vec![t]))["tenants"], json!([t]));
    }

    #[test]
    fn a_batch_view_serializes_back_to_the_body_the_api_sent() {
        let ws: WorkspaceId = "01JD0000000000000000000002".parse().expect("an id");
        let run: RunId = "01JD0000000000000000000005".parse().expect("an id");
        let batch: BatchId = "01JD0000000000000000000001".parse().expect("an id");
        let body = json!({
            "batch": {
                "id": "01JD0000000000000000000001",
                "workspace_id": "01JD0000000000000000000002",
                "type": "inventory.sync",
                "params": {"types": ["deviceConfigurations"]},
                "targets": "all",
                "exclude": [],
                "tenants": ["01JD0000000000000000000003", "01JD0000000000000000000004"],
                "created_by": "user-1",
                "created_at": "2026-12-06T19:00:00Z",
                "retry_of": "01JD0000000000000000000006",
                "status": "partially_succeeded",
                "progress": {"tenants": 2, "not_started": 0, "refused": 1, "queued": 0,
                    "running": 0, "completed": 1, "succeeded": 1, "partially_succeeded": 0,
                    "failed": 0, "cancelled": 0}
            },
            "children": [
                {"tenant_id": "01JD0000000000000000000003", "origin": "started",
                 "run_id": "01JD0000000000000000000005", "status": "completed",
                 "outcome": "succeeded", "view": links::view(run)},
                {"tenant_id": "01JD0000000000000000000004", "origin": "refused",
                 "reason": "connection.missing"}
            ],
            "failed": [{"tenant_id": "01JD0000000000000000000004", "reason": "connection.missing"}],
            "links": {"view": links::batch(ws, batch), "cancel": links::batch_cancel(ws, batch),
                "retry": links::batch_retry(ws, batch),
                "runs": links::collection(ws, None)}
        });
        let view: BatchView = serde_json::from_value(body.clone()).expect("a batch view");
        assert_eq!(view.batch.status, BatchStatus::PartiallySucceeded);
        assert_eq!(view.children[1].origin, ChildOrigin::Refused);
        assert_eq!(serde_json::to_value(&view).expect("serializable"), body);
    }
}
