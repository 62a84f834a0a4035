pub mod backups;
mod common;
pub mod openapi;
pub mod operations;
pub mod restores;
pub mod schedules;
pub mod tenant_data;
pub mod tenants;
pub mod workspaces;
