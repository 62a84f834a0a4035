//! Workspaces, members, tenants, provider connections and the audit log.
//!
//! Membership and tenant changes are transactions whose conditions restate what the caller
//! read (a role, a version, an owner count): a concurrent change makes them fail as a
//! conflict instead of being overwritten.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::{Role, TenantId, UserId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::keys::{self, Key};
use crate::store::{
    AuditEntry, Item, MemberGuard, Rejection, Store, TenantRecord, WriteError, build_error,
    failed_at, from_item, member_rejection, s, tenant_rejection, to_item, with_key,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Kept by every membership change, so "the last owner stays" is a condition.
    pub owner_count: u32,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub settings: WorkspaceSettings,
}

/// Per-workspace switches, changed by owners only (audited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSettings {
    /// Allows executing restores of high-risk types (the registry's `risk = High`); without
    /// it they are preview-only.
    #[serde(default)]
    pub restore_high_risk: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: Role,
    /// Copied here so that "my workspaces" is one index query.
    pub workspace_name: String,
    #[serde(with = "tenantops_core::time")]
    pub added_at: DateTime<Utc>,
}

/// A tenant's app registration. The secret itself lives in Secrets Manager; this holds only
/// its name and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub connection_id: String,
    pub client_id: String,
    pub secret_name: String,
    /// Bumped by every rotation; writes are conditioned on the version they replace.
    pub version: u32,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "tenantops_core::time::option")]
    pub rotated_at: Option<DateTime<Utc>>,
    #[serde(default, with = "tenantops_core::time::option")]
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// What a membership change reads first: the workspace, the actor's and the target's rows.
#[derive(Debug, Clone, Default)]
pub struct MembershipView {
    pub workspace: Option<WorkspaceRecord>,
    pub actor: Option<MemberRecord>,
    pub target: Option<MemberRecord>,
}

/// One membership change, with what it was decided on.
#[derive(Debug, Clone, Copy)]
pub struct MemberWrite<'a> {
    pub workspace: &'a WorkspaceRecord,
    pub actor: &'a UserId,
    pub actor_role: Role,
    pub target: &'a UserId,
    pub current: Option<Role>,
    /// `None` removes the member.
    pub new: Option<Role>,
    pub owner_delta: i64,
    pub audit: &'a AuditEntry,
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
    /// The caller's role in a workspace, or `None` if not a member.
    pub async fn member_role(
        &self,
        ws: WorkspaceId,
        user: &UserId,
    ) -> Result<Option<Role>, StoreError> {
        Ok(self
            .get::<MemberRecord>("member", keys::member(ws, user))
            .await?
            .map(|m| m.role))
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        key: Key,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.map(|i| from_item(what, i)).transpose()
    }

    /// Every item of a partition (of the table or of `index`), or only those whose sort key
    /// starts with `prefix`.
    pub(crate) async fn partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        index: Option<(&str, &str, &str)>,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_attr, sk_attr) = match index {
            Some((_, pk, sk)) => (pk, sk),
            None => (keys::PK, keys::SK),
        };
        let mut p = Placeholders::default();
        let mut cond = format!("{} = {}", p.name(pk_attr), p.value(s(pk)));
        if let Some(prefix) = prefix {
            cond = format!(
                "{cond} AND begins_with({}, {})",
                p.name(sk_attr),
                p.value(s(prefix))
            );
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .set_index_name(index.map(|(name, _, _)| name.to_owned()))
                .key_condition_expression(&cond)
                .set_expression_attribute_names(p.names())
                .set_expression_attribute_values(p.values())
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Creates a workspace with `owner` as its first member, in one transaction.
    pub async fn create_workspace(
        &self,
        ws: &WorkspaceRecord,
        owner: &UserId,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let member = MemberRecord {
            workspace_id: ws.workspace_id,
            user_id: owner.clone(),
            role: Role::Owner,
            workspace_name: ws.name.clone(),
            added_at: ws.created_at,
        };
        let items = vec![
            self.put_new(
                with_key(to_item("workspace", ws)?, &keys::workspace(ws.workspace_id)),
                false,
            )?,
            self.put_new(self.member_item(&member)?, false)?,
            self.put_audit(audit)?,
        ];
        match self.transact("TransactWriteItems", items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::TransitionRefused),
        }
    }

    fn member_item(&self, m: &MemberRecord) -> Result<Item, StoreError> {
        let mut item = with_key(
            to_item("member", m)?,
            &keys::member(m.workspace_id, &m.user_id),
        );
        item.insert(
            keys::GSI1_PK.into(),
            s(keys::memberships_of_user(&m.user_id)),
        );
        item.insert(
            keys::GSI1_SK.into(),
            s(keys::membership_sort(m.workspace_id)),
        );
        Ok(item)
    }

    /// Replaces a workspace's settings, if `guard` holds, with its audit entry, in one
    /// transaction.
    pub async fn set_workspace_settings(
        &self,
        ws: WorkspaceId,
        settings: WorkspaceSettings,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut p = Placeholders::default();
        let cond = format!("attribute_exists({})", p.name(keys::PK));
        let value = serde_dynamo::to_attribute_value::<_, AttributeValue>(settings)
            .map_err(|e| StoreError::mapping("workspace settings", e))?;
        let update = format!("SET {} = {}", p.name("settings"), p.value(value));
        let items = vec![
            self.member_check(ws, guard)?,
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(self.table())
                        .set_key(Some(keys::workspace(ws).to_item()))
                        .update_expression(update)
                        .condition_expression(cond)
                        .set_expression_attribute_names(p.names())
                        .set_expression_attribute_values(p.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            self.put_audit(audit)?,
        ];
        match self.transact("TransactWriteItems", items).await? {
            None => Ok(()),
            Some(reasons) => Err(WriteError::Rejected(match failed_at(&reasons, 0) {
                Some(r) => member_rejection(r),
                None => Rejection::NotMember,
            })),
        }
    }

    pub async fn get_workspace(
        &self,
        ws: WorkspaceId,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.get("workspace", keys::workspace(ws)).await
    }

    /// The workspace, the actor's and the target's memberships, in one BatchGetItem.
    pub async fn membership_view(
        &self,
        ws: WorkspaceId,
        actor: &UserId,
        target: &UserId,
    ) -> Result<MembershipView, StoreError> {
        let wanted = [
            keys::workspace(ws),
            keys::member(ws, actor),
            keys::member(ws, target),
        ];
        let mut keys_and_attrs = KeysAndAttributes::builder().consistent_read(true);
        let mut seen = Vec::new();
        for k in &wanted {
            if !seen.contains(k) {
                keys_and_attrs = keys_and_attrs.keys(k.to_item());
                seen.push(k.clone());
            }
        }
        let mut request = HashMap::from([(
            self.table().to_owned(),
            keys_and_attrs.build().map_err(build_error)?,
        )]);
        let mut found: Vec<Item> = Vec::new();
        // Unprocessed keys are retried until none are left (rare; throughput pressure only).
        for _ in 0..5 {
            let out = self
                .client()
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| StoreError::dynamo("BatchGetItem", e))?;
            found.extend(out.responses.unwrap_or_default().into_values().flatten());
            match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                Some(rest) => request = rest,
                None => break,
            }
        }
        let mut view = MembershipView::default();
        for item in found {
            let sk = item
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if sk == keys::workspace(ws).sk {
                view.workspace = Some(from_item("workspace", item)?);
            } else {
                let m: MemberRecord = from_item("member", item)?;
                if &m.user_id == actor {
                    view.actor = Some(m.clone());
                }
                if &m.user_id == target {
                    view.target = Some(m);
                }
            }
        }
        Ok(view)
    }

    /// Applies a membership change decided on `change`'s observed state; any of it having
    /// moved since is a `Conflict`, and an owner count that would drop to zero a `LastOwner`.
    pub async fn change_member(&self, change: MemberWrite<'_>) -> Result<(), WriteError> {
        let ws = change.workspace.workspace_id;
        let mut items = Vec::new();
        let mut actor_at = None;
        if change.actor != change.target {
            let mut p = Placeholders::default();
            let cond = format!(
                "{} = {}",
                p.name("role"),
                p.value(s(change.actor_role.as_str()))
            );
            actor_at = Some(items.len());
            items.push(self.condition_check(keys::member(ws, change.actor), cond, p)?);
        }
        let target_at = items.len();
        let target_key = keys::member(ws, change.target);
        let mut p = Placeholders::default();
        let cond = match change.current {
            None => format!("attribute_not_exists({})", p.name(keys::PK)),
            Some(r) => format!("{} = {}", p.name("role"), p.value(s(r.as_str()))),
        };
        items.push(match change.new {
            Some(role) => {
                let member = MemberRecord {
                    workspace_id: ws,
                    user_id: change.target.clone(),
                    role,
                    workspace_name: change.workspace.name.clone(),
                    added_at: change.audit.at,
                };
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(self.table())
                            .set_item(Some(self.member_item(&member)?))
                            .condition_expression(cond)
                            .set_expression_attribute_names(p.names())
                            .set_expression_attribute_values(p.values())
                            .build()
                            .map_err(build_error)?,
                    )
                    .build()
            }
            None => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(self.table())
                        .set_key(Some(target_key.to_item()))
                        .condition_expression(cond)
                        .set_expression_attribute_names(p.names())
                        .set_expression_attribute_values(p.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        });
        let owners_at = items.len();
        let mut p = Placeholders::default();
        let count = p.name("owner_count");
        let exists = format!("attribute_exists({})", p.name(keys::PK));
        let delta = p.value(AttributeValue::N(change.owner_delta.to_string()));
        let cond = if change.owner_delta < 0 {
            format!(
                "{exists} AND {count} > {}",
                p.value(AttributeValue::N("1".into()))
            )
        } else {
            exists
        };
        items.push(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(self.table())
                        .set_key(Some(keys::workspace(ws).to_item()))
                        .update_expression(format!("SET {count} = {count} + {delta}"))
                        .condition_expression(cond)
                        .set_expression_attribute_names(p.names())
                        .set_expression_attribute_values(p.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        );
        items.push(self.put_audit(change.audit)?);
        let Some(reasons) = self.transact("TransactWriteItems", items).await? else {
            return Ok(());
        };
        let failed = |i| failed_at(&reasons, i).is_some();
        if actor_at.is_some_and(failed) || failed(target_at) {
            return Err(WriteError::Rejected(Rejection::Conflict));
        }
        if failed(owners_at) && change.owner_delta < 0 {
            return Err(WriteError::Rejected(Rejection::LastOwner));
        }
        Err(WriteError::Rejected(Rejection::Conflict))
    }

    pub async fn list_members(&self, ws: WorkspaceId) -> Result<Vec<MemberRecord>, StoreError> {
        let prefix = keys::member_prefix();
        self.partition(keys::workspace(ws).pk, Some(&prefix), None)
            .await?
            .into_iter()
            .map(|i| from_item("member", i))
            .collect()
    }

    /// The workspaces `user` belongs to, from the membership index.
    pub async fn workspaces_of(&self, user: &UserId) -> Result<Vec<MemberRecord>, StoreError> {
        self.partition(
            keys::memberships_of_user(user),
            Some(&keys::membership_sort_prefix()),
            Some((keys::GSI1, keys::GSI1_PK, keys::GSI1_SK)),
        )
        .await?
        .into_iter()
        .map(|i| from_item("member", i))
        .collect()
    }

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
        items.push(self.put_new(
            with_key(
                to_item("tenant", tenant)?,
                &keys::tenant(ws, tenant.tenant_id),
            ),
            false,
        )?);
        let claim_at = items.len();
        let claim = with_key(
            HashMap::from([
                ("workspace_id".to_owned(), s(ws.to_string())),
                ("tenant_id".to_owned(), s(tenant.tenant_id.to_string())),
            ]),
            &keys::entra_claim(&tenant.entra_tenant_id),
        );
        items.push(self.put_new(claim, false)?);
        items.push(self.put_audit(audit)?);
        let Some(reasons) = self.transact("TransactWriteItems", items).await? else {
            return Ok(());
        };
        if let Some(r) = guard_at.and_then(|i| failed_at(&reasons, i)) {
            return Err(WriteError::Rejected(member_rejection(r)));
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
        self.get("tenant", keys::tenant(ws, tenant)).await
    }

    pub async fn list_tenants(&self, ws: WorkspaceId) -> Result<Vec<TenantRecord>, StoreError> {
        self.partition(keys::workspace(ws).pk, Some(&keys::tenant_prefix()), None)
            .await?
            .into_iter()
            .map(|i| from_item("tenant", i))
            .collect()
    }

    /// Replaces a tenant record that still equals `observed` (name and status).
    pub async fn replace_tenant(
        &self,
        observed: &TenantRecord,
        new: &TenantRecord,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let ws = observed.workspace_id;
        let mut p = Placeholders::default();
        let cond = format!(
            "{} = {} AND {} = {}",
            p.name("display_name"),
            p.value(s(observed.display_name.clone())),
            p.name("status"),
            p.value(to_attr(&observed.status)?),
        );
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(with_key(
                to_item("tenant", new)?,
                &keys::tenant(ws, new.tenant_id),
            )))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .build()
            .map_err(build_error)?;
        let items = vec![
            self.member_check(ws, guard)?,
            TransactWriteItem::builder().put(put).build(),
            self.put_audit(audit)?,
        ];
        let Some(reasons) = self.transact("TransactWriteItems", items).await? else {
            return Ok(());
        };
        if let Some(r) = failed_at(&reasons, 0) {
            return Err(WriteError::Rejected(member_rejection(r)));
        }
        Err(WriteError::Rejected(Rejection::Conflict))
    }

    pub async fn get_connection(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.get("connection", keys::connection(ws, tenant, connection_id))
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
            format!("attribute_not_exists({})", p.name(keys::PK))
        } else {
            format!(
                "{} = {}",
                p.name("version"),
                p.value(AttributeValue::N((conn.version - 1).to_string()))
            )
        };
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(with_key(
                to_item("connection", conn)?,
                &keys::connection(ws, conn.tenant_id, &conn.connection_id),
            )))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .build()
            .map_err(build_error)?;
        let items = vec![
            self.member_check(ws, guard)?,
            self.tenant_active_check(ws, conn.tenant_id)?,
            TransactWriteItem::builder().put(put).build(),
            self.put_audit(audit)?,
        ];
        let Some(reasons) = self.transact("TransactWriteItems", items).await? else {
            return Ok(());
        };
        if let Some(r) = failed_at(&reasons, 0) {
            return Err(WriteError::Rejected(member_rejection(r)));
        }
        if let Some(r) = failed_at(&reasons, 1) {
            return Err(WriteError::Rejected(tenant_rejection(r)));
        }
        Err(WriteError::Rejected(Rejection::Conflict))
    }

    /// A workspace's audit log, newest first, optionally filtered by action and tenant.
    pub async fn list_audit(
        &self,
        q: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<ulid::Ulid>), StoreError> {
        let pk = keys::audit(q.workspace, ulid::Ulid::nil()).pk;
        let mut p = Placeholders::default();
        let key_cond = format!("{} = {}", p.name(keys::PK), p.value(s(pk.clone())));
        let mut filters = Vec::new();
        if let Some(action) = &q.action {
            filters.push(format!(
                "{} = {}",
                p.name("action"),
                p.value(s(action.clone()))
            ));
        }
        if let Some(t) = q.tenant {
            filters.push(format!(
                "{} = {}",
                p.name("tenant_id"),
                p.value(s(t.to_string()))
            ));
        }
        let start = q
            .after
            .map(|after| keys::audit(q.workspace, after).to_item());
        let (items, last) = self
            .query_newest_first(None, key_cond, filters, p, q.limit, start)
            .await?;
        let entries = items
            .into_iter()
            .map(|i| from_item("audit entry", i))
            .collect::<Result<Vec<AuditEntry>, _>>()?;
        let next = last
            .and_then(|k| k.get(keys::SK).and_then(|v| v.as_s().ok()).cloned())
            .and_then(|sk| ulid::Ulid::from_string(&sk).ok());
        Ok((entries, next))
    }
}

fn to_attr<T: Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::mapping("attribute", e))
}
