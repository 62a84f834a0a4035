//! What follows a committed start, written by the relay from the table's stream rather than
//! in the start's own transaction: the run's `operation.start` audit entry and its user
//! initiator's "queued" notification.
//!
//! Both are functions of the run item alone, and both are keyed by the run's id (a ULID, so
//! it orders the audit log as a fresh id would). A record the stream delivers twice rewrites
//! the same two items with the same content, and a start that never committed has no record,
//! so no entry. What changes is only when they appear: just after the run, not with it.

use serde_json::json;
use tenantops_core::{Initiator, Run};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::item::keyed_item;
use crate::keys;
use crate::notifications::{Notification, notification_item};
use crate::table::{Store, put_request};

/// The audit action of every start.
pub const START_ACTION: &str = "operation.start";

/// The run's start, as its audit entry.
pub fn start_audit(run: &Run) -> AuditEntry {
    AuditEntry {
        id: run.id.ulid(),
        workspace_id: run.workspace_id,
        tenant_id: Some(run.tenant_id),
        actor: run.initiator.to_string(),
        action: START_ACTION.into(),
        target: run.id.to_string(),
        before: None,
        after: Some(json!({
            "type": run.operation,
            "status": run.status,
            "params": run.params,
            "context": run.context,
        })),
        at: run.created_at,
    }
}

/// The user initiator's "queued" notification; a scheduled run has no one to tell, and a
/// batch's child is followed in its batch (a thousand notifications would bury the rest).
pub fn queued_notification(run: &Run) -> Option<Notification> {
    let (Initiator::User(user), None) = (&run.initiator, run.context.batch_id) else {
        return None;
    };
    Some(Notification {
        id: run.id.ulid(),
        user_id: user.clone(),
        workspace_id: run.workspace_id,
        tenant_id: run.tenant_id,
        run_id: run.id,
        operation: run.operation.to_string(),
        status: run.status.to_string(),
        outcome: run.outcome.as_str().to_owned(),
        at: run.created_at,
    })
}

impl Store {
    /// Writes what follows each of `runs`' starts (batches of 25, unconditional: a rewrite
    /// is the same item).
    pub async fn record_starts(&self, runs: &[Run]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(runs.len() * 2);
        for run in runs {
            let audit = start_audit(run);
            let key = keys::audit(audit.workspace_id, audit.id);
            requests.push(put_request(keyed_item("audit entry", &audit, &key)?)?);
            if let Some(n) = queued_notification(run) {
                requests.push(put_request(notification_item(&n)?)?);
            }
        }
        self.batch_write(requests).await
    }
}
