//! The store handle and the few call shapes every aggregate uses on its one table: a read of
//! one item, conditional single-item writes, index and partition queries page by page, and
//! batch writes. Transactions are in [`crate::transactions`].

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest,
};
use futures::FutureExt;
use serde::Deserialize;

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{Index, Item, from_item, string_attr};
use crate::keys::{self, Key};

/// Index queries one list request may make to fill a page through filters.
const MAX_QUERY_ROUNDS: usize = 8;
/// BatchWriteItem's limit.
const BATCH_WRITE: usize = 25;

#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

/// One Query: which index, its key condition and filter over `p`'s placeholders, and which
/// way and how consistently it reads.
#[derive(Debug)]
pub(crate) struct Query {
    pub index: Option<Index>,
    pub key_cond: String,
    pub filter: Option<String>,
    pub p: Placeholders,
    /// Newest (highest sort key) first.
    pub backwards: bool,
    pub consistent: bool,
    /// Queries [`Store::query_filling`] may make to fill a page through filters.
    pub rounds: usize,
}

impl Query {
    pub fn new(index: Option<Index>, key_cond: String, p: Placeholders) -> Self {
        Self {
            index,
            key_cond,
            filter: None,
            p,
            backwards: false,
            consistent: false,
            rounds: MAX_QUERY_ROUNDS,
        }
    }

    /// The items of the table's partition `pk`, filtered by every one of `filters`.
    pub fn partition(pk: String, filters: Vec<String>, mut p: Placeholders) -> Self {
        let key_cond = p.eq(keys::PK, string_attr(pk));
        Self::new(None, key_cond, p).filtered(filters)
    }

    /// Keeps only items matching every one of `filters`.
    pub fn filtered(mut self, filters: Vec<String>) -> Self {
        self.filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        self
    }

    pub fn newest_first(mut self) -> Self {
        self.backwards = true;
        self
    }

    /// Fills a page however many queries it takes.
    pub fn unbounded(mut self) -> Self {
        self.rounds = usize::MAX;
        self
    }

    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }
}

/// The SDK's answer to a conditional write: `Ok(None)` when only its condition failed.
fn unless_condition_failed<T, E, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            let err = StoreError::dynamo(operation, e);
            if err.is_condition_check_failed() {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn get_request(&self, key: &Key, consistent: bool) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .set_consistent_read(consistent.then_some(true))
    }

    // The single-call helpers below return the SDK's future mapped, not an `async fn` around
    // it: one generator less per call keeps the functions' futures shallow enough for rustc's
    // layout recursion limit.

    /// One item by key; `consistent`: a strongly consistent read.
    pub(crate) fn get_item(
        &self,
        key: &Key,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send + use<> {
        self.get_request(key, consistent).send().map(|result| {
            result
                .map(|out| out.item)
                .map_err(|e| StoreError::dynamo("GetItem", e))
        })
    }

    /// Up to 100 items by key in one consistent `BatchGetItem`, in the order asked for
    /// (`None`: no such item). `Ok(None)` when DynamoDB left some keys unprocessed: the caller
    /// decides without them.
    pub(crate) async fn get_consistently<const N: usize>(
        &self,
        keys: [&Key; N],
    ) -> Result<Option<[Option<Item>; N]>, StoreError> {
        let mut ask = KeysAndAttributes::builder().consistent_read(true);
        for key in keys {
            ask = ask.keys(key.to_item());
        }
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, ask.build().map_err(build_error)?)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("BatchGetItem", e))?;
        if out
            .unprocessed_keys
            .as_ref()
            .is_some_and(|u| u.values().any(|k| !k.keys.is_empty()))
        {
            return Ok(None);
        }
        let mut found = out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        Ok(Some(keys.map(|key| {
            let at = found.iter().position(|item| {
                item.get(crate::keys::PK).and_then(|v| v.as_s().ok()) == Some(&key.pk)
                    && item.get(crate::keys::SK).and_then(|v| v.as_s().ok()) == Some(&key.sk)
            });
            at.map(|i| found.swap_remove(i))
        })))
    }

    /// The items at `keys` that exist (only the attributes `projection` names), read
    /// consistently, 100 keys to a `BatchGetItem`; keys DynamoDB leaves unprocessed are asked
    /// again after a short pause.
    pub(crate) async fn get_all_consistently(
        &self,
        keys: &[Key],
        projection: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        let mut p = Placeholders::default();
        let projected: Vec<String> = projection.iter().map(|a| p.name(a)).collect();
        let projected = projected.join(", ");
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(Key::to_item).collect();
            for attempt in 0u32.. {
                let ask = KeysAndAttributes::builder()
                    .consistent_read(true)
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .projection_expression(projected.clone())
                    .set_expression_attribute_names(p.names())
                    .build()
                    .map_err(build_error)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("BatchGetItem", e))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(crate::transactions::contention());
                }
                tokio::time::sleep(crate::transactions::backoff(attempt)).await;
            }
        }
        Ok(found)
    }

    /// One item by key as its record, read consistently.
    pub(crate) fn get_as<T: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        key: &Key,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + use<T> {
        self.get_request(key, true).send().map(move |result| {
            let out = result.map_err(|e| StoreError::dynamo("GetItem", e))?;
            out.item.map(|i| from_item(what, i)).transpose()
        })
    }

    /// An unconditional PutItem.
    pub(crate) fn put(
        &self,
        item: Item,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + use<> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        request.send().map(|result| {
            result
                .map(|_| ())
                .map_err(|e| StoreError::dynamo("PutItem", e))
        })
    }

    /// A PutItem under `cond`; `false`: the condition failed and nothing was written.
    pub(crate) fn put_if(
        &self,
        item: Item,
        cond: String,
        p: Placeholders,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + use<> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values());
        request
            .send()
            .map(|result| Ok(unless_condition_failed("PutItem", result)?.is_some()))
    }

    fn update_request(
        &self,
        key: &Key,
        update: String,
        cond: Option<String>,
        p: &Placeholders,
    ) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .set_condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
    }

    /// An UpdateItem, under `cond` if any. `Ok(None)`: the condition failed. `Ok(Some(old))`:
    /// written; `old` is the item as it was when `return_old`, else empty.
    pub(crate) fn update_if(
        &self,
        key: &Key,
        update: String,
        cond: Option<String>,
        p: Placeholders,
        return_old: bool,
    ) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send + use<> {
        let request = self
            .update_request(key, update, cond, &p)
            .set_return_values(return_old.then_some(ReturnValue::AllOld));
        request.send().map(|result| {
            Ok(unless_condition_failed("UpdateItem", result)?
                .map(|out| out.attributes.unwrap_or_default()))
        })
    }

    /// An UpdateItem under `cond`; `false`: the condition failed and nothing was written.
    pub(crate) fn update_where(
        &self,
        key: &Key,
        update: String,
        cond: String,
        p: Placeholders,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + use<> {
        let request = self.update_request(key, update, Some(cond), &p);
        request
            .send()
            .map(|result| Ok(unless_condition_failed("UpdateItem", result)?.is_some()))
    }

    /// An unconditional DeleteItem.
    pub(crate) fn delete(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + use<> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()));
        request.send().map(|result| {
            result
                .map(|_| ())
                .map_err(|e| StoreError::dynamo("DeleteItem", e))
        })
    }

    /// A DeleteItem under `cond`; `false`: the condition failed and nothing was deleted.
    pub(crate) fn delete_if(
        &self,
        key: &Key,
        cond: String,
        p: Placeholders,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + use<> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values());
        request
            .send()
            .map(|result| Ok(unless_condition_failed("DeleteItem", result)?.is_some()))
    }

    fn query_request(
        &self,
        q: &Query,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(|i| i.name().to_owned()))
            .key_condition_expression(&q.key_cond)
            .set_filter_expression(q.filter.clone())
            .set_expression_attribute_names(q.p.names())
            .set_expression_attribute_values(q.p.values())
            .set_scan_index_forward(q.backwards.then_some(false))
            .set_consistent_read(q.consistent.then_some(true))
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start)
    }

    /// One page of a query: up to `limit` items after `start`, and where the next page starts.
    pub(crate) async fn query_page(
        &self,
        q: &Query,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let out = self
            .query_request(q, limit, start)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Up to `limit` items after `start`, in at most `q.rounds` queries (filters may leave a
    /// page short). Returns the items and the last evaluated key, where the next page starts.
    pub(crate) async fn query_filling(
        &self,
        q: Query,
        limit: usize,
        mut start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut items = Vec::new();
        for _ in 0..q.rounds {
            let want = limit.saturating_sub(items.len()).max(1);
            let out = self
                .query_request(&q, Some(want), start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        Ok((items, start))
    }

    /// Every item of a partition (of the table or of `index`), or only those whose sort key
    /// starts with `prefix`.
    pub(crate) async fn partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        index: Option<Index>,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_attr, sk_attr) = match index {
            Some(i) => (i.pk(), i.sk()),
            None => (keys::PK, keys::SK),
        };
        let mut p = Placeholders::default();
        let mut cond = p.eq(pk_attr, string_attr(pk));
        if let Some(prefix) = prefix {
            cond = format!(
                "{cond} AND begins_with({}, {})",
                p.name(sk_attr),
                p.value(string_attr(prefix))
            );
        }
        let q = Query::new(index, cond, p);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .query_request(&q, None, start)
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

    /// Every item `q` matches, all pages: for queries bounded by their key range or by
    /// what is in flight (the active runs), never a partition's whole history.
    pub(crate) async fn query_all(&self, q: Query) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, last) = self.query_page(&q, None, start.take()).await?;
            items.extend(page);
            start = last;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// How many items `q` matches (`Select: COUNT`, every page): for aggregates over a
    /// bounded key range, never a whole table.
    pub(crate) async fn count(&self, q: &Query) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = self
                .query_request(q, None, start.take())
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            total += u64::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }

    /// Writes in batches of 25, retrying unprocessed ones.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
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
}

/// A batch write that puts `item`.
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

/// A batch write that deletes the item at `key`.
pub(crate) fn delete_request(key: &Key) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key.to_item()))
                .build()
                .map_err(build_error)?,
        )
        .build())
}

/// A request the SDK's builder refused (a required field missing).
pub(crate) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation: "request",
        code: None,
        source: Box::new(e),
    }
}
