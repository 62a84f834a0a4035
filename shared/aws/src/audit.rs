//! The audit log: one entry per change, written in the same transaction as the change, and
//! read newest first per workspace.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::{TenantId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{from_items, keyed_item, string_attr, string_of};
use crate::keys;
use crate::table::{Query, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: ulid::Ulid,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(with = "tenantops_core::time")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub workspace: WorkspaceId,
    pub action: Option<String>,
    pub tenant: Option<TenantId>,
    pub limit: usize,
    pub after: Option<ulid::Ulid>,
}

impl Store {
    /// The entry as a transaction item (never overwriting another).
    pub(crate) fn put_audit(&self, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
        let key = keys::audit(entry.workspace_id, entry.id);
        self.put_new(keyed_item("audit entry", entry, &key)?, false)
    }

    /// A workspace's audit log, newest first, optionally filtered by action and tenant.
    pub async fn list_audit(
        &self,
        q: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<ulid::Ulid>), StoreError> {
        let pk = keys::audit(q.workspace, ulid::Ulid::nil()).pk;
        let mut p = Placeholders::default();
        let mut filters = Vec::new();
        if let Some(action) = &q.action {
            filters.push(p.eq("action", string_attr(action.clone())));
        }
        if let Some(t) = q.tenant {
            filters.push(p.eq("tenant_id", string_attr(t.to_string())));
        }
        let start = q
            .after
            .map(|after| keys::audit(q.workspace, after).to_item());
        let (items, last) = self
            .query_filling(
                Query::partition(pk, filters, p).newest_first(),
                q.limit,
                start,
            )
            .await?;
        let entries = from_items("audit entry", items)?;
        let next = last
            .and_then(|k| string_of(&k, keys::SK).cloned())
            .and_then(|sk| ulid::Ulid::from_string(&sk).ok());
        Ok((entries, next))
    }
}
