//! tenantops on AWS: the DynamoDB store (runs, locks, workspaces, tenants, members, audit,
//! backups, restores, schedules), the snapshot bucket, SQS (dispatch, hand-back, dead letters) and SDK configuration.
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
//! | backup set, manifest entry, latest snapshot | see [`backups`] | | | |
//! | snapshot references | see [`snapshot_refs`] | | | |
//! | restore, restore item, inventory stamp | see [`restores`] | | | |
//! | drift report, drift item | see [`drift`] | | | |
//! | webhook subscription | `WS#{ws}` | `WEBHOOK#{id}` | | |
//! | webhook subscription count | `WS#{ws}#WEBHOOKS` | `COUNT` | | |
//! | webhook delivery (TTL) | `WS#{ws}#WEBHOOK#{id}` | `{created_at}#{delivery}` | | |
//!
//! Run ids are ULIDs, so the index sort keys order runs by creation time: "newest first" is a
//! backwards index query, never a Scan. The lock item carries a copy of its run (kept in step
//! by every transition, in the same transaction) so that a dedupe hit is answered from the
//! failed condition's `ALL_OLD` image: one call, no second read. Locks expire through the
//! `expires_at` TTL attribute only once their run is finished.
//!
//! A run also carries `GSI4PK = WS#{ws}#T#{tenant}#TYPE#{type}#RUNS` / `GSI4SK = {run}`: a
//! tenant's runs of one type, so the latest run of a type (a connection's last check,
//! onboarding's last inventory) is found however many runs of other types are newer. Runs
//! written before GSI4 existed carry no GSI4 keys and are not listed by a one-type query.
//!
//! A queued or running run also carries `GSI3PK = ACTIVE#{shard}` and `GSI3SK = {due}#{run}`
//! (see [`reaping`]): the sparse index the reaper queries for runs past its thresholds (`due`
//! is a queued run's latest dispatch, a running run's lease end or resume time). Every
//! transition keeps it in the same write; a finish removes it. A run's `dispatch` attribute
//! is its dispatch generation (see [`dispatch`]).
//!
//! # Modules
//!
//! Each aggregate's items are written and read in one module, on top of the item layer:
//!
//! | layer | modules |
//! |---|---|
//! | item layer | `item` (attribute values, records to and from items, index keys), `expr` (the one condition and update-expression builder: placeholders only), `table` (the [`Store`] handle: reads, conditional single-item writes, queries, batch writes), `transactions` (TransactWriteItems, membership and tenant guards, cancellation reasons as a [`Rejection`]) |
//! | runs | [`runs`] (start, reads, listing), `transitions` (the state machine's conditional writes), [`reaping`] (stale runs) |
//! | workspaces | [`workspaces`] (workspaces and members), [`tenants`] (tenants, Entra claims), [`connections`], [`audit`] |
//! | tenant work | [`notifications`], [`tenant_data`] (inventory, directory caches, sync state), [`schedules`], [`backups`], [`snapshot_refs`], [`restores`], [`previews`], [`drift`], [`webhooks`] |
//! | other services | [`snapshots`] (S3), [`secrets`], [`dispatch`] (SQS: the work message), [`queue`] (SQS: hand-back, dead letters), [`webhook_queue`] (SQS: webhook deliveries), [`events`] (EventBridge), [`config`] |
//!
//! [`store`] re-exports the store's types under the paths other crates use.

pub mod audit;
pub mod backups;
pub mod batches;
pub mod config;
pub mod connections;
pub mod dispatch;
pub mod drift;
pub mod error;
pub mod events;
mod expr;
mod item;
pub mod keys;
pub mod migrations;
pub mod notifications;
pub mod platform;
pub mod previews;
pub mod queue;
pub mod reaping;
pub mod restores;
pub mod runs;
pub mod schedules;
pub mod schema;
pub mod secrets;
pub mod slots;
pub mod snapshot_refs;
pub mod snapshots;
pub mod starts;
pub mod store;
mod table;
pub mod tenant_data;
pub mod tenants;
mod transactions;
mod transitions;
pub mod webhook_queue;
pub mod webhooks;
pub mod workspaces;

pub use audit::{AuditEntry, AuditQuery};
pub use backups::{BackupSetPage, LatestSnapshot, ManifestPage, Recorded};
pub use connections::ConnectionRecord;
pub use dispatch::{DispatchError, Dispatched, Dispatcher, RunMessage};
pub use error::StoreError;
pub use notifications::{Notification, announce_completed};
pub use queue::{Backlog, DeadLetters, QueueError, Received, WorkQueue};
pub use secrets::{SecretVault, SecretsError};
pub use snapshots::{SnapshotError, SnapshotStore, Stored};
pub use store::{
    MemberGuard, Precondition, ProblemFilter, Progressed, Rejection, RunPage, RunQuery, StartQuota,
    StartRun, Started, Store, TenantRecord, TenantStatus, WriteError,
};
pub use tenant_data::{DirectoryEntry, InventoryItem};
pub use workspaces::{
    MemberRecord, MemberWrite, MembershipView, WorkspaceRecord, WorkspaceSettings,
};
