//! Provider connections: a tenant's app registration. The secret itself lives in Secrets
//! Manager ([`crate::secrets`]); the item holds only its name and metadata, versioned so a
//! rotation replaces exactly the version it read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::{TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{keyed_item, number_attr};
use crate::keys;
use crate::table::Store;
use crate::transactions::{MemberGuard, Precondition, Rejection, WriteError, committed_guarded};

/// A tenant's app registration. The secret itself lives in Secrets Manager; this holds only
/// its name and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub connection_id: String,
    pub client_id: String,
    pub secret_name: String,
    /// The Secrets Manager version this connection uses (staged before the record's write,
    /// promoted after it); absent on records written before versions were recorded, which
    /// use the current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version_id: Option<String>,
    /// Bumped by every rotation; writes are conditioned on the version they replace.
    pub version: u32,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "tenantops_core::time::option")]
    pub rotated_at: Option<DateTime<Utc>>,
    #[serde(default, with = "tenantops_core::time::option")]
    pub secret_expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A start precondition: the tenant's connection exists (a check names it).
    pub fn connection_exists(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        connection_id: &str,
    ) -> Result<Precondition, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.exists(keys::PK);
        Ok(Precondition::new(self.condition_check(
            keys::connection(ws, tenant, connection_id),
            cond,
            p,
        )?))
    }

    pub async fn get_connection(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.get_as("connection", &keys::connection(ws, tenant, connection_id))
            .await
    }

    /// Writes connection metadata: version 1 must be new, version n must replace n - 1. The
    /// caller must still hold the guard's role and the tenant must be active.
    pub async fn put_connection(
        &self,
        conn: &ConnectionRecord,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let ws = conn.workspace_id;
        let mut p = Placeholders::default();
        let cond = if conn.version <= 1 {
            p.absent(keys::PK)
        } else {
            p.eq("version", number_attr(conn.version - 1))
        };
        let key = keys::connection(ws, conn.tenant_id, &conn.connection_id);
        let items = vec![
            self.member_check(ws, guard)?,
            self.tenant_active_check(ws, conn.tenant_id)?,
            self.tx_put(keyed_item("connection", conn, &key)?, cond, p, false)?,
            self.put_audit(audit)?,
        ];
        committed_guarded(self.transact(items).await?, Some(1), Rejection::Conflict)
    }
}
