mod common;
pub mod openapi;
pub mod operations;
pub mod schedules;
pub mod restores;
pub mod tenant_data;
pub mod tenants;
pub mod workspaces;
