//! tenantops on AWS: the DynamoDB store (runs, locks, workspaces, tenants, members, audit),
//! SQS dispatch and SDK configuration.
//!
//! # Table design
//!
//! One table, keys built only in [`keys`]. Items:
//!
//! | item | PK | SK | GSI1 (PK / SK) | GSI2 (PK / SK) |
//! |---|---|---|---|---|
//! | run | `RUN#{run}` | `RUN` | `WS#{ws}#RUNS` / `{run}` | `WS#{ws}#T#{tenant}#RUNS` / `{run}` |
//! | identity lock | `LOCK#{identity}` | `LOCK` | | |
//! | workspace | `WS#{ws}` | `WORKSPACE` | | |
//! | member | `WS#{ws}` | `MEMBER#{user}` | `USER#{user}` / `WS#{ws}` | |
//! | tenant | `WS#{ws}` | `TENANT#{tenant}` | | |
//! | provider connection | `WS#{ws}` | `CONN#{tenant}#{connection}` | | |
//! | Entra tenant claim | `ENTRA#{guid}` | `CLAIM` | | |
//! | audit entry | `WS#{ws}#AUDIT` | `{entry ulid}` | | |
//! | backup schedule | `WS#{ws}` | `SCHEDULE#{tenant}#{id}` | while enabled: `SCHEDULES#DUE#{shard}` / `{next_fire_at}#{id}` | |
//! | backup set, manifest entry, latest snapshot, snapshot references | see [`backups`] | | | |
//! | restore, restore item, inventory stamp | see [`restores`] | | | |
//!
//! Run ids are ULIDs, so the index sort keys order runs by creation time: "newest first" is a
//! backwards index query, never a Scan. The lock item carries a copy of its run (kept in step
//! by every transition, in the same transaction) so that a dedupe hit is answered from the
//! failed condition's `ALL_OLD` image: one call, no second read. Locks expire through the
//! `expires_at` TTL attribute only once their run is finished.
//!
//! A queued or running run also carries `GSI3PK = ACTIVE#{shard}` and `GSI3SK =
//! {deadline}#{run}` (see [`reaping`]): the sparse index the reaper queries for runs past
//! their deadline. Every transition keeps it in the same write; a finish removes it.

pub mod admin;
mod announce;
pub mod backups;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod events;
mod expr;
pub mod keys;
pub mod queue;
pub mod reaping;
pub mod restores;
pub mod schedules;
pub mod schema;
pub mod secrets;
pub mod snapshots;
pub mod store;
pub mod tenant_data;

pub use admin::{
    AuditQuery, ConnectionRecord, MemberRecord, MemberWrite, MembershipView, WorkspaceRecord,
    WorkspaceSettings,
};
pub use announce::announce_completed;
pub use backups::{BackupSetPage, LatestSnapshot, ManifestPage, Recorded};
pub use dispatch::{DispatchError, Dispatcher, RunMessage};
pub use error::StoreError;
pub use queue::{DeadLetters, QueueError, Received, WorkQueue};
pub use secrets::{SecretVault, SecretsError};
pub use snapshots::{SnapshotError, SnapshotStore, Stored};
pub use store::{
    AuditEntry, MemberGuard, Precondition, Rejection, RunPage, RunQuery, StartRun, Started, Store,
    TenantRecord, TenantStatus, WriteError,
};
pub use tenant_data::{DirectoryEntry, InventoryItem, Notification};
