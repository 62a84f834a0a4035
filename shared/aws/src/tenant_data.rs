//! What workers learn about a tenant: the last observed inventory, the directory caches
//! (groups, role definitions) and their sync state, and the notifications they leave for
//! the run's initiator. Only metadata and small whitelisted fields; never payloads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::{RunId, TenantId, UserId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::keys::{self, Key};
use crate::store::{Item, Store, build_error, from_item, s, to_item, with_key};

/// BatchWriteItem's limit.
const BATCH_WRITE: usize = 25;

/// One observed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub object_type: String,
    pub object_id: String,
    pub name: String,
    /// The registry's `$select` fields of the object (small, no payloads).
    pub meta: Value,
    pub last_seen_run: RunId,
    #[serde(with = "tenantops_core::time")]
    pub seen_at: DateTime<Utc>,
    #[serde(default)]
    pub deleted: bool,
}

/// One cached directory object (group or role definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub id: String,
    pub display_name: String,
    /// Lowercased name, for prefix search.
    pub name_lower: String,
    pub meta: Value,
    pub last_seen_run: RunId,
}

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
    Ok(with_key(to_item("notification", n)?, &key))
}

impl Store {
    /// Writes items in batches of 25, retrying unprocessed ones.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), pending.clone())
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Contention {
                    operation: "BatchWriteItem",
                });
            }
        }
        Ok(())
    }

    pub(crate) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?,
            )
            .build())
    }

    /// Records what a sync saw of one type.
    pub async fn put_inventory(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        items: &[InventoryItem],
    ) -> Result<(), StoreError> {
        let requests = items
            .iter()
            .map(|i| {
                let key = Key {
                    pk: keys::inventory_of(ws, tenant, &i.object_type),
                    sk: i.object_id.clone(),
                };
                Self::put_request(with_key(to_item("inventory item", i)?, &key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Every observed object of a type, deleted ones included.
    pub async fn inventory(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        object_type: &str,
    ) -> Result<Vec<InventoryItem>, StoreError> {
        self.partition(keys::inventory_of(ws, tenant, object_type), None, None)
            .await?
            .into_iter()
            .map(|i| from_item("inventory item", i))
            .collect()
    }

    /// Marks objects of a type that `run` did not see as deleted. Conditional on the object
    /// still carrying the run that last saw it, so a newer sync is never overwritten.
    pub async fn mark_unseen_deleted(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        object_type: &str,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut marked = 0;
        for item in self.inventory(ws, tenant, object_type).await? {
            if item.deleted || item.last_seen_run == run {
                continue;
            }
            let mut p = Placeholders::default();
            let update = format!(
                "SET {} = {}, {} = {}",
                p.name("deleted"),
                p.value(AttributeValue::Bool(true)),
                p.name("deleted_at"),
                p.value(s(tenantops_core::time::format(now)))
            );
            let cond = format!(
                "{} = {}",
                p.name("last_seen_run"),
                p.value(s(item.last_seen_run.to_string()))
            );
            let key = Key {
                pk: keys::inventory_of(ws, tenant, object_type),
                sk: item.object_id.clone(),
            };
            let result = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key.to_item()))
                .update_expression(update)
                .condition_expression(cond)
                .set_expression_attribute_names(p.names())
                .set_expression_attribute_values(p.values())
                .send()
                .await;
            match result {
                Ok(_) => marked += 1,
                Err(e) => {
                    let err = StoreError::dynamo("UpdateItem", e);
                    if !err.is_condition_check_failed() {
                        return Err(err);
                    }
                }
            }
        }
        Ok(marked)
    }

    /// Upserts directory entries into a cache partition (`keys::groups_of` or
    /// `keys::role_definitions_of`).
    pub async fn put_directory(
        &self,
        partition: String,
        entries: &[DirectoryEntry],
    ) -> Result<(), StoreError> {
        let requests = entries
            .iter()
            .map(|e| {
                let key = Key {
                    pk: partition.clone(),
                    sk: e.id.clone(),
                };
                Self::put_request(with_key(to_item("directory entry", e)?, &key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Removes directory entries by id.
    pub async fn delete_directory(
        &self,
        partition: String,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let requests = ids
            .iter()
            .map(|id| {
                let key = Key {
                    pk: partition.clone(),
                    sk: id.clone(),
                };
                Ok(WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key.to_item()))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    /// A page of a tenant's observed objects of one type (by object id, descending).
    pub async fn inventory_page(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        object_type: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<InventoryItem>, Option<String>), StoreError> {
        let pk = keys::inventory_of(ws, tenant, object_type);
        self.page_of(
            pk,
            Vec::new(),
            Placeholders::default(),
            limit,
            after,
            "inventory item",
        )
        .await
    }

    /// Cached groups whose name starts with `prefix` (case-insensitive), for restore mapping.
    pub async fn search_groups(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        prefix: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<DirectoryEntry>, Option<String>), StoreError> {
        let mut p = Placeholders::default();
        let filter = format!(
            "begins_with({}, {})",
            p.name("name_lower"),
            p.value(s(prefix.to_lowercase()))
        );
        self.page_of(
            keys::groups_of(ws, tenant),
            vec![filter],
            p,
            limit,
            after,
            "directory entry",
        )
        .await
    }

    async fn page_of<T: for<'de> Deserialize<'de>>(
        &self,
        pk: String,
        filters: Vec<String>,
        mut p: Placeholders,
        limit: usize,
        after: Option<String>,
        what: &'static str,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let cond = format!("{} = {}", p.name(keys::PK), p.value(s(pk.clone())));
        let start = after.map(|sk| Key { pk: pk.clone(), sk }.to_item());
        let (items, last) = self
            .query_newest_first(None, cond, filters, p, limit, start)
            .await?;
        let next = last.and_then(|k| k.get(keys::SK).and_then(|v| v.as_s().ok()).cloned());
        let items = items
            .into_iter()
            .map(|i| from_item(what, i))
            .collect::<Result<_, _>>()?;
        Ok((items, next))
    }

    /// Every entry of a directory cache partition.
    pub async fn directory(&self, partition: String) -> Result<Vec<DirectoryEntry>, StoreError> {
        self.partition(partition, None, None)
            .await?
            .into_iter()
            .map(|i| from_item("directory entry", i))
            .collect()
    }

    pub async fn sync_state(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        what: &str,
    ) -> Result<Option<String>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(keys::sync_state(ws, tenant, what).to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("link").and_then(|v| v.as_s().ok()).cloned()))
    }

    pub async fn put_sync_state(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        what: &str,
        link: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = keys::sync_state(ws, tenant, what);
        match link {
            Some(link) => {
                let item = with_key(HashMap::from([("link".to_owned(), s(link))]), &key);
                self.client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("PutItem", e))?;
            }
            None => {
                self.client()
                    .delete_item()
                    .table_name(self.table())
                    .set_key(Some(key.to_item()))
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
            }
        }
        Ok(())
    }

    pub async fn put_notification(&self, n: &Notification) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(notification_item(n)?))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", e))?;
        Ok(())
    }

    /// A user's notifications, newest first.
    pub async fn notifications(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} = {}",
            p.name(keys::PK),
            p.value(s(keys::notifications_of(user)))
        );
        let (items, _) = self
            .query_newest_first(None, cond, Vec::new(), p, limit, None)
            .await?;
        items
            .into_iter()
            .map(|i| from_item("notification", i))
            .collect()
    }
}
