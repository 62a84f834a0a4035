//! A schedule's request body (the fields a create or change may set, read field by field so
//! that each mistake has its `schedule.*` code), and a schedule as the API shows it and as its
//! audit entries record it.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tenantops_core::batch::Targets;
use tenantops_core::schedule::{
    BackupSchedule, Cadence, Retention, ScheduleError, ScheduleKind, ScheduleScope, scope_types,
};

use crate::error::ApiError;
use crate::request::ApiRequest;

pub(crate) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::Schedule(ScheduleError::Invalid(msg.into()))
}

/// The body as an object whose keys are all in `allowed`.
pub(crate) fn object(req: &ApiRequest, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = req.json_body()? else {
        return Err(invalid("the body must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field `{}`; expected {}",
            k.chars().take(64).collect::<String>(),
            allowed.join(", ")
        )));
    }
    Ok(map)
}

pub(crate) fn field<T: for<'de> Deserialize<'de>>(
    map: &Map<String, Value>,
    name: &str,
    err: impl Fn(String) -> ScheduleError,
) -> Result<Option<T>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| ApiError::Schedule(err(format!("`{name}`: {e}")))),
    }
}

/// What a create or change may set; absent fields are left as they are (or defaulted).
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// What the slots start (`backup` or `drift_check`); a change may only repeat it.
    pub(crate) kind: Option<ScheduleKind>,
    pub(crate) name: Option<String>,
    pub(crate) cadence: Option<Cadence>,
    pub(crate) timezone: Option<String>,
    pub(crate) types: Option<Vec<String>>,
    pub(crate) retention: Option<Retention>,
    pub(crate) enabled: Option<bool>,
    /// A workspace schedule's tenants: `"all"` or `{"tag": ...}`.
    pub(crate) targets: Option<Targets>,
}

const FIELDS: &[&str] = &[
    "kind",
    "name",
    "cadence",
    "timezone",
    "types",
    "retention",
    "enabled",
];

/// A workspace schedule's fields: a tenant's, and its targets.
const WORKSPACE_FIELDS: &[&str] = &[
    "kind",
    "name",
    "cadence",
    "timezone",
    "types",
    "retention",
    "enabled",
    "tenants",
];

/// A workspace schedule's targets: every active tenant or a tag's (a list of tenants would
/// go stale as tenants come and go).
fn targets(v: &Value) -> Result<Targets, ApiError> {
    match Targets::parse(v) {
        Ok(t @ (Targets::All | Targets::Tag(_))) => Ok(t),
        _ => Err(invalid(
            "`tenants` must be \"all\" or {\"tag\": \"...\"} (a tenant tag)",
        )),
    }
}

impl Fields {
    /// The fields; `name` as sent (the route checks it with the API's name rule).
    pub(crate) fn parse(req: &ApiRequest, owner: Owner) -> Result<Fields, ApiError> {
        let allowed = match owner {
            Owner::Tenant(_) => FIELDS,
            Owner::Workspace => WORKSPACE_FIELDS,
        };
        let map = object(req, allowed)?;
        let name: Option<String> = field(&map, "name", ScheduleError::Invalid)?;
        let types: Option<Vec<String>> = field(&map, "types", ScheduleError::Invalid)?;
        let retention: Option<Retention> = field(&map, "retention", ScheduleError::Retention)?;
        if let Some(r) = &retention {
            r.validate().map_err(ApiError::Schedule)?;
        }
        Ok(Fields {
            kind: field(&map, "kind", ScheduleError::Invalid)?,
            name,
            cadence: field(&map, "cadence", ScheduleError::Cadence)?,
            timezone: field(&map, "timezone", ScheduleError::Invalid)?,
            types: types
                .map(|t| scope_types(Some(&t)))
                .transpose()
                .map_err(ApiError::Schedule)?,
            retention,
            enabled: field(&map, "enabled", ScheduleError::Invalid)?,
            targets: map.get("tenants").map(targets).transpose()?,
        })
    }
}

/// A schedule as the API shows it.
pub(crate) fn schedule_json(s: &BackupSchedule) -> Value {
    let mut v = json!({
        "id": s.id,
        "workspace_id": s.workspace_id,
        "kind": s.kind,
        "name": s.name,
        "cadence": s.cadence,
        "timezone": s.timezone,
        "types": s.types,
        "retention": s.retention,
        "enabled": s.enabled,
        "next_fire_at": tenantops_core::time::format(s.next_fire_at),
        "version": s.version,
        "created_by": s.created_by,
        "created_at": tenantops_core::time::format(s.created_at),
        "updated_at": tenantops_core::time::format(s.updated_at),
        "last_fired_slot": s.last_fired_slot.map(tenantops_core::time::format),
        "last_run_id": s.last_run_id,
        "skipped": s.skipped,
        "skipped_total": s.skipped_total,
    });
    match s.scope() {
        ScheduleScope::Tenant(t) => v["tenant_id"] = json!(t),
        ScheduleScope::Workspace(targets) => {
            v["targets"] = json!(targets);
            v["last_batch_id"] = json!(s.last_batch_id);
        }
    }
    v
}

/// What the audit log records of a schedule: what the API lets a user set.
pub(crate) fn audited(s: &BackupSchedule) -> Value {
    let mut v = json!({
        "kind": s.kind,
        "name": s.name,
        "cadence": s.cadence,
        "timezone": s.timezone,
        "types": s.types,
        "retention": s.retention,
        "enabled": s.enabled,
    });
    if let Some(targets) = &s.targets {
        v["tenants"] = json!(targets);
    }
    v
}

/// Whose schedules a route names: a tenant's, or the workspace's own.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Tenant(&'a str),
    Workspace,
}
