//! The scheduler tick: its cost for 10,000 schedules of which 500 are due.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use tenantops_aws::{AuditEntry, MemberGuard};
use tenantops_core::schedule::{BackupSchedule, Cadence, Retention, ScheduleKind};
use tenantops_core::{Capability, ScheduleId, TenantId};
use tenantops_scheduler::{Deps, ScheduledEvent};
use tenantops_tests::TestStack;

pub const SCHEDULES: usize = 10_000;
pub const DUE: usize = 500;

/// A daily schedule of `tenant` (of the demo workspace) at `at` (UTC), next due at
/// `next_fire_at`, backing up device configurations.
pub fn schedule(
    stack: &TestStack,
    tenant: TenantId,
    i: usize,
    next_fire_at: DateTime<Utc>,
    at: &str,
) -> BackupSchedule {
    let now = Utc::now();
    BackupSchedule {
        id: ScheduleId::new(),
        kind: ScheduleKind::Backup,
        workspace_id: stack.demo.workspace_id,
        tenant_id: Some(tenant),
        targets: None,
        name: format!("bench {i}"),
        cadence: Cadence::Daily { at: at.into() },
        timezone: "UTC".into(),
        types: vec!["deviceConfigurations".into()],
        retention: Some(Retention {
            keep_last: Some(7),
            keep_days: None,
        }),
        enabled: true,
        next_fire_at,
        version: 1,
        created_by: stack.users().owner.to_string(),
        created_at: now,
        updated_at: now,
        last_fired_slot: None,
        last_run_id: None,
        last_batch_id: None,
        skipped: Vec::new(),
        skipped_total: 0,
    }
}

fn by_operation(calls: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.clone()).or_default() += 1;
    }
    out
}

/// Stores `schedules` as the demo owner creates them (with their audit entries), 32 at a
/// time.
pub async fn seed(
    stack: &TestStack,
    schedules: impl Iterator<Item = BackupSchedule>,
) -> anyhow::Result<()> {
    let owner = stack.users().owner.clone();
    let roles = Capability::SchedulesManage.roles();
    let seeded = futures::stream::iter(schedules)
        .map(|s| {
            let audit = AuditEntry {
                id: ulid::Ulid::new(),
                workspace_id: s.workspace_id,
                tenant_id: s.tenant_id,
                actor: owner.to_string(),
                action: "backup_schedule.create".into(),
                target: s.id.to_string(),
                before: None,
                after: None,
                at: Utc::now(),
            };
            let store = stack.store().clone();
            let owner = owner.clone();
            let roles = roles.clone();
            async move {
                store
                    .create_schedule(
                        &s,
                        MemberGuard {
                            user: &owner,
                            roles: &roles,
                        },
                        &audit,
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for r in seeded {
        r.map_err(|e| anyhow::anyhow!("seeding a schedule: {e}"))?;
    }
    Ok(())
}

/// Seeds `SCHEDULES` enabled schedules (`DUE` of them due at the tick's minute, the rest due
/// an hour later), then measures one tick and a repeated tick for the same minute: wall time
/// and the DynamoDB and SQS calls counted by the stack's SDK interceptors.
pub async fn tick_cost() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    // A 03:00 UTC slot a day ahead, so that no real-time schedule is involved.
    let tick: DateTime<Utc> = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(3, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| anyhow::anyhow!("no 03:00"))?;
    let schedules = (0..SCHEDULES).map(|i| {
        let (next, at) = if i < DUE {
            (tick, "03:00")
        } else {
            (tick + Duration::hours(1), "04:00")
        };
        schedule(&stack, stack.demo.tenant_id, i, next, at)
    });
    seed(&stack, schedules).await?;
    stack.dynamodb_calls.take();
    stack.sqs_calls.take();

    let deps = Deps {
        store: stack.store().clone(),
    };
    let event = ScheduledEvent::at(tick);
    let wall = Instant::now();
    let report = tenantops_scheduler::handle(&event, &deps).await?;
    let elapsed = wall.elapsed();
    let dynamo = stack.dynamodb_calls.take();
    let sqs = stack.sqs_calls.take();
    anyhow::ensure!(report.fired == DUE, "the tick fired {} runs", report.fired);

    let wall = Instant::now();
    let again = tenantops_scheduler::handle(&event, &deps).await?;
    let again_elapsed = wall.elapsed();
    let dynamo_again = stack.dynamodb_calls.take();
    let sqs_again = stack.sqs_calls.take();
    anyhow::ensure!(again.fired == 0, "the repeated tick fired {}", again.fired);

    Ok(json!({
        "schedules": SCHEDULES,
        "due": report.due,
        "fired": report.fired,
        "wall_ms": elapsed.as_secs_f64() * 1000.0,
        "runs_per_second": report.fired as f64 / elapsed.as_secs_f64(),
        "dynamodb_calls": dynamo.len(),
        "dynamodb_calls_by_operation": by_operation(&dynamo),
        "dynamodb_calls_per_fired_run": dynamo.len() as f64 / report.fired.max(1) as f64,
        "sqs_calls": sqs.len(),
        "repeated_tick": {
            "fired": again.fired,
            "wall_ms": again_elapsed.as_secs_f64() * 1000.0,
            "dynamodb_calls": dynamo_again.len(),
            "sqs_calls": sqs_again.len(),
        },
    }))
}
