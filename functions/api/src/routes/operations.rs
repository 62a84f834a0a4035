//! Operation runs: start, view, cancel, list.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use tenantops_aws::{MemberGuard, Rejection, RunQuery, WriteError};
use tenantops_core::identity::request_fingerprint;
use tenantops_core::links::{self, RunLinks};
use tenantops_core::operation::StartSurface;
use tenantops_core::{
    Capability, Identity, Initiator, NewRun, OperationParams, OperationType, Outcome, ReasonCode,
    Run, RunId, RunStatus, Trigger,
};

use super::common;
use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::launch::{self, Launch};
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::run_list::{Plane, RunListQuery};

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
    let operation = common::operation_type(map.remove("type"))?;
    Ok((operation, map.remove("params")))
}

pub async fn start(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    tenant: &str,
) -> Result<Reply, ApiError> {
    let path = common::tenant_path(req, ws, tenant)?;
    let (operation, params) = parse_start_body(req.json_body()?)?;
    let spec = operation.spec();
    if spec.start_surface != StartSurface::OperationsRoute {
        return Err(ApiError::NotStartableHere(operation));
    }
    let params = OperationParams::parse(operation, params)
        .map_err(|e| ApiError::InvalidParams(e.to_string()))?;
    let click = launch::click(req, &path.caller)?;

    let conditions = path.start_conditions(deps, &params).await?;
    let (caller, ws, tenant) = (&path.caller, path.ws, path.tenant);
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
        conditions.scope.as_deref(),
        now,
    );
    let fingerprint = request_fingerprint(tenant, &params);
    launch::launch(
        deps,
        Launch {
            caller,
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            fingerprint,
            capability: spec.start_capability,
            preconditions: &conditions.preconditions,
        },
        |_| ApiError::NotFound(conditions.missing),
    )
    .await
}

pub async fn view(req: &ApiRequest, deps: &Deps, run: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let run = common::run_by_id(deps, run).await?;
    // A foreign run and a missing run must be indistinguishable: same status, same body.
    let role = deps
        .store
        .member_role(run.workspace_id, &caller)
        .await?
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

/// Cancels a run. A queued run is finished `cancelled` at once (200). A running run gets a
/// cancel request (202): its worker stops at its next checkpoint and finishes it
/// `cancelled`. Both are audited once; asking again answers the run as it is (200 once
/// cancelled, 202 while its worker has yet to stop). A run completed otherwise is a 409.
/// Who may not see the run gets the viewer's 404.
pub async fn cancel(req: &ApiRequest, deps: &Deps, run: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let id: RunId = run.parse().map_err(|_| ApiError::NotFound(Resource::Run))?;
    tracing::Span::current().record("run_id", id.to_string());
    // A lost race with a worker's claim or a finish is read again, a few times at most.
    for _ in 0..3 {
        let run = deps
            .store
            .get_run(id)
            .await?
            .ok_or(ApiError::NotFound(Resource::Run))?;
        let role = deps
            .store
            .member_role(run.workspace_id, &caller)
            .await?
            .ok_or(ApiError::NotFound(Resource::Run))?;
        let needed = run.operation.spec().start_capability;
        if !role.has(needed) {
            return Err(ApiError::Forbidden(needed));
        }
        let before = match (run.status, run.outcome, run.cancel_requested_at) {
            (RunStatus::Completed, Outcome::Cancelled, _) => return Ok(run_reply(200, &run)),
            (RunStatus::Completed, _, _) => {
                return Err(ApiError::NotCancellable(ReasonCode::RunAlreadyCompleted));
            }
            (RunStatus::Running, _, Some(_)) => return Ok(run_reply(202, &run)),
            (RunStatus::Running, _, None) => json!({ "status": RunStatus::Running }),
            (RunStatus::Queued, _, _) => json!({ "status": RunStatus::Queued }),
        };
        let now = Utc::now();
        let after = match run.status {
            RunStatus::Queued => {
                json!({ "status": RunStatus::Completed, "outcome": Outcome::Cancelled })
            }
            _ => {
                json!({ "status": run.status, "cancel_requested_at": tenantops_core::time::format(now) })
            }
        };
        let audit = common::Audit {
            workspace: run.workspace_id,
            tenant: Some(run.tenant_id),
            actor: &caller,
            action: "operation.cancelled",
            target: run.id.to_string(),
        }
        .entry(Some(before), Some(after));
        let roles = needed.roles();
        let guard = MemberGuard {
            user: &caller,
            roles: &roles,
        };
        let written = match run.status {
            RunStatus::Queued => deps.store.cancel_queued(&run, now, guard, &audit).await,
            _ => deps.store.request_cancel(&run, now, guard, &audit).await,
        };
        match written {
            Ok(()) => {
                let stored = deps
                    .store
                    .get_run(id)
                    .await?
                    .ok_or_else(|| ApiError::internal_message("a cancelled run vanished"))?;
                if run.status != RunStatus::Queued {
                    // The worker finishes it at its next checkpoint, and announces that.
                    return Ok(run_reply(202, &stored));
                }
                // Finished here, so announced here: the Completed event and the initiator's
                // notification, as every other finish has.
                tenantops_aws::announce_completed(&deps.events, &deps.store, &stored).await;
                return Ok(run_reply(200, &stored));
            }
            Err(WriteError::Rejected(Rejection::Conflict)) => continue,
            // The membership changed since it was read: answer as the viewer would.
            Err(WriteError::Rejected(Rejection::NotMember)) => {
                return Err(ApiError::NotFound(Resource::Run));
            }
            Err(e) => return Err(ApiError::write(e, needed)),
        }
    }
    Err(ApiError::ConcurrentChange)
}

fn run_reply(status: u16, run: &Run) -> Reply {
    Reply::json(
        status,
        &RunReply {
            links: links::related(run),
            run,
        },
    )
}

pub async fn list(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let query = RunListQuery::parse(&req.query, Plane::Admin)?;
    let after = query.after()?;
    let role = common::authorize(deps, ws, &caller, Capability::WorkspaceView).await?;
    // Members see only the runs their role may view; the filter runs in the index query.
    let viewable = OperationType::viewable_with(|c| role.has(c));
    let types = match query.filters.operation {
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
            workspace: Some(ws),
            tenant: query.filters.tenant,
            types,
            status: query.filters.status,
            active: query.filters.active,
            problem: query.problem_filter(Utc::now(), deps.limits.stuck_after()),
            limit: query.limit(),
            after,
        })
        .await?;
    Ok(Reply::json(
        200,
        &Page {
            items: &page.items,
            next_cursor: query.next_cursor(page.next),
        },
    ))
}
