//! The only place that mints operations URLs, in two families: the admin plane's (a
//! workspace's members) and the system plane's (platform operators). Paths are relative to
//! the API's base URL, so they stay right behind any custom domain or stage. A tidy test
//! fails if other code builds these paths itself. Neither family ever links into the other:
//! a system-plane reply carries system links only, and an admin-plane reply admin links only.

use serde::Serialize;

use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::operation::OperationType;
use crate::problem::ProblemClass;
use crate::run::{Run, RunStatus};

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

/// A workspace's runs of one problem class (the admin plane), optionally of one tenant.
pub fn problem_collection(
    ws: WorkspaceId,
    tenant: Option<TenantId>,
    problem: ProblemClass,
) -> String {
    let base = collection(ws, tenant);
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}problem={}", problem.as_str())
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

/// The system plane's view of any run.
/// A batch of the workspace (its progress and children).
pub fn batch(ws: WorkspaceId, batch: crate::BatchId) -> String {
    format!("/v1/workspaces/{ws}/batches/{batch}")
}

/// Where a batch's failed children are retried (as a new batch).
pub fn batch_retry(ws: WorkspaceId, id: crate::BatchId) -> String {
    format!("{}/retry", batch(ws, id))
}

/// Where a restore batch is confirmed (executed).
pub fn batch_execute(ws: WorkspaceId, id: crate::BatchId) -> String {
    format!("{}/execute", batch(ws, id))
}

/// A restore of a tenant (its plan, then its execution).
pub fn restore(ws: WorkspaceId, tenant: TenantId, id: crate::RestoreId) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}/restores/{id}")
}

/// Where a batch is cancelled.
pub fn batch_cancel(ws: WorkspaceId, id: crate::BatchId) -> String {
    format!("{}/cancel", batch(ws, id))
}

/// A tenant's drift report.
pub fn drift_report(ws: WorkspaceId, tenant: TenantId, report: RunId) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}/drift/{report}")
}

/// A tenant's backup schedule.
pub fn tenant_schedule(ws: WorkspaceId, tenant: TenantId, id: crate::ScheduleId) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{id}")
}

/// A workspace's backup schedule.
pub fn workspace_schedule(ws: WorkspaceId, id: crate::ScheduleId) -> String {
    format!("/v1/workspaces/{ws}/backup-schedules/{id}")
}

/// A workspace's webhook subscription.
pub fn webhook(ws: WorkspaceId, id: crate::WebhookId) -> String {
    format!("/v1/workspaces/{ws}/webhooks/{id}")
}

/// A webhook subscription's delivery log.
pub fn webhook_deliveries(ws: WorkspaceId, id: crate::WebhookId) -> String {
    format!("{}/deliveries", webhook(ws, id))
}

pub fn system_view(run: RunId) -> String {
    format!("/v1/system/operations/{run}")
}

/// What a run list is narrowed to, on either plane (`workspace` on the system plane only).
/// Every filter a link carries is named here, so a collection link keeps its tenant and
/// filters (tenant continuity) without any caller building a query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilters {
    pub workspace: Option<WorkspaceId>,
    pub tenant: Option<TenantId>,
    pub operation: Option<OperationType>,
    pub status: Option<RunStatus>,
    pub active: Option<bool>,
    pub problem: Option<ProblemClass>,
}

/// Runs across every workspace, narrowed by `filters`.
pub fn system_collection(filters: &RunFilters) -> String {
    let mut query: Vec<String> = Vec::new();
    if let Some(ws) = filters.workspace {
        query.push(format!("workspace={ws}"));
    }
    if let Some(t) = filters.tenant {
        query.push(format!("tenant={t}"));
    }
    if let Some(op) = filters.operation {
        query.push(format!("type={op}"));
    }
    if let Some(st) = filters.status {
        query.push(format!("status={st}"));
    }
    if let Some(a) = filters.active {
        query.push(format!("active={a}"));
    }
    if let Some(p) = filters.problem {
        query.push(format!("problem={}", p.as_str()));
    }
    if query.is_empty() {
        "/v1/system/operations".to_owned()
    } else {
        format!("/v1/system/operations?{}", query.join("&"))
    }
}

/// Every workspace (the system plane).
pub fn system_workspaces() -> String {
    "/v1/system/workspaces".to_owned()
}

/// The system plane's view of one workspace.
pub fn system_workspace(ws: WorkspaceId) -> String {
    format!("{}/{ws}", system_workspaces())
}

/// The links a system-plane run reply carries: system routes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemRunLinks {
    pub view: String,
    pub workspace: String,
    pub workspace_runs: String,
    pub tenant_runs: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

/// Every system-plane link related to `run`.
pub fn system_related(run: &Run) -> SystemRunLinks {
    let workspace = RunFilters {
        workspace: Some(run.workspace_id),
        ..RunFilters::default()
    };
    let tenant = RunFilters {
        tenant: Some(run.tenant_id),
        ..workspace.clone()
    };
    SystemRunLinks {
        view: system_view(run.id),
        workspace: system_workspace(run.workspace_id),
        workspace_runs: system_collection(&workspace),
        tenant_runs: system_collection(&tenant),
        retry_of: run.context.retry_of.map(system_view),
    }
}

/// The links of a system-plane workspace reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemWorkspaceLinks {
    pub view: String,
    pub runs: String,
    pub problem_runs: String,
}

pub fn system_workspace_links(ws: WorkspaceId) -> SystemWorkspaceLinks {
    let runs = RunFilters {
        workspace: Some(ws),
        ..RunFilters::default()
    };
    let problems = RunFilters {
        problem: Some(ProblemClass::Failed),
        ..runs.clone()
    };
    SystemWorkspaceLinks {
        view: system_workspace(ws),
        runs: system_collection(&runs),
        problem_runs: system_collection(&problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_links_never_point_at_the_admin_plane() {
        let (ws, t) = (WorkspaceId::new(), TenantId::new());
        let all = RunFilters {
            workspace: Some(ws),
            tenant: Some(t),
            operation: Some(OperationType::ALL[0]),
            status: Some(RunStatus::Queued),
            active: Some(true),
            problem: Some(ProblemClass::Stuck),
        };
        let url = system_collection(&all);
        assert!(url.starts_with("/v1/system/operations?workspace="), "{url}");
        assert!(
            url.contains(&format!("tenant={t}")) && url.contains("problem=stuck"),
            "{url}"
        );
        for link in [url, system_view(RunId::new()), system_workspace(ws)] {
            assert!(link.starts_with("/v1/system/"), "{link}");
        }
        assert!(!collection(ws, Some(t)).contains("/system/"));
    }
}
