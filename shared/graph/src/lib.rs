//! tenantops's one Microsoft Graph client and its contract registry.
//!
//! Every Graph call goes through [`GraphClient`] and an [`registry::ObjectType`]: tokens per
//! (tenant, app) cached until shortly before expiry; per-tenant budgets sized under Microsoft's
//! documented limits; `Retry-After` honoured for the whole budget, full-jitter backoff without
//! it, and a handback (`GraphError::Throttled`) instead of a long sleep; paging to the end of
//! `@odata.nextLink`; errors classified by status and Graph error code, never by message.
//! `functions/api` does not depend on this crate: read and start paths cannot call Graph.

pub mod client;
pub mod error;
pub mod registry;
pub mod requests;
pub mod sanitize;
pub mod throttle;

pub use client::{Credentials, GraphClient, GraphConfig, Page};
pub use error::GraphError;
pub use registry::{ObjectType, REGISTRY};
