//! Notifications for a run's initiator: written with the run ("queued") and when it finishes,
//! read newest first per user. Also what a finished run owes the world, written once for
//! every function that finishes runs (the worker, the reaper): [`announce_completed`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::{Initiator, Run, RunId, TenantId, UserId, WorkspaceId};

use crate::error::StoreError;
use crate::events::{Lifecycle, LifecycleEvents};
use crate::expr::Placeholders;
use crate::item::{Item, from_items, keyed_item};
use crate::keys::{self, Key};
use crate::table::{Query, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: ulid::Ulid,
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    pub operation: String,
    pub status: String,
    pub outcome: String,
    #[serde(with = "tenantops_core::time")]
    pub at: DateTime<Utc>,
}

/// A notification as its item.
pub(crate) fn notification_item(n: &Notification) -> Result<Item, StoreError> {
    let key = Key {
        pk: keys::notifications_of(&n.user_id),
        sk: n.id.to_string(),
    };
    keyed_item("notification", n, &key)
}

impl Store {
    pub async fn put_notification(&self, n: &Notification) -> Result<(), StoreError> {
        self.put(notification_item(n)?).await
    }

    /// A user's notifications, newest first.
    pub async fn notifications(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let q = Query::partition(
            keys::notifications_of(user),
            Vec::new(),
            Placeholders::default(),
        )
        .newest_first();
        let (items, _) = self.query_filling(q, limit, None).await?;
        from_items("notification", items)
    }
}

/// Publishes `Completed` and writes the initiator's notification for a finished `run`.
/// Failures are logged, not returned: the run's state is already final, and neither is worth
/// undoing it for.
pub async fn announce_completed(events: &LifecycleEvents, store: &Store, run: &Run) {
    if let Err(e) = events.publish(Lifecycle::Completed, run).await {
        tracing::error!(error = %e, code = ?e.code, "could not publish the Completed event");
    }
    // A batch's children are followed in the batch, not notified one by one.
    if let (Initiator::User(user), None) = (&run.initiator, run.context.batch_id) {
        let n = Notification {
            id: ulid::Ulid::new(),
            user_id: user.clone(),
            workspace_id: run.workspace_id,
            tenant_id: run.tenant_id,
            run_id: run.id,
            operation: run.operation.to_string(),
            status: run.status.to_string(),
            outcome: run.outcome.as_str().to_owned(),
            at: run.completed_at.unwrap_or_else(Utc::now),
        };
        if let Err(e) = store.put_notification(&n).await {
            tracing::error!(error = %e, "could not write the initiator's notification");
        }
    }
}
