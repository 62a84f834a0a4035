//! Customer tenants of a workspace, with the Entra tenant claims that make an Entra tenant
//! belong to one workspace only. A tenant change is conditional on what the caller read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::tag::Tag;
use tenantops_core::{TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{from_items, keyed_item, string_attr, value_attr, with_key};
use crate::keys;
use crate::table::Store;
use crate::transactions::{
    MemberGuard, Rejection, WriteError, committed_guarded, failed_at, guard_rejection,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub workspace_id: WorkspaceId,
    pub entra_tenant_id: String,
    pub display_name: String,
    pub status: TenantStatus,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    /// Sorted (see `tenantops_core::tag::parse_tags`); absent on a tenant without tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Store {
    /// Adds a customer tenant. The Entra tenant claim, written in the same transaction,
    /// makes an Entra tenant belong to one workspace only.
    pub async fn create_tenant(
        &self,
        tenant: &TenantRecord,
        guard: Option<MemberGuard<'_>>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let ws = tenant.workspace_id;
        let mut items = Vec::new();
        let mut guard_at = None;
        if let Some(g) = guard {
            guard_at = Some(items.len());
            items.push(self.member_check(ws, g)?);
        }
        let key = keys::tenant(ws, tenant.tenant_id);
        items.push(self.put_new(keyed_item("tenant", tenant, &key)?, false)?);
        let claim_at = items.len();
        let claim = with_key(
            HashMap::from([
                ("workspace_id".to_owned(), string_attr(ws.to_string())),
                (
                    "tenant_id".to_owned(),
                    string_attr(tenant.tenant_id.to_string()),
                ),
            ]),
            &keys::entra_claim(&tenant.entra_tenant_id),
        );
        items.push(self.put_new(claim, false)?);
        items.push(self.put_audit(audit)?);
        let Some(reasons) = self.transact(items).await? else {
            return Ok(());
        };
        if let Some(r) = guard_rejection(&reasons, guard_at, None) {
            return Err(WriteError::Rejected(r));
        }
        if failed_at(&reasons, claim_at).is_some() {
            return Err(WriteError::Rejected(Rejection::AlreadyClaimed));
        }
        Err(WriteError::Rejected(Rejection::Conflict))
    }

    pub async fn get_tenant(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> Result<Option<TenantRecord>, StoreError> {
        self.get_as("tenant", &keys::tenant(ws, tenant)).await
    }

    /// The workspace's tenants, read consistently: a batch that names a tenant created a
    /// moment ago finds it.
    pub async fn list_tenants(&self, ws: WorkspaceId) -> Result<Vec<TenantRecord>, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND begins_with({}, {})",
            p.eq(keys::PK, string_attr(keys::workspace(ws).pk)),
            p.name(keys::SK),
            p.value(string_attr(keys::tenant_prefix()))
        );
        let items = self
            .query_all(crate::table::Query::new(None, cond, p).consistent())
            .await?;
        from_items("tenant", items)
    }

    /// Replaces a tenant record that still equals `observed` (name, status and tags).
    pub async fn replace_tenant(
        &self,
        observed: &TenantRecord,
        new: &TenantRecord,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let ws = observed.workspace_id;
        let mut p = Placeholders::default();
        let tags = if observed.tags.is_empty() {
            p.absent("tags")
        } else {
            p.eq("tags", value_attr("tags", &observed.tags)?)
        };
        let cond = format!(
            "{} AND {} AND {tags}",
            p.eq("display_name", string_attr(observed.display_name.clone())),
            p.eq("status", value_attr("attribute", &observed.status)?),
        );
        let item = keyed_item("tenant", new, &keys::tenant(ws, new.tenant_id))?;
        let items = vec![
            self.member_check(ws, guard)?,
            self.tx_put(item, cond, p, false)?,
            self.put_audit(audit)?,
        ];
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }
}
