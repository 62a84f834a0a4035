//! Workspaces and their members: one partition per workspace, the memberships also indexed
//! by user (GSI1) for "my workspaces".
//!
//! Membership changes are transactions whose conditions restate what the caller read (a
//! role, an owner count): a concurrent change makes them fail as a conflict instead of being
//! overwritten, and the workspace's `owner_count`, kept by every change, makes "the last
//! owner stays" a condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::{Role, UserId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{
    Index, Item, from_item, from_items, keyed_item, number_attr, string_attr, string_of,
    value_attr, with_index,
};
use crate::keys;
use crate::table::{Store, build_error};
use crate::transactions::{
    MemberGuard, Rejection, WriteError, committed, committed_guarded, failed_at,
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

/// A membership's item, with its key in the user's index.
fn member_item(m: &MemberRecord) -> Result<Item, StoreError> {
    let item = keyed_item("member", m, &keys::member(m.workspace_id, &m.user_id))?;
    Ok(with_index(
        item,
        Index::Gsi1,
        keys::memberships_of_user(&m.user_id),
        keys::membership_sort(m.workspace_id),
    ))
}

impl Store {
    /// The caller's role in a workspace, or `None` if not a member.
    pub async fn member_role(
        &self,
        ws: WorkspaceId,
        user: &UserId,
    ) -> Result<Option<Role>, StoreError> {
        Ok(self
            .get_as::<MemberRecord>("member", &keys::member(ws, user))
            .await?
            .map(|m| m.role))
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
        let workspace = crate::platform::with_platform_index(
            keyed_item("workspace", ws, &keys::workspace(ws.workspace_id))?,
            ws.workspace_id,
        );
        let items = vec![
            self.put_new(workspace, false)?,
            self.put_new(member_item(&member)?, false)?,
            self.put_audit(audit)?,
        ];
        committed(self.transact(items).await?)
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
        let cond = p.exists(keys::PK);
        let update = Changes::default()
            .set(&["settings"], value_attr("workspace settings", &settings)?)
            .render(&mut p);
        let items = vec![
            self.member_check(ws, guard)?,
            self.tx_update(&keys::workspace(ws), update, cond, p, false)?,
            self.put_audit(audit)?,
        ];
        committed_guarded(self.transact(items).await?, None, Rejection::NotMember)
    }

    pub async fn get_workspace(
        &self,
        ws: WorkspaceId,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.get_as("workspace", &keys::workspace(ws)).await
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
            let sk = string_of(&item, keys::SK).cloned().unwrap_or_default();
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
            let cond = p.eq("role", string_attr(change.actor_role.as_str()));
            actor_at = Some(items.len());
            items.push(self.condition_check(keys::member(ws, change.actor), cond, p)?);
        }
        let target_at = items.len();
        let mut p = Placeholders::default();
        let cond = match change.current {
            None => p.absent(keys::PK),
            Some(r) => p.eq("role", string_attr(r.as_str())),
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
                self.tx_put(member_item(&member)?, cond, p, false)?
            }
            None => self.tx_delete(&keys::member(ws, change.target), cond, p, false)?,
        });
        let owners_at = items.len();
        let mut p = Placeholders::default();
        let update = Changes::default()
            .increment(&["owner_count"], change.owner_delta)
            .render(&mut p);
        let exists = p.exists(keys::PK);
        let cond = if change.owner_delta < 0 {
            format!(
                "{exists} AND {} > {}",
                p.name("owner_count"),
                p.value(number_attr(1))
            )
        } else {
            exists
        };
        items.push(self.tx_update(&keys::workspace(ws), update, cond, p, false)?);
        items.push(self.put_audit(change.audit)?);
        let Some(reasons) = self.transact(items).await? else {
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
        let items = self
            .partition(keys::workspace(ws).pk, Some(&prefix), None)
            .await?;
        from_items("member", items)
    }

    /// The workspaces `user` belongs to, from the membership index.
    pub async fn workspaces_of(&self, user: &UserId) -> Result<Vec<MemberRecord>, StoreError> {
        let items = self
            .partition(
                keys::memberships_of_user(user),
                Some(&keys::membership_sort_prefix()),
                Some(Index::Gsi1),
            )
            .await?;
        from_items("member", items)
    }
}
