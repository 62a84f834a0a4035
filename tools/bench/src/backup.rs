//! Backup throughput: a backup of every backup-capable type of a generated tenant, through the
//! worker against graph-sim with Microsoft's documented throttling. Unlike an inventory sync
//! (one request per page), a backup reads every object (settings, definition values, script
//! content, assignments), so it is bound by the Graph budget: this is where the client's use
//! of the budget shows.

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_graph::registry::{Budget, ObjectType};

pub const BACKUP_OBJECTS: usize = 1_000;

pub async fn backup_throughput() -> anyhow::Result<Value> {
    // Objects in Intune types only (an ad-hoc backup also lists the empty Conditional Access
    // collections): Conditional Access allows one request per second per tenant, which would
    // measure that limit instead of the worker.
    let (types, empty): (Vec<&ObjectType>, Vec<&ObjectType>) = ObjectType::inventory()
        .filter(|t| t.backup)
        .partition(|t| t.budget == Budget::Intune);
    crate::graph_run::measure(
        &types,
        &empty,
        BACKUP_OBJECTS,
        json!({ "type": "backup_schedule.run_now" }),
        Duration::from_secs(900),
    )
    .await
}
