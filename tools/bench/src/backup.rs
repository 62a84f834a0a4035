//! Backup throughput: a backup of every backup-capable type of a generated tenant, through the
//! worker against graph-sim with Microsoft's documented throttling. Unlike an inventory sync
//! (one request per page), a backup reads every object (settings, definition values, script
//! content, assignments), so it is bound by the Graph budget: this is where the client's use
//! of the budget shows, and where Graph requests per backed-up object are counted.

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_graph::registry::{Budget, ObjectType};

pub const BACKUP_OBJECTS: usize = 1_000;

/// The backup's types with objects (Intune's), and the ones present but empty (Conditional
/// Access allows one request per second per tenant, which would measure that limit instead
/// of the worker; an ad-hoc backup still lists them).
pub fn backup_types() -> (Vec<&'static ObjectType>, Vec<&'static ObjectType>) {
    ObjectType::inventory()
        .filter(|t| t.backup)
        .partition(|t| t.budget == Budget::Intune)
}

pub async fn backup_throughput() -> anyhow::Result<Value> {
    let (types, empty) = backup_types();
    crate::graph_run::measure(
        &types,
        &empty,
        BACKUP_OBJECTS,
        json!({ "type": "backup_schedule.run_now" }),
        Duration::from_secs(900),
    )
    .await
}
