//! Operation runs: start, view, list.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use tenantops_aws::{
    AuditEntry, MemberGuard, Notification, Precondition, Rejection, RunQuery, StartRun, Started,
    WriteError,
};
use tenantops_core::identity::{IdempotencyKey, request_fingerprint};
use tenantops_core::links::{self, RunLinks};
use tenantops_core::operation::StartSurface;
use tenantops_core::{
    Capability, Click, Failure, Identity, Initiator, LockKind, NewRun, OperationParams,
    OperationType, Outcome, ReasonCode, Run, RunId, RunStatus, TenantId, Transition, Trigger,
    UserId, WorkspaceId,
};
use ulid::Ulid;

use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;

const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 100;

#[derive(Debug, Serialize)]
struct StartReply<'a> {
    run: &'a Run,
    deduplicated: bool,
    links: RunLinks,
}

#[derive(Debug, Serialize)]
struct RunReply<'a> {
    run: &'a Run,
    links: RunLinks,
}

#[derive(Debug, Serialize)]
struct Page<'a> {
    items: &'a [Run],
    next_cursor: Option<String>,
}

/// `{"type": ..., "params": {...}}`, checked by hand so each mistake gets its own code.
fn parse_start_body(body: Value) -> Result<(OperationType, Option<Value>), ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(extra) = map.keys().find(|k| *k != "type" && *k != "params") {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; expected `type` and `params`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let operation = match map.remove("type") {
        None => return Err(ApiError::InvalidBody("`type` is required".into())),
        Some(Value::String(t)) => t
            .parse::<OperationType>()
            .map_err(|e| ApiError::UnknownOperationType(e.0))?,
        Some(_) => return Err(ApiError::InvalidBody("`type` must be a string".into())),
    };
    Ok((operation, map.remove("params")))
}

pub async fn start(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let caller = req.caller()?;
    tracing::Span::current().record("caller", caller.as_str());
    let ws: WorkspaceId = ws
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::Workspace))?;
    let tenant: TenantId = tenant
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::Tenant))?;
    let (operation, params) = parse_start_body(req.json_body()?)?;
    let spec = operation.spec();
    if spec.start_surface != StartSurface::OperationsRoute {
        return Err(ApiError::NotStartableHere(operation));
    }
    let params = OperationParams::parse(operation, params)
        .map_err(|e| ApiError::InvalidParams(e.to_string()))?;
    let click = match &req.idempotency_key {
        Some(raw) => Click::Keyed {
            user: caller.clone(),
            key: IdempotencyKey::parse(raw).map_err(|_| ApiError::InvalidIdempotencyKey)?,
        },
        None => Click::Nonce(Ulid::new()),
    };

    let (scope, preconditions) =
        super::schedules::named_in(deps, &caller, ws, tenant, &params).await?;
    let identity = Identity::derive(ws, tenant, &params, &click);
    let now = Utc::now();
    let run = Run::queued_with_scope(
        NewRun {
            workspace_id: ws,
            tenant_id: tenant,
            params: &params,
            identity: &identity,
            initiator: Initiator::User(caller.clone()),
            trigger: Trigger::Manual,
        },
        scope.as_deref(),
        now,
    );
    let fingerprint = request_fingerprint(tenant, &params);
    launch(
        deps,
        Launch {
            caller: &caller,
            run,
            lock: identity.lock,
            fingerprint,
            capability: spec.start_capability,
            preconditions: &preconditions,
        },
        // The only precondition here: the named schedule exists.
        |_| ApiError::NotFound(Resource::Schedule),
    )
    .await
}

/// A run a route has prepared, and what its start transaction must also check.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub caller: &'a UserId,
    pub run: Run,
    pub lock: LockKind,
    /// See `request_fingerprint`: what an `Idempotency-Key` replay must repeat.
    pub fingerprint: String,
    /// What the caller's membership must grant.
    pub capability: Capability,
    pub preconditions: &'a [Precondition],
}

/// Creates (or finds, on a dedupe hit) the run in one transaction, then dispatches a new run
/// and answers 202, or 200 with the existing run. Every route that starts runs ends here, so
/// authorization, audit, notification and dispatch-failure handling happen the same way.
pub(crate) async fn launch(
    deps: &Deps,
    launch: Launch<'_>,
    precondition_failed: impl Fn(usize) -> ApiError,
) -> Result<Reply, ApiError> {
    let Launch {
        caller,
        run,
        lock,
        fingerprint,
        capability,
        preconditions,
    } = launch;
    let operation = run.operation;
    let now = run.created_at;
    let audit = AuditEntry {
        id: Ulid::new(),
        workspace_id: run.workspace_id,
        tenant_id: Some(run.tenant_id),
        actor: caller.to_string(),
        action: "operation.start".into(),
        target: run.id.to_string(),
        before: None,
        after: Some(
            json!({ "type": operation, "status": RunStatus::Queued, "params": run.params }),
        ),
        at: now,
    };
    let roles = capability.roles();
    let started = deps
        .store
        .start_run(StartRun {
            run: &run,
            lock,
            fingerprint: &fingerprint,
            guard: Some(MemberGuard {
                user: caller,
                roles: &roles,
            }),
            audit: &audit,
            notification: Some(&Notification {
                id: Ulid::new(),
                user_id: caller.clone(),
                workspace_id: run.workspace_id,
                tenant_id: run.tenant_id,
                run_id: run.id,
                operation: operation.to_string(),
                status: RunStatus::Queued.to_string(),
                outcome: run.outcome.as_str().to_owned(),
                at: now,
            }),
            preconditions,
        })
        .await
        .map_err(|e| match e {
            WriteError::Rejected(Rejection::Precondition(i)) => precondition_failed(i),
            WriteError::Rejected(r) => rejection(r, capability),
            WriteError::Store(e) => ApiError::internal(e),
        })?;

    match started {
        Started::Deduplicated(existing) => {
            tracing::Span::current().record("run_id", existing.id.to_string());
            tracing::info!(operation = %operation, "start deduplicated");
            Ok(Reply::json(
                200,
                &StartReply {
                    links: links::related(&existing),
                    run: &existing,
                    deduplicated: true,
                },
            ))
        }
        Started::Created => {
            tracing::Span::current().record("run_id", run.id.to_string());
            if let Err(err) = deps.dispatcher.send(run.id).await {
                tracing::error!(error = %err, code = ?err.code, "dispatch failed; failing the run");
                fail_undispatched(deps, &run).await;
                return Err(ApiError::DispatchFailed(run.id));
            }
            tracing::info!(operation = %operation, "run created and dispatched");
            Ok(Reply::json(
                202,
                &StartReply {
                    run: &run,
                    deduplicated: false,
                    links: links::related(&run),
                },
            ))
        }
    }
}

/// A run whose message never reached the queue must not stay queued: fail it now and free
/// its identity. If even that fails, the reaper finds it later.
async fn fail_undispatched(deps: &Deps, run: &Run) {
    let finish = Transition::Finish {
        now: Utc::now(),
        outcome: Outcome::Failed,
        failures: vec![Failure::of(ReasonCode::DispatchFailed)],
    };
    if let Err(err) = deps.store.transition(run, &finish).await {
        tracing::error!(error = %err, "could not mark the undispatched run failed");
    }
}

/// Maps a refused conditional write to the API's answer; `needed` is the capability the
/// member check asked for.
pub(crate) fn rejection(r: Rejection, needed: Capability) -> ApiError {
    match r {
        Rejection::NotMember => ApiError::NotFound(Resource::Workspace),
        Rejection::MissingCapability(_) => ApiError::Forbidden(needed),
        Rejection::TenantNotFound => ApiError::NotFound(Resource::Tenant),
        Rejection::TenantArchived => ApiError::TenantArchived,
        Rejection::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
        Rejection::AlreadyClaimed => ApiError::TenantAlreadyClaimed,
        Rejection::Conflict => ApiError::ConcurrentChange,
        Rejection::LastOwner => {
            ApiError::Membership(tenantops_core::membership::MembershipError::LastOwner)
        }
        // Only a route that passed preconditions knows what each one means.
        Rejection::Precondition(_) => {
            ApiError::internal_message("a start precondition failed outside its route")
        }
    }
}

/// A write error as the API's answer.
pub(crate) fn write_error(e: WriteError, needed: Capability) -> ApiError {
    match e {
        WriteError::Rejected(r) => rejection(r, needed),
        WriteError::Store(e) => ApiError::internal(e),
    }
}

pub async fn view(req: &ApiRequest, deps: &Deps, run: &str) -> Result<Reply, ApiError> {
    let caller = req.caller()?;
    tracing::Span::current().record("caller", caller.as_str());
    let id: RunId = run.parse().map_err(|_| ApiError::NotFound(Resource::Run))?;
    tracing::Span::current().record("run_id", id.to_string());
    let run = deps
        .store
        .get_run(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound(Resource::Run))?;
    // A foreign run and a missing run must be indistinguishable: same status, same body.
    let role = deps
        .store
        .member_role(run.workspace_id, &caller)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound(Resource::Run))?;
    let needed = run.operation.spec().view_capability;
    if !role.has(needed) {
        return Err(ApiError::Forbidden(needed));
    }
    Ok(Reply::json(
        200,
        &RunReply {
            links: links::related(&run),
            run: &run,
        },
    ))
}

#[derive(Debug, Default)]
struct ListFilters {
    tenant: Option<TenantId>,
    operation: Option<OperationType>,
    status: Option<RunStatus>,
    active: Option<bool>,
    limit: Option<usize>,
    cursor: Option<String>,
}

impl ListFilters {
    fn parse(query: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = ListFilters::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in query {
            if !seen.insert(k.as_str()) {
                return Err(ApiError::InvalidQuery(format!("`{k}` is given twice")));
            }
            let bad = |what: &str| ApiError::InvalidQuery(format!("`{k}` must be {what}"));
            match k.as_str() {
                "tenant" => f.tenant = Some(v.parse().map_err(|_| bad("a tenant id"))?),
                "type" => f.operation = Some(v.parse().map_err(|_| bad("an operation type"))?),
                "status" => {
                    f.status = Some(
                        RunStatus::parse(v).ok_or_else(|| bad("queued, running or completed"))?,
                    );
                }
                "active" => {
                    f.active = Some(match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("true or false")),
                    });
                }
                "limit" => {
                    let n: usize = v.parse().map_err(|_| bad("an integer from 1 to 100"))?;
                    if !(1..=MAX_PAGE).contains(&n) {
                        return Err(bad("an integer from 1 to 100"));
                    }
                    f.limit = Some(n);
                }
                "cursor" => f.cursor = Some(v.clone()),
                other => {
                    return Err(ApiError::InvalidQuery(format!(
                        "unknown query parameter `{}`",
                        other.chars().take(64).collect::<String>()
                    )));
                }
            }
        }
        Ok(f)
    }

    /// The query a cursor belongs to (everything but the cursor and the page size).
    fn key(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_default();
        format!(
            "tenant={}|type={}|status={}|active={}",
            opt(self.tenant.map(|t| t.to_string())),
            opt(self.operation.map(|t| t.to_string())),
            opt(self.status.map(|s| s.to_string())),
            opt(self.active.map(|a| a.to_string())),
        )
    }
}

pub async fn list(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = req.caller()?;
    tracing::Span::current().record("caller", caller.as_str());
    let ws: WorkspaceId = ws
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::Workspace))?;
    let filters = ListFilters::parse(&req.query)?;
    let after = filters
        .cursor
        .as_deref()
        .map(|c| cursor::decode::<RunId>(c, &filters.key()))
        .transpose()?;
    let role = deps
        .store
        .member_role(ws, &caller)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound(Resource::Workspace))?;
    if !role.has(Capability::WorkspaceView) {
        return Err(ApiError::Forbidden(Capability::WorkspaceView));
    }
    // Members see only the runs their role may view; the filter runs in the index query.
    let viewable = OperationType::viewable_with(|c| role.has(c));
    let types = match filters.operation {
        Some(t) if !viewable.contains(&t) => {
            return Err(ApiError::Forbidden(t.spec().view_capability));
        }
        Some(t) => Some(vec![t]),
        None if viewable.len() == OperationType::ALL.len() => None,
        None => Some(viewable),
    };
    let page = deps
        .store
        .list_runs(&RunQuery {
            workspace: ws,
            tenant: filters.tenant,
            types,
            status: filters.status,
            active: filters.active,
            limit: filters.limit.unwrap_or(DEFAULT_PAGE),
            after,
        })
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = page.next.map(|id| cursor::encode(&filters.key(), id));
    Ok(Reply::json(
        200,
        &Page {
            items: &page.items,
            next_cursor,
        },
    ))
}
