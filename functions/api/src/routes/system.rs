//! The system plane: platform operators' read-only views across every workspace. Every
//! route answers anyone else (a workspace owner too) exactly as a missing route does. Lists
//! come from indexes (the platform index, the active-runs index), never from guessed ids;
//! links come from the system family only; and every read of a workspace's data leaves a
//! `system.view` entry in that workspace's audit log before the answer is sent.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::http::Method;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tenantops_aws::{AuditEntry, RunQuery, TenantRecord, WorkspaceRecord};
use tenantops_core::problem::ProblemClass;
use tenantops_core::{Outcome, Run, UserId, WorkspaceId, links};

use super::common::{self, Audit};
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::run_list::{Plane, RunListQuery};
use crate::tenant_state::{ATTENTION_WINDOW, TenantState};

/// Problem runs a workspace view shows at most.
const RECENT_PROBLEMS: usize = 25;
/// Tenants whose state a workspace view reads at once.
const TENANT_READS_AT_ONCE: usize = 16;

/// Lets a platform operator's GET through: anyone else gets the missing route's 404 (so the
/// system plane does not exist for them, whatever the method), an operator's other method
/// a 405.
pub fn gate(req: &ApiRequest, deps: &Deps, method: &Method) -> Result<(), ApiError> {
    req.platform_operator(&deps.platform)?;
    if *method == Method::GET {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// The operator, recorded on the request span; 404 for anyone else.
fn operator(req: &ApiRequest, deps: &Deps) -> Result<UserId, ApiError> {
    let caller = req.platform_operator(&deps.platform)?;
    tracing::Span::current().record("caller", caller.as_str());
    Ok(caller)
}

/// Writes one `system.view` entry per workspace read, before anything is answered: no
/// platform read goes unaudited (a failed write is a 500, not an unaudited answer).
async fn audit_reads(
    deps: &Deps,
    operator: &UserId,
    workspaces: impl IntoIterator<Item = WorkspaceId>,
    target: &str,
) -> Result<(), ApiError> {
    let entries: Vec<AuditEntry> = workspaces
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|ws| {
            Audit {
                workspace: ws,
                tenant: None,
                actor: operator,
                action: "system.view",
                target: target.to_owned(),
            }
            .entry(None, None)
        })
        .collect();
    deps.store.record_reads(&entries).await?;
    Ok(())
}

/// The names of `workspaces`, read once each.
async fn workspace_names(
    deps: &Deps,
    workspaces: impl IntoIterator<Item = WorkspaceId>,
) -> Result<HashMap<WorkspaceId, String>, ApiError> {
    let ids: BTreeSet<WorkspaceId> = workspaces.into_iter().collect();
    let reads = ids.iter().map(|ws| deps.store.get_workspace(*ws));
    let mut names = HashMap::new();
    for record in futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
    {
        names.insert(record.workspace_id, record.name);
    }
    Ok(names)
}

/// A run as the admin viewer shows it, plus its workspace's name.
fn run_json(run: &Run, names: &HashMap<WorkspaceId, String>) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(run).map_err(ApiError::internal)?;
    value["workspace_name"] = json!(names.get(&run.workspace_id));
    Ok(value)
}

/// Runs as a system list shows them: each with its workspace's name and system links.
fn listed_runs<'a>(
    runs: impl Iterator<Item = &'a Run>,
    names: &HashMap<WorkspaceId, String>,
) -> Result<Vec<Value>, ApiError> {
    runs.map(|r| {
        let mut item = run_json(r, names)?;
        item["links"] = json!(links::system_related(r));
        Ok(item)
    })
    .collect()
}

/// `GET /v1/system/operations`: runs across every workspace, newest first.
pub async fn list_operations(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let operator = operator(req, deps)?;
    let query = RunListQuery::parse(&req.query, Plane::System)?;
    let after = query.after()?;
    let problem = query.problem_filter(Utc::now(), deps.limits.stuck_after());
    let types = query.filters.operation.map(|t| vec![t]);
    // One workspace: its own partitions, as its members' list reads them; else the
    // platform index.
    let page = deps
        .store
        .list_runs(&RunQuery {
            workspace: query.filters.workspace,
            tenant: query.filters.tenant,
            types,
            status: query.filters.status,
            active: query.filters.active,
            problem,
            limit: query.limit(),
            after,
        })
        .await?;
    let read: Vec<WorkspaceId> = page.items.iter().map(|r| r.workspace_id).collect();
    let names = workspace_names(deps, read.iter().copied()).await?;
    let collection = links::system_collection(&query.filters);
    audit_reads(deps, &operator, read, &collection).await?;
    let items = listed_runs(page.items.iter(), &names)?;
    Ok(Reply::json(
        200,
        &json!({
            "items": items,
            "next_cursor": query.next_cursor(page.next),
            "links": { "self": collection },
        }),
    ))
}

/// `GET /v1/system/operations/{run}`: any run, with system links.
pub async fn view_operation(req: &ApiRequest, deps: &Deps, run: &str) -> Result<Reply, ApiError> {
    let operator = operator(req, deps)?;
    let run = common::run_by_id(deps, run).await?;
    let names = workspace_names(deps, [run.workspace_id]).await?;
    audit_reads(
        deps,
        &operator,
        [run.workspace_id],
        &links::system_view(run.id),
    )
    .await?;
    Ok(Reply::json(
        200,
        &json!({
            "run": run_json(&run, &names)?,
            "links": links::system_related(&run),
        }),
    ))
}

/// `GET /v1/system/workspaces`: every workspace, with its tenants, the runs active now, and
/// the runs that failed in the last 24 hours.
pub async fn list_workspaces(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let operator = operator(req, deps)?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, 25, 100)?;
    const QUERY: &str = "system-workspaces";
    let after = cursor::after::<WorkspaceId>(&q, QUERY)?;
    let now = Utc::now();
    let (page, active) = futures::try_join!(
        async { Ok::<_, ApiError>(deps.store.list_all_workspaces(limit, after).await?) },
        async { Ok(deps.store.active_runs(None).await?) },
    )?;
    let mut active_by_ws: HashMap<WorkspaceId, usize> = HashMap::new();
    for run in &active {
        *active_by_ws.entry(run.workspace_id).or_default() += 1;
    }
    let counts = page.items.iter().map(|w| async {
        let (tenants, problems) = futures::try_join!(
            deps.store.count_tenants(w.workspace_id),
            deps.store
                .recent_problem_runs(w.workspace_id, None, now - ATTENTION_WINDOW),
        )?;
        let failed = problems
            .iter()
            .filter(|p| p.run.outcome == Outcome::Failed)
            .count();
        Ok::<_, ApiError>((tenants, failed))
    });
    let counts = futures::future::try_join_all(counts).await?;
    audit_reads(
        deps,
        &operator,
        page.items.iter().map(|w| w.workspace_id),
        &links::system_workspaces(),
    )
    .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .zip(counts)
        .map(|(w, (tenants, failed))| {
            json!({
                "id": w.workspace_id,
                "name": w.name,
                "created_at": tenantops_core::time::format(w.created_at),
                "counts": {
                    "tenants": tenants,
                    "active_runs": active_by_ws.get(&w.workspace_id).copied().unwrap_or(0),
                    "failed_last_24h": failed,
                },
                "links": links::system_workspace_links(w.workspace_id),
            })
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "items": items,
            "next_cursor": page.next.map(|id| cursor::encode(QUERY, id)),
        }),
    ))
}

/// `GET /v1/system/workspaces/{ws}`: one workspace, its tenants (connection and onboarding
/// status), and its recent problem runs.
pub async fn view_workspace(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let operator = operator(req, deps)?;
    let ws: WorkspaceId = ws
        .parse()
        .map_err(|_| ApiError::NotFound(Resource::Workspace))?;
    let record: WorkspaceRecord = deps
        .store
        .get_workspace(ws)
        .await?
        .ok_or(ApiError::NotFound(Resource::Workspace))?;
    let now = Utc::now();
    let (tenants, problems, active) = futures::try_join!(
        async { Ok::<_, ApiError>(deps.store.list_tenants(ws).await?) },
        async {
            Ok(deps
                .store
                .recent_problem_runs(ws, None, now - ATTENTION_WINDOW)
                .await?)
        },
        async { Ok(deps.store.active_runs(Some(ws)).await?) },
    )?;
    // A few tenants at a time: a workspace may have hundreds.
    // A few tenants at a time: a workspace may have hundreds. (Owned ids, so the stream's
    // closure borrows nothing of its items.)
    let ids: Vec<_> = tenants.iter().map(|t| t.tenant_id).collect();
    let states: Vec<TenantState> = futures::stream::iter(ids)
        .map(|id| TenantState::read(deps, ws, id))
        .buffered(TENANT_READS_AT_ONCE)
        .try_collect()
        .await?;
    let stuck_after = deps.limits.stuck_after();
    let mut recent: Vec<&Run> = problems.iter().map(|p| &p.run).collect();
    recent.extend(
        active
            .iter()
            .filter(|r| ProblemClass::Stuck.matches(r, now, stuck_after)),
    );
    recent.sort_by_key(|r| std::cmp::Reverse(r.id));
    recent.truncate(RECENT_PROBLEMS);
    audit_reads(deps, &operator, [ws], &links::system_workspace(ws)).await?;
    let names = HashMap::from([(ws, record.name.clone())]);
    let problem_runs = listed_runs(recent.into_iter(), &names)?;
    let tenants: Vec<Value> = tenants
        .iter()
        .zip(&states)
        .map(|(t, state)| tenant_json(t, state))
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "workspace": common::workspace_json(&record),
            "counts": { "active_runs": active.len() },
            "tenants": tenants,
            "problem_runs": problem_runs,
            "links": links::system_workspace_links(ws),
        }),
    ))
}

/// A tenant as the system plane shows it: its record, connection and onboarding status, and
/// the system link to its runs.
fn tenant_json(t: &TenantRecord, state: &TenantState) -> Value {
    let (status, code) = state.connection_status();
    let blocking = state.onboarding_blocker(t);
    json!({
        "id": t.tenant_id,
        "entra_tenant_id": t.entra_tenant_id,
        "display_name": t.display_name,
        "status": t.status,
        "created_at": tenantops_core::time::format(t.created_at),
        "connection": {
            "present": state.conn.is_some(),
            "status": status,
            "status_code": code,
        },
        "onboarding": {
            "complete": blocking.is_none(),
            "blocking_code": blocking,
        },
        "links": {
            "runs": links::system_collection(&links::RunFilters {
                workspace: Some(t.workspace_id),
                tenant: Some(t.tenant_id),
                ..links::RunFilters::default()
            }),
        },
    })
}
