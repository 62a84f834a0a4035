//! What workers learn about a tenant: the last observed inventory, and the directory caches
//! (groups, role definitions) and their sync state. Only metadata and small whitelisted
//! fields; never payloads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::{RunId, TenantId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{bool_attr, from_items, keyed_item, string_attr, string_of, time_attr, with_key};
use crate::keys::{self, Key};
use crate::table::{Query, Store, delete_request, put_request};

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

impl Store {
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
                put_request(keyed_item("inventory item", i, &key)?)
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
        let items = self
            .partition(keys::inventory_of(ws, tenant, object_type), None, None)
            .await?;
        from_items("inventory item", items)
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
            let update = Changes::default()
                .set(&["deleted"], bool_attr(true))
                .set(&["deleted_at"], time_attr(now))
                .render(&mut p);
            let cond = p.eq("last_seen_run", string_attr(item.last_seen_run.to_string()));
            let key = Key {
                pk: keys::inventory_of(ws, tenant, object_type),
                sk: item.object_id.clone(),
            };
            if self.update_where(&key, update, cond, p).await? {
                marked += 1;
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
                put_request(keyed_item("directory entry", e, &key)?)
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
                delete_request(&Key {
                    pk: partition.clone(),
                    sk: id.clone(),
                })
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
            p.value(string_attr(prefix.to_lowercase()))
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
        p: Placeholders,
        limit: usize,
        after: Option<String>,
        what: &'static str,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let start = after.map(|sk| Key { pk: pk.clone(), sk }.to_item());
        let (items, last) = self
            .query_filling(
                Query::partition(pk, filters, p).newest_first(),
                limit,
                start,
            )
            .await?;
        let next = last.and_then(|k| string_of(&k, keys::SK).cloned());
        let items = from_items(what, items)?;
        Ok((items, next))
    }

    /// Every entry of a directory cache partition.
    pub async fn directory(&self, partition: String) -> Result<Vec<DirectoryEntry>, StoreError> {
        let items = self.partition(partition, None, None).await?;
        from_items("directory entry", items)
    }

    pub async fn sync_state(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        what: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_item(&keys::sync_state(ws, tenant, what), true)
            .await?
            .and_then(|i| string_of(&i, "link").cloned()))
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
                let item = with_key(
                    HashMap::from([("link".to_owned(), string_attr(link))]),
                    &key,
                );
                self.put(item).await
            }
            None => self.delete(&key).await,
        }
    }
}
