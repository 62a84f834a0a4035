//! Data migrations for a deployment upgraded in place: one-off, idempotent, run by an
//! operator (`cargo xtask migrate`), never by a request or a tick. The only code that Scans
//! the table (a tidy test holds that): a migration must see items no index lists yet.
//!
//! - `platform-index`: run and workspace items written before the system plane existed get
//!   their `GSI5` keys (the same keys new items get at creation), so the system plane lists
//!   them. Each item is updated only if it still lacks them, so a rerun, or a run beside live
//!   traffic, changes nothing twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{Item, string_attr, string_of};
use crate::keys::{self, Key};
use crate::table::Store;

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Items read by the scan (only those that lacked the keys are returned by its filter).
    pub found: u64,
    /// Items this run updated.
    pub updated: u64,
}

/// The GSI5 keys an item should carry, if it is a run or a workspace.
fn platform_keys(item: &Item) -> Option<(Key, String, String)> {
    let key = Key {
        pk: string_of(item, keys::PK)?.clone(),
        sk: string_of(item, keys::SK)?.clone(),
    };
    let (pk, sk) = keys::platform_index_of(&key)?;
    Some((key, pk, sk))
}

impl Store {
    /// Gives every run and workspace item that lacks them its `GSI5` keys.
    pub async fn migrate_platform_index(&self) -> Result<Migrated, StoreError> {
        let mut done = Migrated::default();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut p = Placeholders::default();
            let filter = format!(
                "{} AND ({} OR {})",
                p.absent(keys::GSI5_PK),
                p.eq(keys::SK, string_attr(keys::RUN_SORT)),
                p.eq(keys::SK, string_attr(keys::WORKSPACE_SORT)),
            );
            let out = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression(filter)
                .set_expression_attribute_names(p.names())
                .set_expression_attribute_values(p.values())
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                done.found += 1;
                let Some((key, pk, sk)) = platform_keys(&item) else {
                    continue;
                };
                let mut p = Placeholders::default();
                let cond = format!("{} AND {}", p.exists(keys::PK), p.absent(keys::GSI5_PK));
                let update = Changes::default()
                    .set_top(keys::GSI5_PK, string_attr(pk))
                    .set_top(keys::GSI5_SK, string_attr(sk))
                    .render(&mut p);
                if self.update_where(&key, update, cond, p).await? {
                    done.updated += 1;
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(done);
            }
        }
    }
}
