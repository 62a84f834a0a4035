//! The API's route modules, one per resource family. They share what they need through
//! `common.rs` and the modules above them (`launch`, `error`, `run_list`, `tenant_state`), never through each other.

pub mod backups;
pub mod batches;
mod common;
pub mod drift;
pub mod openapi;
pub mod operations;
pub mod restores;
pub mod schedules;
pub mod system;
pub mod tenant_data;
pub mod tenants;
pub mod webhooks;
pub mod workspaces;
