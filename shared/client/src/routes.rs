//! The API routes the client calls, keyed as the router's `ROUTES` and the OpenAPI document
//! name them (`tests/it/cli.rs` holds this table to both).

/// Every route the client calls, in the order of [`Route`]'s variants.
pub const ROUTES: &[&str] = &[
    "GET /v1/health",
    "GET /v1/openapi.json",
    "GET /v1/workspaces",
    "POST /v1/workspaces",
    "PATCH /v1/workspaces/{ws}",
    "GET /v1/workspaces/{ws}/members",
    "PUT /v1/workspaces/{ws}/members/{user}",
    "DELETE /v1/workspaces/{ws}/members/{user}",
    "GET /v1/workspaces/{ws}/audit",
    "GET /v1/workspaces/{ws}/operations",
    "GET /v1/operations/{run}",
    "POST /v1/operations/{run}/cancel",
    "GET /v1/workspaces/{ws}/tenants",
    "POST /v1/workspaces/{ws}/tenants",
    "GET /v1/workspaces/{ws}/tenants/{tenant}",
    "PATCH /v1/workspaces/{ws}/tenants/{tenant}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/archive",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/provider-connection",
    "PUT /v1/workspaces/{ws}/tenants/{tenant}/provider-connection",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/onboarding",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/operations",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/inventory",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/groups",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/role-definitions",
    "GET /v1/me/notifications",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "PATCH /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "DELETE /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/run-now",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/retry",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/restores",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}/execute",
    "GET /v1/workspaces/{ws}",
    "GET /v1/system/operations",
    "GET /v1/system/operations/{run}",
    "GET /v1/system/workspaces",
    "GET /v1/system/workspaces/{ws}",
    "POST /v1/workspaces/{ws}/batches",
    "GET /v1/workspaces/{ws}/batches/{batch}",
    "POST /v1/workspaces/{ws}/batches/{batch}/cancel",
    "POST /v1/workspaces/{ws}/batches/{batch}/retry",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/drift",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/accept",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/revert",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}/diff/{other}",
    "POST /v1/workspaces/{ws}/batches/{batch}/execute",
    "GET /v1/workspaces/{ws}/backup-schedules",
    "POST /v1/workspaces/{ws}/backup-schedules",
    "GET /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "PATCH /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "DELETE /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "GET /v1/workspaces/{ws}/webhooks",
    "POST /v1/workspaces/{ws}/webhooks",
    "GET /v1/workspaces/{ws}/webhooks/{webhook}",
    "DELETE /v1/workspaces/{ws}/webhooks/{webhook}",
    "GET /v1/workspaces/{ws}/webhooks/{webhook}/deliveries",
    "POST /v1/workspaces/{ws}/webhooks/{webhook}/test",
];

/// Routes the API serves that the client does not call yet. A route the router gains is
/// either called (above) or listed here: `tests/it/cli.rs` fails otherwise.
pub const NOT_COVERED: &[&str] = &[];

/// A route the client calls. Its key is `ROUTES[route as usize]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    ListWorkspaces,
    CreateWorkspace,
    UpdateWorkspace,
    ListMembers,
    PutMember,
    RemoveMember,
    ListAudit,
    ListRuns,
    ViewRun,
    CancelRun,
    ListTenants,
    CreateTenant,
    ViewTenant,
    UpdateTenant,
    ArchiveTenant,
    ViewConnection,
    PutConnection,
    Onboarding,
    StartRun,
    ListInventory,
    ListBackupSets,
    ViewBackupSet,
    SearchGroups,
    ListRoleDefinitions,
    Notifications,
    ListSchedules,
    CreateSchedule,
    ViewSchedule,
    UpdateSchedule,
    DeleteSchedule,
    RunScheduleNow,
    RetrySchedule,
    PreviewRestore,
    ViewRestore,
    ExecuteRestore,
    ViewWorkspace,
    SystemListRuns,
    SystemViewRun,
    SystemListWorkspaces,
    SystemViewWorkspace,
    CreateBatch,
    ViewBatch,
    CancelBatch,
    RetryBatch,
    ListDriftReports,
    ViewDriftReport,
    AcceptDriftReport,
    RevertDrift,
    DiffBackupSets,
    ExecuteBatch,
    ListWorkspaceSchedules,
    CreateWorkspaceSchedule,
    ViewWorkspaceSchedule,
    UpdateWorkspaceSchedule,
    DeleteWorkspaceSchedule,
    ListWebhooks,
    CreateWebhook,
    ViewWebhook,
    DeleteWebhook,
    WebhookDeliveries,
    TestWebhook,
}

impl Route {
    /// Every variant, in declaration order.
    pub const ALL: [Route; 63] = [
        Route::Health,
        Route::OpenApi,
        Route::ListWorkspaces,
        Route::CreateWorkspace,
        Route::UpdateWorkspace,
        Route::ListMembers,
        Route::PutMember,
        Route::RemoveMember,
        Route::ListAudit,
        Route::ListRuns,
        Route::ViewRun,
        Route::CancelRun,
        Route::ListTenants,
        Route::CreateTenant,
        Route::ViewTenant,
        Route::UpdateTenant,
        Route::ArchiveTenant,
        Route::ViewConnection,
        Route::PutConnection,
        Route::Onboarding,
        Route::StartRun,
        Route::ListInventory,
        Route::ListBackupSets,
        Route::ViewBackupSet,
        Route::SearchGroups,
        Route::ListRoleDefinitions,
        Route::Notifications,
        Route::ListSchedules,
        Route::CreateSchedule,
        Route::ViewSchedule,
        Route::UpdateSchedule,
        Route::DeleteSchedule,
        Route::RunScheduleNow,
        Route::RetrySchedule,
        Route::PreviewRestore,
        Route::ViewRestore,
        Route::ExecuteRestore,
        Route::ViewWorkspace,
        Route::SystemListRuns,
        Route::SystemViewRun,
        Route::SystemListWorkspaces,
        Route::SystemViewWorkspace,
        Route::CreateBatch,
        Route::ViewBatch,
        Route::CancelBatch,
        Route::RetryBatch,
        Route::ListDriftReports,
        Route::ViewDriftReport,
        Route::AcceptDriftReport,
        Route::RevertDrift,
        Route::DiffBackupSets,
        Route::ExecuteBatch,
        Route::ListWorkspaceSchedules,
        Route::CreateWorkspaceSchedule,
        Route::ViewWorkspaceSchedule,
        Route::UpdateWorkspaceSchedule,
        Route::DeleteWorkspaceSchedule,
        Route::ListWebhooks,
        Route::CreateWebhook,
        Route::ViewWebhook,
        Route::DeleteWebhook,
        Route::WebhookDeliveries,
        Route::TestWebhook,
    ];

    /// `METHOD /path/{template}`.
    pub fn key(self) -> &'static str {
        ROUTES.get(self as usize).copied().unwrap_or_default()
    }

    /// The HTTP method, from the key.
    pub fn method(self) -> reqwest::Method {
        match self.key().split_once(' ').map(|(m, _)| m) {
            Some("POST") => reqwest::Method::POST,
            Some("PUT") => reqwest::Method::PUT,
            Some("PATCH") => reqwest::Method::PATCH,
            Some("DELETE") => reqwest::Method::DELETE,
            _ => reqwest::Method::GET,
        }
    }

    /// The path template, from the key.
    pub fn template(self) -> &'static str {
        self.key().split_once(' ').map_or("", |(_, p)| p)
    }

    /// Whether a concrete path (its query left out) is one of this route's: the same
    /// segments, a template parameter matching any one non-empty segment.
    pub fn matches(self, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let (mut want, mut got) = (self.template().split('/'), path.split('/'));
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_names_its_own_key() {
        assert_eq!(Route::ALL.len(), ROUTES.len());
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i);
            assert!(!route.key().is_empty());
            assert!(route.matches(route.template()), "{route:?}");
        }
        let mut keys: Vec<&str> = ROUTES.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len(), "a route is listed twice");
    }

    #[test]
    fn a_path_matches_its_template_only() {
        let run = "01JD0000000000000000000000";
        assert!(Route::ViewRun.matches(&format!("/v1/{}/{run}", "operations")));
        assert!(!Route::ViewRun.matches(&format!("/v1/{}/{run}/cancel", "operations")));
        assert!(Route::ListRuns.matches(&format!("/v1/workspaces/W/{}?tenant=T", "operations")));
        assert!(!Route::ListTenants.matches("/v1/workspaces//tenants"));
        assert_eq!(Route::DeleteSchedule.method(), reqwest::Method::DELETE);
    }
}
