//! One method per route. Operations paths come from `tenantops_core::links` or from the
//! `links` of an answer; the others are spelled here from their route's template.

use serde_json::{Value, json};
use tenantops_core::links;
use tenantops_core::secret::SecretString;
use tenantops_core::{RunId, TenantId, UserId, WorkspaceId};

use crate::types::*;
use crate::{Call, Client, Error, Route};

fn tenant_path(ws: WorkspaceId, tenant: TenantId, rest: &str) -> String {
    format!("/v1/workspaces/{ws}/tenants/{tenant}{rest}")
}

/// Whose backup schedules: a tenant's, or the workspace's own, which fire a batch over the
/// tenants they target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleOwner {
    Tenant(WorkspaceId, TenantId),
    Workspace(WorkspaceId),
}

impl ScheduleOwner {
    /// The owner's schedules collection, then `rest`.
    fn path(self, rest: &str) -> String {
        match self {
            ScheduleOwner::Tenant(ws, t) => tenant_path(ws, t, &format!("/backup-schedules{rest}")),
            ScheduleOwner::Workspace(ws) => format!("/v1/workspaces/{ws}/backup-schedules{rest}"),
        }
    }

    fn route(self, tenant: Route, workspace: Route) -> Route {
        match self {
            ScheduleOwner::Tenant(..) => tenant,
            ScheduleOwner::Workspace(_) => workspace,
        }
    }
}

impl Client {
    /// `GET /v1/health` (no token needed).
    pub async fn health(&self) -> Result<Value, Error> {
        self.json(Call::new(Route::Health, "/v1/health")).await
    }

    /// The API's own OpenAPI document.
    pub async fn openapi(&self) -> Result<Value, Error> {
        self.json(Call::new(Route::OpenApi, "/v1/openapi.json"))
            .await
    }

    // Runs.

    /// Starts a run of `kind` (`{type, params}`); 202 a new run, 200 the active one.
    pub async fn start_run(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        kind: &str,
        params: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<StartResponse, Error> {
        let mut body = json!({ "type": kind });
        if let Some(p) = params {
            body["params"] = p;
        }
        self.json(
            Call::new(Route::StartRun, links::start(ws, tenant))
                .body(body)
                .idempotency_key(idempotency_key),
        )
        .await
    }

    /// The run viewer of a run known by id.
    pub async fn view_run(&self, run: RunId) -> Result<RunResponse, Error> {
        self.follow_run(&links::view(run)).await
    }

    /// The run viewer through a link the API answered (`links.view`, a notification's
    /// `run_url`, a backup set's `run`).
    pub async fn follow_run(&self, link: &str) -> Result<RunResponse, Error> {
        self.json(Call::new(Route::ViewRun, link)).await
    }

    /// A page of the workspace's runs, newest first.
    pub async fn list_runs(&self, ws: WorkspaceId, filter: &RunFilter) -> Result<Page<Run>, Error> {
        let mut query = Vec::new();
        if let Some(k) = &filter.kind {
            query.push(("type", k.clone()));
        }
        if let Some(s) = filter.status {
            query.push(("status", s.as_str().to_owned()));
        }
        if let Some(a) = filter.active {
            query.push(("active", a.to_string()));
        }
        if let Some(p) = &filter.problem {
            query.push(("problem", p.clone()));
        }
        query.extend(filter.page.pairs());
        self.json(Call::new(Route::ListRuns, links::collection(ws, filter.tenant)).query(query))
            .await
    }

    /// Cancels a run: 200 finished `cancelled`, 202 its worker stops at its next checkpoint.
    pub async fn cancel_run(&self, run: RunId) -> Result<RunResponse, Error> {
        self.json(Call::new(Route::CancelRun, links::cancel(run)))
            .await
    }

    // Workspaces and members.

    pub async fn list_workspaces(&self) -> Result<Page<Workspace>, Error> {
        self.json(Call::new(Route::ListWorkspaces, "/v1/workspaces"))
            .await
    }

    pub async fn create_workspace(&self, name: &str) -> Result<WorkspaceResponse, Error> {
        self.json(Call::new(Route::CreateWorkspace, "/v1/workspaces").body(json!({ "name": name })))
            .await
    }

    /// Changes the workspace's settings (`restore_high_risk`); answers the workspace.
    pub async fn update_workspace_settings(
        &self,
        ws: WorkspaceId,
        restore_high_risk: bool,
    ) -> Result<Value, Error> {
        self.json(
            Call::new(Route::UpdateWorkspace, format!("/v1/workspaces/{ws}"))
                .body(json!({ "settings": { "restore_high_risk": restore_high_risk } })),
        )
        .await
    }

    pub async fn list_members(&self, ws: WorkspaceId) -> Result<Page<Member>, Error> {
        self.json(Call::new(
            Route::ListMembers,
            format!("/v1/workspaces/{ws}/members"),
        ))
        .await
    }

    /// Adds a member or changes their role (201 added, 200 changed or unchanged).
    pub async fn put_member(
        &self,
        ws: WorkspaceId,
        user: &UserId,
        role: &str,
    ) -> Result<MemberResponse, Error> {
        self.json(
            Call::new(
                Route::PutMember,
                format!("/v1/workspaces/{ws}/members/{user}"),
            )
            .body(json!({ "role": role })),
        )
        .await
    }

    pub async fn remove_member(&self, ws: WorkspaceId, user: &UserId) -> Result<(), Error> {
        self.empty(Call::new(
            Route::RemoveMember,
            format!("/v1/workspaces/{ws}/members/{user}"),
        ))
        .await
    }

    /// A page of the audit log, newest first, optionally of one action or tenant.
    pub async fn list_audit(
        &self,
        ws: WorkspaceId,
        action: Option<&str>,
        tenant: Option<TenantId>,
        page: &PageQuery,
    ) -> Result<Page<AuditEntry>, Error> {
        let mut query = page.pairs();
        if let Some(a) = action {
            query.push(("action", a.to_owned()));
        }
        if let Some(t) = tenant {
            query.push(("tenant", t.to_string()));
        }
        self.json(Call::new(Route::ListAudit, format!("/v1/workspaces/{ws}/audit")).query(query))
            .await
    }

    // Tenants.

    /// The workspace's tenants, or only those carrying `tag`.
    pub async fn list_tenants(
        &self,
        ws: WorkspaceId,
        tag: Option<&str>,
    ) -> Result<Page<Tenant>, Error> {
        let query = tag.map(|t| ("tag", t.to_owned())).into_iter().collect();
        self.json(
            Call::new(Route::ListTenants, format!("/v1/workspaces/{ws}/tenants")).query(query),
        )
        .await
    }

    pub async fn create_tenant(
        &self,
        ws: WorkspaceId,
        entra_tenant_id: &str,
        display_name: &str,
    ) -> Result<TenantResponse, Error> {
        self.json(
            Call::new(Route::CreateTenant, format!("/v1/workspaces/{ws}/tenants"))
                .body(json!({ "entra_tenant_id": entra_tenant_id, "display_name": display_name })),
        )
        .await
    }

    pub async fn view_tenant(&self, ws: WorkspaceId, t: TenantId) -> Result<TenantResponse, Error> {
        self.json(Call::new(Route::ViewTenant, tenant_path(ws, t, "")))
            .await
    }

    pub async fn rename_tenant(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        display_name: &str,
    ) -> Result<TenantResponse, Error> {
        self.json(
            Call::new(Route::UpdateTenant, tenant_path(ws, t, ""))
                .body(json!({ "display_name": display_name })),
        )
        .await
    }

    /// Replaces the tenant's whole set of tags (empty: none).
    pub async fn set_tenant_tags(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        tags: &[String],
    ) -> Result<TenantResponse, Error> {
        self.json(
            Call::new(Route::UpdateTenant, tenant_path(ws, t, "")).body(json!({ "tags": tags })),
        )
        .await
    }

    pub async fn archive_tenant(
        &self,
        ws: WorkspaceId,
        t: TenantId,
    ) -> Result<TenantResponse, Error> {
        self.json(Call::new(
            Route::ArchiveTenant,
            tenant_path(ws, t, "/archive"),
        ))
        .await
    }

    pub async fn view_connection(
        &self,
        ws: WorkspaceId,
        t: TenantId,
    ) -> Result<ConnectionResponse, Error> {
        self.json(Call::new(
            Route::ViewConnection,
            tenant_path(ws, t, "/provider-connection"),
        ))
        .await
    }

    /// Stores (201) or rotates (200) the tenant's app registration. The secret goes in the
    /// body only; the answer never carries it.
    pub async fn put_connection(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        client_id: &str,
        client_secret: &SecretString,
        secret_expires_at: Option<&str>,
    ) -> Result<ConnectionResponse, Error> {
        let mut body = json!({ "client_id": client_id, "client_secret": client_secret.expose() });
        if let Some(at) = secret_expires_at {
            body["secret_expires_at"] = json!(at);
        }
        self.json(
            Call::new(
                Route::PutConnection,
                tenant_path(ws, t, "/provider-connection"),
            )
            .body(body),
        )
        .await
    }

    pub async fn onboarding(&self, ws: WorkspaceId, t: TenantId) -> Result<Onboarding, Error> {
        self.json(Call::new(
            Route::Onboarding,
            tenant_path(ws, t, "/onboarding"),
        ))
        .await
    }

    // What the worker learned.

    pub async fn inventory(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        kind: Option<&str>,
        page: &PageQuery,
    ) -> Result<Page<InventoryItem>, Error> {
        let mut query = page.pairs();
        if let Some(k) = kind {
            query.push(("type", k.to_owned()));
        }
        self.json(Call::new(Route::ListInventory, tenant_path(ws, t, "/inventory")).query(query))
            .await
    }

    pub async fn backup_sets(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        page: &PageQuery,
    ) -> Result<Page<BackupSet>, Error> {
        self.json(
            Call::new(Route::ListBackupSets, tenant_path(ws, t, "/backups")).query(page.pairs()),
        )
        .await
    }

    pub async fn backup_set(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        set: &str,
        page: &PageQuery,
    ) -> Result<BackupSetView, Error> {
        self.json(
            Call::new(
                Route::ViewBackupSet,
                tenant_path(ws, t, &format!("/backups/{set}")),
            )
            .query(page.pairs()),
        )
        .await
    }

    pub async fn groups(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        search: Option<&str>,
        page: &PageQuery,
    ) -> Result<Page<Group>, Error> {
        let mut query = page.pairs();
        if let Some(s) = search {
            query.push(("search", s.to_owned()));
        }
        self.json(
            Call::new(Route::SearchGroups, tenant_path(ws, t, "/directory/groups")).query(query),
        )
        .await
    }

    pub async fn role_definitions(
        &self,
        ws: WorkspaceId,
        t: TenantId,
    ) -> Result<Page<RoleDefinition>, Error> {
        self.json(Call::new(
            Route::ListRoleDefinitions,
            tenant_path(ws, t, "/directory/role-definitions"),
        ))
        .await
    }

    /// The caller's notifications (their runs' queued and finished notices).
    pub async fn notifications(&self, limit: Option<u32>) -> Result<Page<Notification>, Error> {
        let page = PageQuery {
            limit,
            cursor: None,
        };
        self.json(Call::new(Route::Notifications, "/v1/me/notifications").query(page.pairs()))
            .await
    }

    // Backup schedules: a tenant's, or the workspace's own (over its tenants).

    pub async fn list_schedules(
        &self,
        owner: ScheduleOwner,
        page: &PageQuery,
    ) -> Result<Page<Schedule>, Error> {
        let route = owner.route(Route::ListSchedules, Route::ListWorkspaceSchedules);
        self.json(Call::new(route, owner.path("")).query(page.pairs()))
            .await
    }

    /// Creates a schedule from its document (`CreateSchedule`; a workspace's names its
    /// `tenants`: `"all"` or `{"tag"}`).
    pub async fn create_schedule(
        &self,
        owner: ScheduleOwner,
        body: &Value,
    ) -> Result<ScheduleResponse, Error> {
        let route = owner.route(Route::CreateSchedule, Route::CreateWorkspaceSchedule);
        self.json(Call::new(route, owner.path("")).body(body)).await
    }

    pub async fn view_schedule(
        &self,
        owner: ScheduleOwner,
        id: &str,
    ) -> Result<ScheduleResponse, Error> {
        let route = owner.route(Route::ViewSchedule, Route::ViewWorkspaceSchedule);
        self.json(Call::new(route, owner.path(&format!("/{id}"))))
            .await
    }

    /// Changes a schedule (`PatchSchedule`: any create field).
    pub async fn update_schedule(
        &self,
        owner: ScheduleOwner,
        id: &str,
        patch: &Value,
    ) -> Result<ScheduleResponse, Error> {
        let route = owner.route(Route::UpdateSchedule, Route::UpdateWorkspaceSchedule);
        self.json(Call::new(route, owner.path(&format!("/{id}"))).body(patch))
            .await
    }

    pub async fn delete_schedule(&self, owner: ScheduleOwner, id: &str) -> Result<(), Error> {
        let route = owner.route(Route::DeleteSchedule, Route::DeleteWorkspaceSchedule);
        self.empty(Call::new(route, owner.path(&format!("/{id}"))))
            .await
    }

    /// A backup of the schedule's scope now.
    pub async fn run_schedule_now(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<StartResponse, Error> {
        self.json(
            Call::new(
                Route::RunScheduleNow,
                tenant_path(ws, t, &format!("/backup-schedules/{id}/run-now")),
            )
            .body(json!({}))
            .idempotency_key(idempotency_key),
        )
        .await
    }

    /// Retries a failed or partially succeeded run of the schedule.
    pub async fn retry_schedule_run(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        id: &str,
        run: RunId,
        idempotency_key: Option<&str>,
    ) -> Result<StartResponse, Error> {
        self.json(
            Call::new(
                Route::RetrySchedule,
                tenant_path(ws, t, &format!("/backup-schedules/{id}/retry")),
            )
            .body(json!({ "run_id": run }))
            .idempotency_key(idempotency_key),
        )
        .await
    }

    // Restores.

    /// Starts a preview (`PreviewRequest`); the 202 that creates the restore carries its
    /// confirmation token, once.
    pub async fn preview_restore(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        body: &Value,
    ) -> Result<PreviewResponse, Error> {
        self.json(Call::new(Route::PreviewRestore, tenant_path(ws, t, "/restores")).body(body))
            .await
    }

    pub async fn view_restore(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        id: &str,
        page: &PageQuery,
    ) -> Result<RestoreView, Error> {
        self.json(
            Call::new(
                Route::ViewRestore,
                tenant_path(ws, t, &format!("/restores/{id}")),
            )
            .query(page.pairs()),
        )
        .await
    }

    /// Executes a previewed restore with its confirmation token.
    pub async fn execute_restore(
        &self,
        ws: WorkspaceId,
        t: TenantId,
        id: &str,
        confirmation_token: &SecretString,
    ) -> Result<StartResponse, Error> {
        self.json(
            Call::new(
                Route::ExecuteRestore,
                tenant_path(ws, t, &format!("/restores/{id}/execute")),
            )
            .body(json!({ "confirmation_token": confirmation_token.expose() })),
        )
        .await
    }
}
