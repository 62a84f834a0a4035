//! `tenantops system ...`: the system plane, for platform operators (anyone else gets the
//! API's 404). Every read is audited in the workspaces it returns.

use serde_json::Value;
use tenantops_core::links::RunFilters;
use tenantops_core::problem::ProblemClass;

use super::{Ctx, page};
use crate::cli::SystemCmd;
use crate::error::CliError;
use crate::output;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn run_row(r: &Value) -> Vec<String> {
    let codes: Vec<String> = r["failures"]
        .as_array()
        .map(|f| f.iter().map(|f| text(&f["code"])).collect())
        .unwrap_or_default();
    vec![
        text(&r["id"]),
        text(&r["workspace_name"]),
        text(&r["type"]),
        text(&r["status"]),
        text(&r["outcome"]),
        codes.join(","),
    ]
}

const RUN_HEADER: [&str; 6] = ["RUN", "WORKSPACE", "TYPE", "STATUS", "OUTCOME", "FAILURES"];

pub async fn system(ctx: &Ctx, cmd: SystemCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    match cmd {
        SystemCmd::Runs {
            workspace,
            tenant,
            kind,
            problem,
            active,
            page: p,
        } => {
            let filters = RunFilters {
                workspace,
                tenant,
                operation: kind,
                status: None,
                active: active.then_some(true),
                problem: problem.and_then(|p| ProblemClass::parse(p.as_str())),
            };
            let runs = client.system_runs(&filters, &page(&p)).await?;
            ctx.out.show(&runs, || {
                output::table(&RUN_HEADER, items(&runs).iter().map(run_row).collect())?;
                output::more(runs["next_cursor"].as_str());
                Ok(())
            })?;
        }
        SystemCmd::Run { run } => {
            let answer = client.system_run(run).await?;
            ctx.out.show(&answer, || {
                let r = &answer["run"];
                output::fields(&[
                    ("run", text(&r["id"])),
                    ("workspace", text(&r["workspace_name"])),
                    ("type", text(&r["type"])),
                    ("status", text(&r["status"])),
                    ("outcome", text(&r["outcome"])),
                    ("counters", r["counters"].to_string()),
                    ("tenant runs", text(&answer["links"]["tenant_runs"])),
                ])
            })?;
        }
        SystemCmd::Workspaces { page: p } => {
            let list = client.system_workspaces(&page(&p)).await?;
            ctx.out.show(&list, || {
                let rows = items(&list)
                    .iter()
                    .map(|w| {
                        vec![
                            text(&w["id"]),
                            text(&w["name"]),
                            text(&w["counts"]["tenants"]),
                            text(&w["counts"]["active_runs"]),
                            text(&w["counts"]["failed_last_24h"]),
                        ]
                    })
                    .collect();
                output::table(
                    &["WORKSPACE", "NAME", "TENANTS", "ACTIVE", "FAILED (24 H)"],
                    rows,
                )?;
                output::more(list["next_cursor"].as_str());
                Ok(())
            })?;
        }
        SystemCmd::Workspace { workspace } => {
            let view = client.system_workspace(workspace).await?;
            ctx.out.show(&view, || {
                output::line(&format!(
                    "{} ({})",
                    text(&view["workspace"]["name"]),
                    workspace
                ))?;
                let tenants = view["tenants"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let rows = tenants
                    .iter()
                    .map(|t| {
                        vec![
                            text(&t["display_name"]),
                            text(&t["status"]),
                            text(&t["connection"]["status"]),
                            text(&t["onboarding"]["complete"]),
                        ]
                    })
                    .collect();
                output::table(&["TENANT", "STATUS", "CONNECTION", "ONBOARDED"], rows)?;
                let problems = view["problem_runs"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                output::table(&RUN_HEADER, problems.iter().map(run_row).collect())
            })?;
        }
    }
    Ok(0)
}
