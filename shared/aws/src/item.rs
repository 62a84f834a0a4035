//! The item layer: attribute values in the domain's words, records to and from items, and
//! the key attributes (primary and index keys, from [`crate::keys`]) an item carries.
//! Expressions over items are built in [`crate::expr`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::{self, Key};

/// One DynamoDB item (or key, or old image).
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn string_attr(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A timestamp as the store writes it (`tenantops_core::time`, which sorts as a string).
pub(crate) fn time_attr(at: DateTime<Utc>) -> AttributeValue {
    string_attr(tenantops_core::time::format(at))
}

pub(crate) fn number_attr(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub(crate) fn bool_attr(b: bool) -> AttributeValue {
    AttributeValue::Bool(b)
}

/// A string set of one member (for `ADD` and `DELETE`).
pub(crate) fn string_set_attr(member: impl Into<String>) -> AttributeValue {
    AttributeValue::Ss(vec![member.into()])
}

/// Any serializable value as one attribute (a map, a list, an enum's string).
pub(crate) fn value_attr<T: Serialize + ?Sized>(
    what: &'static str,
    v: &T,
) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::mapping(what, e))
}

/// The string attribute `attr` of an item, if it has one.
pub(crate) fn string_of<'i>(item: &'i Item, attr: &str) -> Option<&'i String> {
    item.get(attr).and_then(|v| v.as_s().ok())
}

pub(crate) fn to_item<T: Serialize>(what: &'static str, v: &T) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(v).map_err(|e| StoreError::mapping(what, e))?;
    // Absent rather than NULL, so `if_not_exists` and `attribute_exists` mean what they say.
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    Ok(item)
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    item: Item,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::mapping(what, e))
}

/// Every item as its record.
pub(crate) fn from_items<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    items: Vec<Item>,
) -> Result<Vec<T>, StoreError> {
    items.into_iter().map(|i| from_item(what, i)).collect()
}

/// The item with its primary key.
pub(crate) fn with_key(mut item: Item, key: &Key) -> Item {
    item.extend(key.to_item());
    item
}

/// A record's item under its primary key.
pub(crate) fn keyed_item<T: Serialize>(
    what: &'static str,
    v: &T,
    key: &Key,
) -> Result<Item, StoreError> {
    Ok(with_key(to_item(what, v)?, key))
}

/// A secondary index of the table, by its key attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// Runs of a workspace; memberships of a user; due schedules.
    Gsi1,
    /// Runs of a tenant.
    Gsi2,
    /// Active runs by deadline.
    Gsi3,
    /// Runs of a tenant of one operation type.
    Gsi4,
    /// Every run (sharded) and every workspace: the system plane's lists.
    Gsi5,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Index::Gsi1 => keys::GSI1,
            Index::Gsi2 => keys::GSI2,
            Index::Gsi3 => keys::GSI3,
            Index::Gsi4 => keys::GSI4,
            Index::Gsi5 => keys::GSI5,
        }
    }

    pub fn pk(self) -> &'static str {
        match self {
            Index::Gsi1 => keys::GSI1_PK,
            Index::Gsi2 => keys::GSI2_PK,
            Index::Gsi3 => keys::GSI3_PK,
            Index::Gsi4 => keys::GSI4_PK,
            Index::Gsi5 => keys::GSI5_PK,
        }
    }

    pub fn sk(self) -> &'static str {
        match self {
            Index::Gsi1 => keys::GSI1_SK,
            Index::Gsi2 => keys::GSI2_SK,
            Index::Gsi3 => keys::GSI3_SK,
            Index::Gsi4 => keys::GSI4_SK,
            Index::Gsi5 => keys::GSI5_SK,
        }
    }
}

/// The item with its key in `index` (partition `pk`, sort key `sk`).
pub(crate) fn with_index(mut item: Item, index: Index, pk: String, sk: String) -> Item {
    item.insert(index.pk().into(), string_attr(pk));
    item.insert(index.sk().into(), string_attr(sk));
    item
}
