//! What a finished run owes the world, written once for every function that finishes runs
//! (the worker, the reaper): the `OperationRun Completed` event and, for a run a user started,
//! the initiator's notification.

use chrono::Utc;
use tenantops_core::{Initiator, Run};

use crate::events::{Lifecycle, LifecycleEvents};
use crate::store::Store;
use crate::tenant_data::Notification;

/// Publishes `Completed` and writes the initiator's notification for a finished `run`.
/// Failures are logged, not returned: the run's state is already final, and neither is worth
/// undoing it for.
pub async fn announce_completed(events: &LifecycleEvents, store: &Store, run: &Run) {
    if let Err(e) = events.publish(Lifecycle::Completed, run).await {
        tracing::error!(error = %e, code = ?e.code, "could not publish the Completed event");
    }
    if let Initiator::User(user) = &run.initiator {
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
