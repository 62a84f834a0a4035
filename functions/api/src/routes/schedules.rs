//! Schedules: create, list, view, change, delete, a tenant's (`.../tenants/{t}/
//! backup-schedules`) or the workspace's own over its tenants (`.../backup-schedules`, whose
//! slots fire batches); and the manual runs of a tenant's schedule (run now, retry a failed
//! run). A schedule's `kind` says what its slots and manual runs start: a backup, or a drift
//! check (`drift.check` for run-now and retry, `drift.scheduled` for a slot). The paths keep
//! their name: a drift schedule is the same resource, and renaming would break every client.
//!
//! Every bad input is a 400 with a `schedule.*` code (or `request.malformed_json`) and
//! changes nothing; every change is audited with before and after, in the same transaction.

use chrono::Utc;
use serde_json::{Value, json};
use tenantops_aws::MemberGuard;
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::{BackupRetryParams, BackupRunNowParams, DriftCheckParams};
use tenantops_core::schedule::{
    BackupSchedule, ScheduleError, ScheduleKind, Timetable, scope_types,
};
use tenantops_core::{
    Capability, Identity, Initiator, NewRun, OperationParams, Outcome, Run, RunId, RunStatus,
    ScheduleId, Trigger, UserId,
};

use super::common::{self, Audit};
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::launch::{self, Launch};
use crate::request::ApiRequest;
use crate::response::Reply;
pub use crate::schedule_body::Owner;
use crate::schedule_body::{Fields, audited, field, invalid, object, schedule_json};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
/// A new schedule's name when the body gives none.
fn default_name(kind: ScheduleKind) -> &'static str {
    match kind {
        ScheduleKind::Backup => "Backup",
        ScheduleKind::DriftCheck => "Drift check",
    }
}

/// A drift schedule writes no backup set, so it has nothing to retain.
fn no_retention() -> ApiError {
    ApiError::Schedule(ScheduleError::Retention(
        "a drift_check schedule writes no backup sets: omit `retention`".into(),
    ))
}

/// The caller and the schedules' owner a path names; nothing is read yet.
struct SchedulePath {
    caller: UserId,
    ws: tenantops_core::WorkspaceId,
    tenant: Option<tenantops_core::TenantId>,
}

fn schedule_path(req: &ApiRequest, ws: &str, owner: Owner) -> Result<SchedulePath, ApiError> {
    Ok(match owner {
        Owner::Tenant(t) => {
            let p = common::tenant_path(req, ws, t)?;
            SchedulePath {
                caller: p.caller,
                ws: p.ws,
                tenant: Some(p.tenant),
            }
        }
        Owner::Workspace => SchedulePath {
            caller: common::caller(req)?,
            ws: common::workspace_id(ws)?,
            tenant: None,
        },
    })
}

impl SchedulePath {
    fn tenant_path(&self, tenant: tenantops_core::TenantId) -> common::TenantPath {
        common::TenantPath {
            caller: self.caller.clone(),
            ws: self.ws,
            tenant,
        }
    }

    /// The caller may do `capability` here (and, for a tenant's, the tenant exists).
    async fn authorize(&self, deps: &Deps, capability: Capability) -> Result<(), ApiError> {
        match self.tenant {
            Some(t) => self
                .tenant_path(t)
                .scope(deps, capability)
                .await
                .map(|_| ()),
            None => common::authorize(deps, self.ws, &self.caller, capability)
                .await
                .map(|_| ()),
        }
    }

    /// The schedule `id` of this owner, if the caller's role grants `capability`.
    async fn schedule(
        &self,
        deps: &Deps,
        id: ScheduleId,
        capability: Capability,
    ) -> Result<BackupSchedule, ApiError> {
        match self.tenant {
            Some(t) => self.tenant_path(t).schedule(deps, id, capability).await,
            None => {
                common::authorize(deps, self.ws, &self.caller, capability).await?;
                deps.store
                    .workspace_schedule(self.ws, id)
                    .await?
                    .ok_or(ApiError::NotFound(Resource::Schedule))
            }
        }
    }
}

/// The body's fields, the name held to the API's name rule.
fn fields(req: &ApiRequest, owner: Owner) -> Result<Fields, ApiError> {
    let mut f = Fields::parse(req, owner)?;
    f.name = f
        .name
        .map(|n| {
            common::name("name", &n).map_err(|_| {
                invalid("`name` must be 1 to 128 characters without control characters")
            })
        })
        .transpose()?;
    Ok(f)
}

fn schedule_id(raw: &str) -> Result<ScheduleId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(Resource::Schedule))
}

fn guard<'a>(caller: &'a UserId, roles: &'a [tenantops_core::Role]) -> MemberGuard<'a> {
    MemberGuard {
        user: caller,
        roles,
    }
}

/// The first slot after now, or a validation error if the cadence never fires.
fn first_slot(t: &Timetable) -> Result<chrono::DateTime<Utc>, ApiError> {
    t.next_after(Utc::now())
        .ok_or_else(|| ApiError::Schedule(ScheduleError::Cadence("the cadence never fires".into())))
}

/// `POST .../backup-schedules`: a tenant's schedule, or the workspace's over the tenants its
/// `tenants` names.
pub async fn create(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    owner: Owner<'_>,
) -> Result<Reply, ApiError> {
    let SchedulePath { caller, ws, tenant } = schedule_path(req, ws, owner)?;
    let f = fields(req, owner)?;
    if tenant.is_none() && f.targets.is_none() {
        return Err(invalid("`tenants` is required"));
    }
    let kind = f.kind.unwrap_or_default();
    let cadence = f.cadence.ok_or_else(|| {
        ApiError::Schedule(ScheduleError::Cadence("`cadence` is required".into()))
    })?;
    let retention = match (kind, f.retention) {
        (ScheduleKind::Backup, Some(r)) => Some(r),
        (ScheduleKind::Backup, None) => {
            return Err(ApiError::Schedule(ScheduleError::Retention(
                "`retention` is required".into(),
            )));
        }
        (ScheduleKind::DriftCheck, Some(_)) => return Err(no_retention()),
        (ScheduleKind::DriftCheck, None) => None,
    };
    let timezone = f.timezone.unwrap_or_else(|| "UTC".to_owned());
    let timetable = Timetable::new(&cadence, &timezone).map_err(ApiError::Schedule)?;
    cadence
        .check_min_interval(kind.min_interval(deps.limits.min_schedule_interval_minutes))
        .map_err(ApiError::Schedule)?;
    let types = match f.types {
        Some(t) => t,
        None => scope_types(None).map_err(ApiError::Schedule)?,
    };
    let now = Utc::now();
    let schedule = BackupSchedule {
        id: ScheduleId::new(),
        kind,
        workspace_id: ws,
        tenant_id: tenant,
        targets: f.targets,
        name: f.name.unwrap_or_else(|| default_name(kind).to_owned()),
        cadence,
        timezone,
        types,
        retention,
        enabled: f.enabled.unwrap_or(true),
        next_fire_at: first_slot(&timetable)?,
        version: 1,
        created_by: caller.to_string(),
        created_at: now,
        updated_at: now,
        last_fired_slot: None,
        last_run_id: None,
        last_batch_id: None,
        skipped: Vec::new(),
        skipped_total: 0,
    };
    let audit = Audit {
        workspace: ws,
        tenant,
        actor: &caller,
        action: "backup_schedule.create",
        target: schedule.id.to_string(),
    }
    .entry(None, Some(audited(&schedule)));
    let roles = Capability::SchedulesManage.roles();
    deps.store
        .create_schedule(&schedule, guard(&caller, &roles), &audit)
        .await
        .map_err(|e| ApiError::write(e, Capability::SchedulesManage))?;
    tracing::info!(schedule_id = %schedule.id, "schedule created");
    Ok(Reply::json(
        201,
        &json!({ "schedule": schedule_json(&schedule) }),
    ))
}

/// `GET .../backup-schedules`: a tenant's schedules, or the workspace's own.
pub async fn list(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    owner: Owner<'_>,
) -> Result<Reply, ApiError> {
    let path = schedule_path(req, ws, owner)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let owner_key = path
        .tenant
        .map_or_else(|| "workspace".to_owned(), |t| t.to_string());
    let query_key = format!("schedules|{}|{owner_key}", path.ws);
    let after = cursor::after::<ScheduleId>(&q, &query_key)?;
    path.authorize(deps, Capability::BackupView).await?;
    let page = match path.tenant {
        Some(t) => deps.store.list_schedules(path.ws, t, limit, after).await?,
        None => {
            deps.store
                .list_workspace_schedules(path.ws, limit, after)
                .await?
        }
    };
    let items: Vec<Value> = page.items.iter().map(schedule_json).collect();
    Ok(Reply::json(
        200,
        &json!({
            "items": items,
            "next_cursor": page.next.map(|id| cursor::encode(&query_key, id)),
        }),
    ))
}

/// `GET .../backup-schedules/{id}`.
pub async fn view(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    owner: Owner<'_>,
    id: &str,
) -> Result<Reply, ApiError> {
    let path = schedule_path(req, ws, owner)?;
    let id = schedule_id(id)?;
    let s = path.schedule(deps, id, Capability::BackupView).await?;
    Ok(Reply::json(200, &json!({ "schedule": schedule_json(&s) })))
}

/// `PATCH /v1/workspaces/{ws}/tenants/{t}/backup-schedules/{id}`: any of the create fields.
/// A new cadence or timezone starts again from the next slot after now; re-enabling keeps
/// the stored next fire time, so the missed-slot policy fires at most one catch-up slot.
pub async fn update(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    owner: Owner<'_>,
    id: &str,
) -> Result<Reply, ApiError> {
    let path = schedule_path(req, ws, owner)?;
    let id = schedule_id(id)?;
    let f = fields(req, owner)?;
    let observed = path.schedule(deps, id, Capability::SchedulesManage).await?;
    let SchedulePath { caller, ws, tenant } = path;
    // The kind is chosen at creation: a schedule's runs (and a backup schedule's sets and
    // retention) are all of one kind. A body may repeat it.
    if f.kind.is_some_and(|k| k != observed.kind) {
        return Err(invalid(format!(
            "`kind` cannot change (this schedule's is `{}`); create a schedule of the other kind",
            observed.kind.as_str()
        )));
    }
    let mut new = observed.clone();
    if let Some(t) = f.targets {
        new.targets = Some(t);
    }
    if let Some(n) = f.name {
        new.name = n;
    }
    if let Some(t) = f.types {
        new.types = t;
    }
    if let Some(r) = f.retention {
        if observed.kind == ScheduleKind::DriftCheck {
            return Err(no_retention());
        }
        new.retention = Some(r);
    }
    if let Some(e) = f.enabled {
        new.enabled = e;
    }
    let retimed = f.cadence.is_some() || f.timezone.is_some();
    if let Some(c) = f.cadence {
        new.cadence = c;
    }
    if let Some(tz) = f.timezone {
        new.timezone = tz;
    }
    let timetable = new.timetable().map_err(ApiError::Schedule)?;
    // Only a new cadence is held to the minimum: one stored under a smaller minimum stays
    // editable in every other field.
    if new.cadence != observed.cadence {
        new.cadence
            .check_min_interval(
                new.kind
                    .min_interval(deps.limits.min_schedule_interval_minutes),
            )
            .map_err(ApiError::Schedule)?;
    }
    if retimed && (new.cadence != observed.cadence || new.timezone != observed.timezone) {
        new.next_fire_at = first_slot(&timetable)?;
    }
    if audited(&new) == audited(&observed) {
        return Ok(Reply::json(
            200,
            &json!({ "schedule": schedule_json(&observed) }),
        ));
    }
    new.version = observed.version + 1;
    new.updated_at = Utc::now();
    let audit = Audit {
        workspace: ws,
        tenant,
        actor: &caller,
        action: "backup_schedule.update",
        target: id.to_string(),
    }
    .entry(Some(audited(&observed)), Some(audited(&new)));
    let roles = Capability::SchedulesManage.roles();
    deps.store
        .update_schedule(&observed, &new, guard(&caller, &roles), &audit)
        .await
        .map_err(|e| ApiError::write(e, Capability::SchedulesManage))?;
    Ok(Reply::json(
        200,
        &json!({ "schedule": schedule_json(&new) }),
    ))
}

/// `DELETE /v1/workspaces/{ws}/tenants/{t}/backup-schedules/{id}`: the schedule goes, its
/// runs and backup sets stay.
pub async fn delete(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    owner: Owner<'_>,
    id: &str,
) -> Result<Reply, ApiError> {
    let path = schedule_path(req, ws, owner)?;
    let id = schedule_id(id)?;
    let observed = path.schedule(deps, id, Capability::SchedulesManage).await?;
    let SchedulePath { caller, ws, tenant } = path;
    let audit = Audit {
        workspace: ws,
        tenant,
        actor: &caller,
        action: "backup_schedule.delete",
        target: id.to_string(),
    }
    .entry(Some(audited(&observed)), None);
    let roles = Capability::SchedulesManage.roles();
    deps.store
        .delete_schedule(&observed, guard(&caller, &roles), &audit)
        .await
        .map_err(|e| ApiError::write(e, Capability::SchedulesManage))?;
    Ok(Reply::no_content())
}

/// What a manual run of `schedule` starts: a backup (`run_now` or `retry` of `retry_of`) for a
/// backup schedule; for a drift schedule a `drift.check` of its types, whose context names the
/// schedule (and the run it retries) so that its own runs can be retried too.
fn manual_params(schedule: &BackupSchedule, retry_of: Option<RunId>) -> OperationParams {
    match (schedule.kind, retry_of) {
        (ScheduleKind::Backup, None) => OperationParams::BackupScheduleRunNow(BackupRunNowParams {
            backup_schedule_id: Some(schedule.id.ulid()),
        }),
        (ScheduleKind::Backup, Some(run_id)) => {
            OperationParams::BackupScheduleRetry(BackupRetryParams {
                backup_schedule_id: schedule.id.ulid(),
                run_id,
            })
        }
        (ScheduleKind::DriftCheck, _) => OperationParams::DriftCheck(DriftCheckParams {
            baseline_backup_set_id: None,
            types: Some(schedule.types.clone()),
        }),
    }
}

/// Starts a manual run of `schedule`'s scope (see [`manual_params`]) through the one launch
/// path; the schedule's existence is a condition of the start transaction, and the caller's
/// role must hold the started type's capability (`backup.run` or `drift.check`).
async fn start_manual(
    req: &ApiRequest,
    deps: &Deps,
    caller: &UserId,
    schedule: &BackupSchedule,
    retry_of: Option<RunId>,
) -> Result<Reply, ApiError> {
    let params = manual_params(schedule, retry_of);
    let trigger = match retry_of {
        Some(_) => Trigger::Retry,
        None => Trigger::Manual,
    };
    // Read through its tenant's path, so a tenant's schedule.
    let ws = schedule.workspace_id;
    let tenant = schedule
        .tenant_id
        .ok_or(ApiError::NotFound(Resource::Schedule))?;
    let identity = Identity::derive(ws, tenant, &params, &launch::click(req, caller)?);
    let mut run = Run::queued_with_scope(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params: &params,
            identity: &identity,
            initiator: Initiator::User(caller.clone()),
            trigger,
        },
        Some(&schedule.types),
        Utc::now(),
    );
    // A backup's params record these already; a drift check's do not name schedules.
    run.context.backup_schedule_id = Some(schedule.id.to_string());
    run.context.retry_of = run.context.retry_of.or(retry_of);
    let exists = deps.store.schedule_exists(ws, tenant, schedule.id)?;
    launch::launch(
        deps,
        Launch {
            caller,
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            fingerprint: request_fingerprint(tenant, &params),
            capability: params.operation().spec().start_capability,
            preconditions: &[exists],
        },
        |_| ApiError::NotFound(Resource::Schedule),
    )
    .await
}

/// `POST .../backup-schedules/{id}/run-now`: a backup of the schedule's scope now; a new run
/// per request unless the client repeats an `Idempotency-Key`. A drift schedule's: a drift
/// check of its scope (one active per tenant). The body may be empty or `{}`.
pub async fn run_now(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let id = schedule_id(id)?;
    if req
        .body
        .as_deref()
        .is_some_and(|b| !b.iter().all(u8::is_ascii_whitespace))
    {
        object(req, &[])?;
    }
    // `backup.run` reaches the schedule (the roles that hold it hold `drift.check`); the start
    // transaction checks the started type's own capability.
    let schedule = path.schedule(deps, id, Capability::BackupRun).await?;
    start_manual(req, deps, &path.caller, &schedule, None).await
}

/// `POST .../backup-schedules/{id}/retry` `{run_id}`: a new backup for a failed or partially
/// succeeded run of this schedule (a drift check, for a drift schedule's), recorded as the
/// new run's `context.retry_of`.
pub async fn retry(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let id = schedule_id(id)?;
    let map = object(req, &["run_id"])?;
    let run_id: RunId = field(&map, "run_id", ScheduleError::Invalid)?
        .ok_or_else(|| invalid("`run_id` is required"))?;
    let schedule = path.schedule(deps, id, Capability::BackupRun).await?;
    let original = deps
        .store
        .get_run(run_id)
        .await?
        .filter(|r| {
            r.workspace_id == path.ws
                && r.tenant_id == path.tenant
                && r.context.backup_schedule_id.as_deref() == Some(id.to_string().as_str())
        })
        .ok_or(ApiError::RetryRunInvalid)?;
    let retryable = original.status == RunStatus::Completed
        && matches!(
            original.outcome,
            Outcome::Failed | Outcome::PartiallySucceeded
        );
    if !retryable {
        return Err(ApiError::RetryNotAllowed);
    }
    start_manual(req, deps, &path.caller, &schedule, Some(run_id)).await
}

#[cfg(test)]
mod tests {
    use tenantops_core::schedule::{BACKUP_TYPES, ScheduleKind, timezone_names};

    /// The document enumerates exactly the types and timezones a schedule accepts, so a
    /// request the document calls valid is one the API takes.
    #[test]
    fn the_document_enumerates_the_schedule_types_and_timezones() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("the document");
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .expect("an enum")
                .iter()
                .map(|s| s.as_str().expect("a string").to_owned())
                .collect()
        };
        let types: Vec<String> = BACKUP_TYPES.iter().map(|t| (*t).to_owned()).collect();
        let zones: Vec<String> = timezone_names().map(str::to_owned).collect();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(strings(&schemas["BackupType"]["enum"]), types);
        assert_eq!(strings(&schemas["Timezone"]["enum"]), zones);
        let kinds: Vec<String> = ScheduleKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        assert_eq!(strings(&schemas["ScheduleKind"]["enum"]), kinds);
        assert_eq!(
            schemas["CreateSchedule"]["properties"]["kind"]["default"],
            ScheduleKind::default().as_str()
        );
        for schema in ["CreateSchedule", "PatchSchedule"] {
            let props = &schemas[schema]["properties"];
            assert_eq!(
                props["types"]["items"]["$ref"], "#/components/schemas/BackupType",
                "{schema}.types"
            );
            assert_eq!(
                props["timezone"]["$ref"], "#/components/schemas/Timezone",
                "{schema}.timezone"
            );
        }
    }
}
