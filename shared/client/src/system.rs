//! The workspace's own view and the system plane (platform operators): answers kept as JSON
//! values, their URLs from `tenantops_core::links` only.

use serde_json::Value;
use tenantops_core::links::{self, RunFilters};
use tenantops_core::{RunId, WorkspaceId};

use crate::types::PageQuery;
use crate::{Call, Client, Error, Route};

impl Client {
    /// The workspace as its members see it: name, settings, your role, counts.
    pub async fn view_workspace(&self, ws: WorkspaceId) -> Result<Value, Error> {
        self.json(Call::new(
            Route::ViewWorkspace,
            format!("/v1/workspaces/{ws}"),
        ))
        .await
    }

    /// Runs across every workspace (platform operators), newest first, narrowed by
    /// `filters`; the URL is the system plane's collection link for them.
    pub async fn system_runs(
        &self,
        filters: &RunFilters,
        page: &PageQuery,
    ) -> Result<Value, Error> {
        self.json(
            Call::new(Route::SystemListRuns, links::system_collection(filters)).query(page.pairs()),
        )
        .await
    }

    /// Any run, with its system links (platform operators).
    pub async fn system_run(&self, run: RunId) -> Result<Value, Error> {
        self.json(Call::new(Route::SystemViewRun, links::system_view(run)))
            .await
    }

    /// Every workspace with its counts (platform operators).
    pub async fn system_workspaces(&self, page: &PageQuery) -> Result<Value, Error> {
        self.json(
            Call::new(Route::SystemListWorkspaces, links::system_workspaces()).query(page.pairs()),
        )
        .await
    }

    /// One workspace: its tenants' connection and onboarding, its recent problem runs.
    pub async fn system_workspace(&self, ws: WorkspaceId) -> Result<Value, Error> {
        self.json(Call::new(
            Route::SystemViewWorkspace,
            links::system_workspace(ws),
        ))
        .await
    }
}
