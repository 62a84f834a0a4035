//! What every route does the same way: the caller, ids from the path, membership and the
//! tenant or schedule it may see, bodies, audit entries.

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenantops_aws::{AuditEntry, Precondition, TenantRecord, WorkspaceRecord};
use tenantops_core::params::BackupRunNowParams;
use tenantops_core::schedule::BackupSchedule;
use tenantops_core::{
    Capability, OperationParams, Role, Run, RunId, ScheduleId, TenantId, UserId, WorkspaceId,
};

use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;

/// The verified caller, recorded on the request span.
pub fn caller(req: &ApiRequest) -> Result<UserId, ApiError> {
    let caller = req.caller()?;
    tracing::Span::current().record("caller", caller.as_str());
    Ok(caller)
}

pub fn workspace_id(raw: &str) -> Result<WorkspaceId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(Resource::Workspace))
}

pub fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(Resource::Tenant))
}

/// The caller's role in `ws`; not a member is 404, indistinguishable from no workspace.
pub async fn role_in(deps: &Deps, ws: WorkspaceId, caller: &UserId) -> Result<Role, ApiError> {
    deps.store
        .member_role(ws, caller)
        .await?
        .ok_or(ApiError::NotFound(Resource::Workspace))
}

/// The caller's role in `ws`, if it grants `capability` (404 for non-members, then 403).
pub async fn authorize(
    deps: &Deps,
    ws: WorkspaceId,
    caller: &UserId,
    capability: Capability,
) -> Result<Role, ApiError> {
    let role = role_in(deps, ws, caller).await?;
    require(role, capability)?;
    Ok(role)
}

/// The tenant record; a tenant of another workspace is as missing as no tenant.
pub async fn tenant_record(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
) -> Result<TenantRecord, ApiError> {
    deps.store
        .get_tenant(ws, tenant)
        .await?
        .ok_or(ApiError::NotFound(Resource::Tenant))
}

/// The caller and the tenant a `/workspaces/{ws}/tenants/{t}/...` path names, checked in
/// that order (401, then 404 for ids that cannot be ids); nothing is read yet.
#[derive(Debug)]
pub struct TenantPath {
    pub caller: UserId,
    pub ws: WorkspaceId,
    pub tenant: TenantId,
}

pub fn tenant_path(req: &ApiRequest, ws: &str, tenant: &str) -> Result<TenantPath, ApiError> {
    Ok(TenantPath {
        caller: caller(req)?,
        ws: workspace_id(ws)?,
        tenant: tenant_id(tenant)?,
    })
}

/// A tenant the caller may see, with the caller's role, which grants the capability asked.
#[derive(Debug)]
pub struct TenantScope {
    pub caller: UserId,
    pub ws: WorkspaceId,
    pub tenant: TenantId,
    pub role: Role,
    pub record: TenantRecord,
}

impl TenantPath {
    /// The tenant, if the caller may see it (membership, then the tenant, then
    /// `capability`: a missing tenant is 404 even for a role that lacks `capability`).
    pub async fn scope(self, deps: &Deps, capability: Capability) -> Result<TenantScope, ApiError> {
        let role = authorize(deps, self.ws, &self.caller, Capability::WorkspaceView).await?;
        let record = tenant_record(deps, self.ws, self.tenant).await?;
        require(role, capability)?;
        Ok(TenantScope {
            caller: self.caller,
            ws: self.ws,
            tenant: self.tenant,
            role,
            record,
        })
    }

    /// The tenant's schedule `id`, if the caller's role grants `capability`; 404 for
    /// non-members and for schedules of other tenants or workspaces.
    pub async fn schedule(
        &self,
        deps: &Deps,
        id: ScheduleId,
        capability: Capability,
    ) -> Result<BackupSchedule, ApiError> {
        authorize(deps, self.ws, &self.caller, capability).await?;
        deps.store
            .schedule(self.ws, self.tenant, id)
            .await?
            .ok_or(ApiError::NotFound(Resource::Schedule))
    }

    /// What a start through the operations route must find at the database, checked in the
    /// start transaction after the caller's membership and role:
    /// - a `backup_schedule.run_now` that names a schedule covers the schedule's scope, and
    ///   the schedule must exist (404 `schedule.not_found`) and be a backup schedule (422
    ///   `operation.invalid_params`);
    /// - a `provider_connection.verify` names a connection, which must exist (404
    ///   `connection.not_found`), so a check of nothing never reaches the worker.
    ///
    /// Other starts: no scope, no condition.
    pub async fn start_conditions(
        &self,
        deps: &Deps,
        params: &OperationParams,
    ) -> Result<StartConditions, ApiError> {
        match params {
            OperationParams::BackupScheduleRunNow(BackupRunNowParams {
                backup_schedule_id: Some(id),
            }) => {
                let id = ScheduleId::from_ulid(*id);
                let schedule = self.schedule(deps, id, Capability::BackupRun).await?;
                // A drift schedule's scope is not backed up by its id (it has no sets and no
                // retention); its run-now route starts its drift check.
                if schedule.kind != tenantops_core::schedule::ScheduleKind::Backup {
                    return Err(ApiError::InvalidParams(
                        "`params.backup_schedule_id` names a drift_check schedule; start its drift check with its run-now route".into(),
                    ));
                }
                let exists = deps.store.schedule_exists(self.ws, self.tenant, id)?;
                Ok(StartConditions {
                    scope: Some(schedule.types),
                    preconditions: vec![exists],
                    missing: Resource::Schedule,
                })
            }
            OperationParams::ProviderConnectionVerify(p) => {
                let exists =
                    deps.store
                        .connection_exists(self.ws, self.tenant, &p.connection_id)?;
                Ok(StartConditions {
                    scope: None,
                    preconditions: vec![exists],
                    missing: Resource::Connection,
                })
            }
            _ => Ok(StartConditions {
                scope: None,
                preconditions: Vec::new(),
                missing: Resource::Route,
            }),
        }
    }
}

/// See [`TenantPath::start_conditions`].
#[derive(Debug)]
pub struct StartConditions {
    /// The object types the run covers (`None`: the type's default).
    pub scope: Option<Vec<String>>,
    pub preconditions: Vec<Precondition>,
    /// What is missing when a precondition fails.
    pub missing: Resource,
}

/// [`tenant_path`] then [`TenantPath::scope`], for routes that read nothing else from the
/// request before the membership check.
pub async fn tenant_scope(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
    capability: Capability,
) -> Result<TenantScope, ApiError> {
    tenant_path(req, ws, tenant)?.scope(deps, capability).await
}

/// The query parameters, each at most once and only the `allowed` ones; anything else is
/// a 400 rather than silently ignored.
pub fn query<'a>(
    req: &'a ApiRequest,
    allowed: &[&str],
) -> Result<std::collections::HashMap<&'a str, &'a str>, ApiError> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in &req.query {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::InvalidQuery(format!(
                "unknown query parameter `{}`",
                k.chars().take(64).collect::<String>()
            )));
        }
        if out.insert(k.as_str(), v.as_str()).is_some() {
            return Err(ApiError::InvalidQuery(format!("`{k}` is given twice")));
        }
    }
    Ok(out)
}

/// The `limit` parameter: `default` when absent, else an integer from 1 to `max`.
pub fn limit(
    q: &std::collections::HashMap<&str, &str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidQuery(format!("`limit` must be an integer from 1 to {max}"))
            }),
    }
}

/// A body's `type`: required, a string, a registered operation type.
pub fn operation_type(raw: Option<Value>) -> Result<tenantops_core::OperationType, ApiError> {
    match raw {
        None => Err(ApiError::InvalidBody("`type` is required".into())),
        Some(Value::String(t)) => t
            .parse()
            .map_err(|e: tenantops_core::UnknownOperationType| ApiError::UnknownOperationType(e.0)),
        Some(_) => Err(ApiError::InvalidBody("`type` must be a string".into())),
    }
}

pub fn require(role: Role, capability: Capability) -> Result<(), ApiError> {
    if role.has(capability) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(capability))
    }
}

/// The JSON body as `T`; field and type mistakes are 422 with serde's explanation.
pub fn body<T: DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    let value = req.json_body()?;
    // serde would also read a struct from an array of its fields in order (`["Contoso"]`);
    // every body this API takes is an object.
    if !value.is_object() {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

/// A human name: trimmed, 1 to 128 characters, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    // Exactly the document's rule (NAME_PATTERN there): 1 to 128 characters as sent, no
    // control character, at least one that is not blank; stored trimmed.
    let ok = (1..=128).contains(&raw.chars().count())
        && !raw.chars().any(char::is_control)
        && raw.chars().any(|c| !is_blank(c));
    if ok {
        Ok(raw.trim_matches(is_blank).to_owned())
    } else {
        Err(ApiError::InvalidBody(format!(
            "`{field}` must be 1 to 128 characters without control characters, not all blank"
        )))
    }
}

/// Blank in a name: whitespace (Unicode White_Space), a control character, or the byte-order
/// mark. The tests' `BLANK_RANGES` list the same characters, as the document's pattern does.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{feff}'
}

/// A GUID (8-4-4-4-12 hex), lowercased.
pub fn guid(field: &str, raw: &str) -> Result<String, ApiError> {
    let groups: Vec<&str> = raw.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::InvalidBody(format!("`{field}` must be a GUID")))
    }
}

/// The run `raw` names (recorded on the request span); a malformed id is as missing as an
/// unknown one. Who may see it is the caller's to decide.
pub async fn run_by_id(deps: &Deps, raw: &str) -> Result<Run, ApiError> {
    let id: RunId = raw.parse().map_err(|_| ApiError::NotFound(Resource::Run))?;
    tracing::Span::current().record("run_id", id.to_string());
    deps.store
        .get_run(id)
        .await?
        .ok_or(ApiError::NotFound(Resource::Run))
}

/// A workspace as both planes show it: id, name, settings, creation time.
pub fn workspace_json(record: &WorkspaceRecord) -> Value {
    serde_json::json!({
        "id": record.workspace_id,
        "name": record.name,
        "settings": record.settings,
        "created_at": tenantops_core::time::format(record.created_at),
    })
}

pub struct Audit<'a> {
    pub workspace: WorkspaceId,
    pub tenant: Option<TenantId>,
    pub actor: &'a UserId,
    pub action: &'a str,
    pub target: String,
}

impl Audit<'_> {
    pub fn entry(self, before: Option<Value>, after: Option<Value>) -> AuditEntry {
        AuditEntry {
            id: ulid::Ulid::new(),
            workspace_id: self.workspace,
            tenant_id: self.tenant,
            actor: self.actor.to_string(),
            action: self.action.to_owned(),
            target: self.target,
            before,
            after,
            at: Utc::now(),
        }
    }
}

/// A body field that may be left out but, when sent, is never `null` (the document types it
/// without `null`): `#[serde(default, deserialize_with = "common::present")]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blank characters as ranges (a test holds them to `is_blank`).
    const BLANK_RANGES: [(char, char); 9] = [
        ('\u{0}', '\u{20}'),
        ('\u{7f}', '\u{a0}'),
        ('\u{1680}', '\u{1680}'),
        ('\u{2000}', '\u{200a}'),
        ('\u{2028}', '\u{2029}'),
        ('\u{202f}', '\u{202f}'),
        ('\u{205f}', '\u{205f}'),
        ('\u{3000}', '\u{3000}'),
        ('\u{feff}', '\u{feff}'),
    ];

    /// The document's pattern for names: no control character, at least one that is not blank
    /// (with `minLength: 1`, `maxLength: 128`). ECMA-262 and Python read it alike: explicit
    /// `\uXXXX` ranges, no `\s`, whose members differ between regex dialects.
    fn name_pattern() -> String {
        let class = |ranges: &[(char, char)]| -> String {
            ranges
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        format!("\\u{:04X}", *lo as u32)
                    } else {
                        format!("\\u{:04X}-\\u{:04X}", *lo as u32, *hi as u32)
                    }
                })
                .collect()
        };
        let control = class(&[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')]);
        let blank = class(&BLANK_RANGES);
        format!("^[^{control}]*[^{blank}][^{control}]*$")
    }

    #[test]
    fn guids_are_checked_and_lowercased() {
        assert_eq!(
            guid("x", "0B2C3D4E-1111-2222-3333-444455556666")
                .ok()
                .as_deref(),
            Some("0b2c3d4e-1111-2222-3333-444455556666")
        );
        for bad in [
            "",
            "not-a-guid",
            "0b2c3d4e-1111-2222-3333-44445555666",
            "0b2c3d4e11112222333344445555666g",
        ] {
            assert!(guid("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("n", "  Contoso ").ok().as_deref(), Some("Contoso"));
        assert!(name("n", "   ").is_err());
        assert!(name("n", "\u{feff}\u{3000}").is_err());
        assert!(name("n", &"x".repeat(129)).is_err());
        assert!(name("n", &format!(" {}", "x".repeat(128))).is_err());
        assert!(name("n", "a\u{0007}b").is_err());
        assert!(name("n", "a\u{0085}b").is_err());
    }

    /// The blank class is exactly `is_blank`, over every code point.
    #[test]
    fn the_blank_ranges_are_the_blank_characters() {
        let in_ranges = |c: char| BLANK_RANGES.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c));
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(is_blank(c), in_ranges(c), "U+{:04X}", c as u32);
        }
    }

    /// Every name field of the document carries the pattern `name` enforces.
    #[test]
    fn the_documents_names_carry_the_name_pattern() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("the document");
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("CreateWorkspace", "name"),
            ("CreateTenant", "display_name"),
            ("PatchTenant", "display_name"),
            ("CreateSchedule", "name"),
            ("PatchSchedule", "name"),
        ] {
            let prop = &schemas[schema]["properties"][field];
            assert_eq!(prop["pattern"], name_pattern(), "{schema}.{field}");
            assert_eq!(
                (&prop["minLength"], &prop["maxLength"]),
                (&1.into(), &128.into())
            );
        }
    }
}
