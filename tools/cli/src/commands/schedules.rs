//! `tenantops schedules create|list|show|update|delete|run-now|retry`.

use serde_json::{Map, Value, json};
use tenantops_client::Schedule;

use super::runs::{json_arg, started};
use super::{Ctx, page};
use crate::cli::{ScheduleFields, SchedulesCmd};
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

fn row(s: &Schedule) -> Vec<String> {
    vec![
        s.id.clone(),
        s.name.clone(),
        s.cadence.to_string(),
        s.timezone.clone(),
        if s.enabled { "yes" } else { "no" }.to_owned(),
        s.next_fire_at.clone(),
        output::opt(&s.last_run_id),
    ]
}

const HEADER: [&str; 7] = [
    "SCHEDULE", "NAME", "CADENCE", "TIMEZONE", "ENABLED", "NEXT", "LAST RUN",
];

fn show(ctx: &Ctx, s: &tenantops_client::ScheduleResponse) -> Result<(), CliError> {
    ctx.out
        .show(s, || output::table(&HEADER, vec![row(&s.schedule)]))
}

pub async fn schedules(ctx: &Ctx, cmd: SchedulesCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let (ws, t) = ctx.tenant()?;
    match cmd {
        SchedulesCmd::Create(fields) => {
            let created = client.create_schedule(ws, t, &body(&fields)?).await?;
            show(ctx, &created)?;
        }
        SchedulesCmd::List { page: p } => {
            let list = client.list_schedules(ws, t, &page(&p)).await?;
            ctx.out.show(&list, || {
                output::table(&HEADER, list.items.iter().map(row).collect())?;
                output::more(list.next_cursor.as_deref());
                Ok(())
            })?;
        }
        SchedulesCmd::Show { schedule } => {
            show(ctx, &client.view_schedule(ws, t, &schedule).await?)?;
        }
        SchedulesCmd::Update { schedule, fields } => {
            let updated = client
                .update_schedule(ws, t, &schedule, &body(&fields)?)
                .await?;
            show(ctx, &updated)?;
        }
        SchedulesCmd::Delete { schedule } => {
            client.delete_schedule(ws, t, &schedule).await?;
            ctx.out.show(&json!({ "deleted": schedule }), || {
                output::line(&format!(
                    "schedule {schedule} deleted (its runs and backup sets stay)"
                ))
            })?;
        }
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
    }
    Ok(0)
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
}
