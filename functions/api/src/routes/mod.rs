mod common;
pub mod operations;
pub mod tenants;
pub mod workspaces;
