//! `tenantops schedules create|list|show|update|delete|run-now|retry` (a tenant's) and
//! `tenantops workspace-schedules create|list|show|update|delete` (the workspace's own, each
//! slot a batch over its targets).

use serde_json::{Map, Value, json};
use tenantops_client::{Schedule, ScheduleOwner};

use super::runs::{json_arg, started};
use super::{Ctx, page};
use crate::cli::{ScheduleFields, ScheduleTargets, SchedulesCmd, WorkspaceSchedulesCmd};
use crate::error::CliError;
use crate::output;

/// `daily:HH:MM`, `hourly:MM`, `weekly:DAY:HH:MM`, `cron:EXPR`, or the cadence's JSON.
pub fn cadence(spec: &str) -> Result<Value, CliError> {
    let bad = || CliError::Cadence(spec.to_owned());
    if spec.trim_start().starts_with('{') {
        return json_arg("cadence", spec);
    }
    let (kind, rest) = spec.split_once(':').ok_or_else(bad)?;
    Ok(match kind {
        "daily" => json!({ "kind": "daily", "at": rest }),
        "hourly" => json!({ "kind": "hourly", "minute": rest.parse::<u32>().map_err(|_| bad())? }),
        "weekly" => {
            let (day, at) = rest.split_once(':').ok_or_else(bad)?;
            json!({ "kind": "weekly", "weekday": day, "at": at })
        }
        "cron" => json!({ "kind": "cron", "expr": rest }),
        _ => return Err(bad()),
    })
}

/// The fields given, as a `CreateSchedule` or `PatchSchedule` document.
pub fn body(f: &ScheduleFields) -> Result<Value, CliError> {
    let mut body = Map::new();
    if let Some(k) = &f.kind {
        body.insert("kind".into(), json!(k));
    }
    if let Some(n) = &f.name {
        body.insert("name".into(), json!(n));
    }
    if let Some(c) = &f.cadence {
        body.insert("cadence".into(), cadence(c)?);
    }
    if let Some(tz) = &f.timezone {
        body.insert("timezone".into(), json!(tz));
    }
    if let Some(types) = &f.types {
        body.insert("types".into(), json!(types));
    }
    if f.keep_last.is_some() || f.keep_days.is_some() {
        let mut retention = Map::new();
        if let Some(n) = f.keep_last {
            retention.insert("keep_last".into(), json!(n));
        }
        if let Some(n) = f.keep_days {
            retention.insert("keep_days".into(), json!(n));
        }
        body.insert("retention".into(), Value::Object(retention));
    }
    if let Some(e) = f.enabled {
        body.insert("enabled".into(), json!(e));
    }
    Ok(Value::Object(body))
}

/// A workspace schedule's targets as the API reads them (`tenants`), if any were given.
pub fn targets(t: &ScheduleTargets) -> Option<Value> {
    match (t.all, &t.tag) {
        (true, _) => Some(json!("all")),
        (false, Some(tag)) => Some(json!({ "tag": tag })),
        (false, None) => None,
    }
}

fn row(s: &Schedule) -> Vec<String> {
    let last = s
        .last_run_id
        .map(|r| r.to_string())
        .or_else(|| s.last_batch_id.clone().map(|b| format!("batch {b}")));
    let over = match (&s.tenant_id, &s.targets) {
        (Some(t), _) => t.to_string(),
        (None, Some(Value::String(all))) => all.clone(),
        (None, Some(targets)) => targets.to_string(),
        (None, None) => String::new(),
    };
    vec![
        s.id.clone(),
        s.name.clone(),
        s.cadence.to_string(),
        s.timezone.clone(),
        if s.enabled { "yes" } else { "no" }.to_owned(),
        s.next_fire_at.clone(),
        output::opt(&last),
        over,
    ]
}

const HEADER: [&str; 8] = [
    "SCHEDULE", "NAME", "CADENCE", "TIMEZONE", "ENABLED", "NEXT", "LAST", "OVER",
];

fn show(ctx: &Ctx, s: &tenantops_client::ScheduleResponse) -> Result<(), CliError> {
    ctx.out
        .show(s, || output::table(&HEADER, vec![row(&s.schedule)]))
}

/// What both kinds of schedule do alike.
enum Common {
    Create(Value),
    List(crate::cli::PageArgs),
    Show(String),
    Update(String, Value),
    Delete(String),
}

async fn common(ctx: &Ctx, owner: ScheduleOwner, cmd: Common) -> Result<u8, CliError> {
    let client = &ctx.client;
    match cmd {
        Common::Create(body) => show(ctx, &client.create_schedule(owner, &body).await?)?,
        Common::List(p) => {
            let list = client.list_schedules(owner, &page(&p)).await?;
            ctx.out.show(&list, || {
                output::table(&HEADER, list.items.iter().map(row).collect())?;
                output::more(list.next_cursor.as_deref());
                Ok(())
            })?;
        }
        Common::Show(id) => show(ctx, &client.view_schedule(owner, &id).await?)?,
        Common::Update(id, patch) => show(ctx, &client.update_schedule(owner, &id, &patch).await?)?,
        Common::Delete(id) => {
            client.delete_schedule(owner, &id).await?;
            ctx.out.show(&json!({ "deleted": id }), || {
                output::line(&format!(
                    "schedule {id} deleted (its runs and backup sets stay)"
                ))
            })?;
        }
    }
    Ok(0)
}

pub async fn schedules(ctx: &Ctx, cmd: SchedulesCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let (ws, t) = ctx.tenant()?;
    let owner = ScheduleOwner::Tenant(ws, t);
    let cmd = match cmd {
        SchedulesCmd::Create(fields) => Common::Create(body(&fields)?),
        SchedulesCmd::List { page } => Common::List(page),
        SchedulesCmd::Show { schedule } => Common::Show(schedule),
        SchedulesCmd::Update { schedule, fields } => Common::Update(schedule, body(&fields)?),
        SchedulesCmd::Delete { schedule } => Common::Delete(schedule),
        SchedulesCmd::RunNow {
            schedule,
            idempotency_key,
            watch: w,
        } => {
            let s = client
                .run_schedule_now(ws, t, &schedule, idempotency_key.as_deref())
                .await?;
            return started(ctx, s, w.watch).await;
        }
        SchedulesCmd::Retry {
            schedule,
            run,
            idempotency_key,
            watch: w,
        } => {
            let s = client
                .retry_schedule_run(ws, t, &schedule, run, idempotency_key.as_deref())
                .await?;
            return started(ctx, s, w.watch).await;
        }
    };
    common(ctx, owner, cmd).await
}

/// The fields and targets given, as a workspace schedule's document.
fn workspace_body(fields: &ScheduleFields, t: &ScheduleTargets) -> Result<Value, CliError> {
    let mut body = body(fields)?;
    if let (Some(tenants), Some(map)) = (targets(t), body.as_object_mut()) {
        map.insert("tenants".into(), tenants);
    }
    Ok(body)
}

pub async fn workspace_schedules(ctx: &Ctx, cmd: WorkspaceSchedulesCmd) -> Result<u8, CliError> {
    let owner = ScheduleOwner::Workspace(ctx.workspace()?);
    let cmd = match cmd {
        WorkspaceSchedulesCmd::Create { fields, targets } => {
            Common::Create(workspace_body(&fields, &targets)?)
        }
        WorkspaceSchedulesCmd::List { page } => Common::List(page),
        WorkspaceSchedulesCmd::Show { schedule } => Common::Show(schedule),
        WorkspaceSchedulesCmd::Update {
            schedule,
            fields,
            targets,
        } => Common::Update(schedule, workspace_body(&fields, &targets)?),
        WorkspaceSchedulesCmd::Delete { schedule } => Common::Delete(schedule),
    };
    common(ctx, owner, cmd).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences_read_as_the_api_spells_them() {
        assert_eq!(
            cadence("daily:02:30").expect("daily"),
            json!({"kind": "daily", "at": "02:30"})
        );
        assert_eq!(
            cadence("hourly:15").expect("hourly"),
            json!({"kind": "hourly", "minute": 15})
        );
        assert_eq!(
            cadence("weekly:monday:02:30").expect("weekly"),
            json!({"kind": "weekly", "weekday": "monday", "at": "02:30"})
        );
        assert_eq!(
            cadence("cron:30 2 * * 1-5").expect("cron"),
            json!({"kind": "cron", "expr": "30 2 * * 1-5"})
        );
        assert!(cadence("sometimes").is_err());
        assert!(cadence("hourly:x").is_err());
    }

    #[test]
    fn only_given_fields_are_sent() {
        let f = ScheduleFields {
            keep_last: Some(7),
            enabled: Some(false),
            ..ScheduleFields::default()
        };
        assert_eq!(
            body(&f).expect("body"),
            json!({"retention": {"keep_last": 7}, "enabled": false})
        );
        let drift = ScheduleFields {
            kind: Some("drift_check".into()),
            cadence: Some("hourly:0".into()),
            ..ScheduleFields::default()
        };
        assert_eq!(
            body(&drift).expect("body"),
            json!({"kind": "drift_check", "cadence": {"kind": "hourly", "minute": 0}})
        );
    }

    #[test]
    fn a_workspace_schedules_targets_are_all_or_a_tag() {
        let f = ScheduleFields {
            cadence: Some("daily:01:00".into()),
            ..ScheduleFields::default()
        };
        let all = ScheduleTargets {
            all: true,
            tag: None,
        };
        assert_eq!(
            workspace_body(&f, &all).expect("body"),
            json!({"cadence": {"kind": "daily", "at": "01:00"}, "tenants": "all"})
        );
        let gold = ScheduleTargets {
            all: false,
            tag: Some("gold".into()),
        };
        assert_eq!(
            workspace_body(&ScheduleFields::default(), &gold).expect("body"),
            json!({"tenants": {"tag": "gold"}})
        );
        assert_eq!(targets(&ScheduleTargets::default()), None);
    }
}
