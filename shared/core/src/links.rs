//! The only place that mints operations URLs. Paths are relative to the API's base URL, so
//! they stay right behind any custom domain or stage. A tidy test fails if other code
//! builds these paths itself.

use serde::Serialize;

use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::run::Run;

/// The canonical, tenantless run viewer.
pub fn view(run: RunId) -> String {
    format!("/v1/operations/{run}")
}

/// Where a run is cancelled.
pub fn cancel(run: RunId) -> String {
    format!("{}/cancel", view(run))
}

/// A workspace's runs, optionally narrowed to one tenant.
pub fn collection(ws: WorkspaceId, tenant: Option<TenantId>) -> String {
    match tenant {
        Some(t) => format!("/v1/workspaces/{ws}/operations?tenant={t}"),
        None => format!("/v1/workspaces/{ws}/operations"),
    }
}

/// Where runs of a tenant are started.
pub fn start(ws: WorkspaceId, tenant: TenantId) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}/operations")
}

/// The links a run response carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunLinks {
    pub view: String,
    pub collection: String,
    pub tenant_runs: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

/// Every link related to `run`.
pub fn related(run: &Run) -> RunLinks {
    RunLinks {
        view: view(run.id),
        collection: collection(run.workspace_id, None),
        tenant_runs: collection(run.workspace_id, Some(run.tenant_id)),
        retry_of: run.context.retry_of.map(view),
    }
}
