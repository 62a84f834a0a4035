//! Scheduled drift checks (a schedule of `kind: drift_check`) against DynamoDB Local, moto and
//! graph-sim: an hourly drift schedule fired by ten concurrent ticks per slot starts exactly one
//! `drift.scheduled` run per slot, each producing a drift report, and no slot of it creates or
//! prunes a backup set; daylight saving; run-now and retry start drift checks; its own minimum
//! interval; bad input changes nothing; isolation; a workspace drift schedule's batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tenantops_api::{Deps, Limits};
use tenantops_core::{Outcome, RunStatus};
use tenantops_scheduler::{ScheduledEvent, TickReport};
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

use crate::restore::{backup, setup, tenant_path};

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const TYPE: &str = "deviceConfigurations";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn scheduler(stack: &TestStack) -> tenantops_scheduler::Deps {
    tenantops_scheduler::Deps {
        store: stack.store().clone(),
    }
}

/// `n` ticks of the same minute at once; the sum of what they fired.
async fn ticks(stack: &TestStack, now: DateTime<Utc>, n: usize) -> usize {
    let deps = scheduler(stack);
    let event = ScheduledEvent::at(now);
    let reports: Vec<TickReport> =
        futures::future::join_all((0..n).map(|_| tenantops_scheduler::handle(&event, &deps)))
            .await
            .into_iter()
            .map(|r| r.expect("every tick completes"))
            .collect();
    reports.iter().map(|r| r.fired).sum()
}

fn hourly_drift() -> Value {
    json!({
        "kind": "drift_check",
        "name": "Hourly drift",
        "cadence": {"kind": "hourly", "minute": 0},
        "timezone": "UTC",
        "types": [TYPE],
    })
}

async fn call(stack: &TestStack, c: ApiCall<'_>) -> Reply {
    stack.call(c.by(&stack.users().owner)).await
}

async fn create(stack: &TestStack, body: Value) -> Value {
    let r = call(
        stack,
        ApiCall::post(tenant_path(stack, "backup-schedules"), body.to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["schedule"].clone()
}

fn patch(path: String, body: Value) -> ApiCall<'static> {
    let mut c = ApiCall::post(path, body.to_string());
    c.method = "PATCH";
    c
}

/// Every run of `ty` in the table: (schedule id, slot) -> run.
async fn runs_of(stack: &TestStack, ty: &str) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for ((pk, _), item) in stack.snapshot().await {
        if !pk.starts_with("RUN#") {
            continue;
        }
        let run: Value = serde_json::from_str(&item).unwrap();
        if run["type"] != ty {
            continue;
        }
        let key = (
            run["context"]["backup_schedule_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            run["context"]["scheduled_for"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        assert!(out.insert(key, run).is_none(), "two runs for one slot");
    }
    out
}

/// The tenant's backup sets' ids, as the API lists them.
async fn set_ids(stack: &TestStack) -> Vec<String> {
    let r = call(stack, ApiCall::get(tenant_path(stack, "backups?limit=100"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Disables the tenant's backup schedules (the baseline's), so that only drift slots fire.
async fn disable_backup_schedules(stack: &TestStack) {
    let path = tenant_path(stack, "backup-schedules");
    let list = call(stack, ApiCall::get(path.clone())).await;
    for s in list.body["items"].as_array().unwrap() {
        if s["kind"] == "backup" {
            let id = s["id"].as_str().unwrap();
            let r = call(
                stack,
                patch(format!("{path}/{id}"), json!({"enabled": false})),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
}

fn change_one(worker: &WorkerHarness) {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects[0]["description"] = json!(format!("drifted {}", ulid::Ulid::new()));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_hourly_drift_check_fires_once_per_slot_and_never_touches_backup_sets() {
    let (stack, worker) = setup(&[(CONFIGS, 3)]).await;
    // The baseline: a backup through a backup schedule's run-now.
    let baseline = backup(&stack, &worker, &[TYPE]).await;
    let sets_before = set_ids(&stack).await;
    assert_eq!(sets_before, vec![baseline.clone()]);
    disable_backup_schedules(&stack).await;

    let s = create(&stack, hourly_drift()).await;
    assert_eq!(s["kind"], "drift_check");
    assert_eq!(s["retention"], Value::Null);
    let id = s["id"].as_str().unwrap().to_owned();
    let first: DateTime<Utc> = at(s["next_fire_at"].as_str().unwrap());
    change_one(&worker);

    // Three hourly slots, each met by ten ticks at once and ten more later in its hour.
    let slots: Vec<DateTime<Utc>> = (0..3).map(|h| first + Duration::hours(h)).collect();
    for slot in &slots {
        assert_eq!(ticks(&stack, *slot, 10).await, 1, "one run for {slot}");
        assert_eq!(ticks(&stack, *slot + Duration::minutes(20), 10).await, 0);
    }
    let runs = runs_of(&stack, "drift.scheduled").await;
    let keys: Vec<(String, String)> = runs.keys().cloned().collect();
    let expected: Vec<(String, String)> = slots
        .iter()
        .map(|s| (id.clone(), tenantops_core::time::format(*s)))
        .collect();
    assert_eq!(keys, expected);
    for run in runs.values() {
        assert_eq!(run["initiator"], "system:scheduler");
        assert_eq!(run["context"]["trigger"], "schedule");
        assert_eq!(run["context"]["target_scope"], json!({"types": [TYPE]}));
    }
    assert!(
        runs_of(&stack, "backup_schedule.scheduled")
            .await
            .is_empty()
    );

    // Each run is a drift check against the latest complete set: a report naming the change.
    worker.drain().await;
    for run in runs.values() {
        let run = stack.run(run["id"].as_str().unwrap()).await;
        assert_eq!(run.status, RunStatus::Completed, "{run:?}");
        assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
        let result = run.result.clone().unwrap();
        assert_eq!(result["baseline_backup_set_id"], baseline.as_str());
        assert_eq!(result["changed"], 1, "{result}");
        let report = call(
            &stack,
            ApiCall::get(tenant_path(&stack, &format!("drift/{}", run.id))),
        )
        .await;
        assert_eq!(report.status, 200, "{}", report.body);
        assert_eq!(report.body["items"].as_array().unwrap().len(), 1);
    }
    // No slot created a backup set, and none was pruned.
    assert_eq!(set_ids(&stack).await, sets_before);
    let view = call(
        &stack,
        ApiCall::get(tenant_path(&stack, &format!("backup-schedules/{id}"))),
    )
    .await;
    assert_eq!(
        view.body["schedule"]["last_fired_slot"],
        json!(expected[2].1)
    );
}

#[tokio::test]
async fn an_hourly_drift_schedule_fires_each_wall_clock_hour_once_across_daylight_saving() {
    let stack = TestStack::new().await;
    let mut body = hourly_drift();
    body["timezone"] = json!("Europe/Berlin");
    let s = create(&stack, body).await;
    let id = s["id"].as_str().unwrap().to_owned();
    // 31 October 2027: 02:00 happens twice in Berlin (CEST 00:00Z, CET 01:00Z). Ticks every
    // 15 minutes; the first catches up once (the latest missed slot within the grace).
    let mut now = at("2027-10-30T21:15:00Z");
    while now <= at("2027-10-31T03:00:00Z") {
        ticks(&stack, now, 2).await;
        now += Duration::minutes(15);
    }
    let slots: Vec<String> = runs_of(&stack, "drift.scheduled")
        .await
        .into_keys()
        .map(|(schedule, slot)| {
            assert_eq!(schedule, id);
            slot
        })
        .collect();
    assert_eq!(
        slots,
        vec![
            "2027-10-30T21:00:00.000Z",
            "2027-10-30T22:00:00.000Z",
            "2027-10-30T23:00:00.000Z",
            // 02:00 local, once, at its first (CEST) instant; 01:00Z is 02:00 CET again.
            "2027-10-31T00:00:00.000Z",
            "2027-10-31T02:00:00.000Z",
            "2027-10-31T03:00:00.000Z",
        ]
    );
}

#[tokio::test]
async fn run_now_and_retry_of_a_drift_schedule_start_drift_checks() {
    let (stack, worker) = setup(&[(CONFIGS, 2)]).await;
    let s = create(&stack, hourly_drift()).await;
    let id = s["id"].as_str().unwrap().to_owned();
    // Its first slot, before any backup: the check fails without a baseline.
    assert_eq!(
        ticks(&stack, at(s["next_fire_at"].as_str().unwrap()), 1).await,
        1
    );
    worker.drain().await;
    let failed = runs_of(&stack, "drift.scheduled").await;
    let failed = failed.values().next().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = stack.run(&failed).await;
    assert_eq!(run.outcome, Outcome::Failed, "{run:?}");
    assert_eq!(run.failures[0].code.as_str(), "drift.baseline_missing");

    let baseline = backup(&stack, &worker, &[TYPE]).await;
    let sets = set_ids(&stack).await;
    let run_now = tenant_path(&stack, &format!("backup-schedules/{id}/run-now"));
    let first = call(&stack, ApiCall::post(run_now.clone(), "{}")).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let run = &first.body["run"];
    assert_eq!(run["type"], "drift.check");
    assert_eq!(run["context"]["backup_schedule_id"], id.as_str());
    assert_eq!(run["context"]["target_scope"], json!({"types": [TYPE]}));
    // One drift check per tenant while active: a second run-now answers it.
    let again = call(&stack, ApiCall::post(run_now, "")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["deduplicated"], true);
    assert_eq!(again.run_id(), first.run_id());

    let retry = call(
        &stack,
        ApiCall::post(
            tenant_path(&stack, &format!("backup-schedules/{id}/retry")),
            json!({"run_id": failed}).to_string(),
        ),
    )
    .await;
    // The run-now's check is still active: the retry is deduplicated onto it.
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.run_id(), first.run_id());
    worker.drain().await;
    let done = stack.run(&first.run_id()).await;
    assert_eq!(done.outcome, Outcome::Succeeded, "{done:?}");
    assert_eq!(
        done.result.as_ref().unwrap()["baseline_backup_set_id"],
        baseline.as_str()
    );
    // Now idle: the retry starts its own check, linked to the failed run.
    let retry = call(
        &stack,
        ApiCall::post(
            tenant_path(&stack, &format!("backup-schedules/{id}/retry")),
            json!({"run_id": failed}).to_string(),
        ),
    )
    .await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    assert_eq!(retry.body["run"]["type"], "drift.check");
    assert_eq!(retry.body["run"]["context"]["retry_of"], failed.as_str());
    assert_eq!(retry.body["run"]["context"]["trigger"], "retry");
    worker.drain().await;
    assert_eq!(stack.run(&retry.run_id()).await.outcome, Outcome::Succeeded);
    assert_eq!(set_ids(&stack).await, sets, "a drift check writes no set");

    // A readonly member may not start it; another workspace's owner does not see it.
    let users = stack.users();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("backup-schedules/{id}/run-now")),
                "{}",
            )
            .by(&users.readonly),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let d = &stack.demo;
    let r = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/backup-schedules/{id}/run-now",
                    d.other_workspace_id, d.other_tenant_id
                ),
                "{}",
            )
            .by(&users.outsider),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "schedule.not_found"),
        "{}",
        r.body
    );
}

/// The stack's API with another minimum interval for backup schedules.
fn with_minimum(stack: &TestStack, minutes: u32) -> Arc<Deps> {
    Arc::new(Deps {
        limits: Limits {
            min_schedule_interval_minutes: minutes,
            ..stack.deps.limits
        },
        ..(*stack.deps).clone()
    })
}

#[tokio::test]
async fn a_drift_schedule_can_be_hourly_whatever_the_backups_minimum() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let path = tenant_path(&stack, "backup-schedules");
    let four_hours = with_minimum(&stack, 240);
    let backup_hourly = json!({
        "cadence": {"kind": "hourly", "minute": 0},
        "retention": {"keep_last": 3},
    });
    let r = stack
        .call_with(
            &four_hours,
            ApiCall::post(path.clone(), backup_hourly.to_string()).by(owner),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "schedule.too_frequent"));
    let r = stack
        .call_with(
            &four_hours,
            ApiCall::post(path.clone(), hourly_drift().to_string()).by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Its own minimum is at most an hour: half-hourly is refused, stating the hour.
    let mut half_hourly = hourly_drift();
    half_hourly["cadence"] = json!({"kind": "cron", "expr": "*/30 * * * *"});
    let r = stack
        .call_with(
            &four_hours,
            ApiCall::post(path.clone(), half_hourly.to_string()).by(owner),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "schedule.too_frequent"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("60 minutes"),
        "{}",
        r.body
    );
    // A deployment that lowers the backups' minimum lowers it too.
    let r = stack
        .call_with(
            &with_minimum(&stack, 30),
            ApiCall::post(path, half_hourly.to_string()).by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_bad_kind_or_a_drift_schedules_retention_is_refused_and_changes_nothing() {
    let stack = TestStack::new().await;
    let path = tenant_path(&stack, "backup-schedules");
    let drift = create(&stack, hourly_drift()).await;
    let drift_id = drift["id"].as_str().unwrap().to_owned();
    let backup = create(
        &stack,
        json!({"cadence": {"kind": "daily", "at": "02:00"}, "retention": {"keep_last": 3}}),
    )
    .await;
    assert_eq!(backup["kind"], "backup", "the default kind");
    let backup_id = backup["id"].as_str().unwrap().to_owned();
    let before = stack.snapshot().await;

    let with = |k: &str, v: Value| {
        let mut b = hourly_drift();
        b[k] = v;
        b
    };
    for (body, code) in [
        (with("kind", json!("drift")), "schedule.invalid"),
        (with("kind", json!(1)), "schedule.invalid"),
        (with("kind", Value::Null), "schedule.invalid"),
        (
            with("retention", json!({"keep_last": 3})),
            "schedule.invalid_retention",
        ),
        (with("kind", json!("backup")), "schedule.invalid_retention"),
    ] {
        let r = call(&stack, ApiCall::post(path.clone(), body.to_string())).await;
        assert_eq!((r.status, r.code()), (400, code), "{body}: {}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
    }
    for (id, body, code) in [
        (&drift_id, json!({"kind": "backup"}), "schedule.invalid"),
        (
            &backup_id,
            json!({"kind": "drift_check"}),
            "schedule.invalid",
        ),
        (
            &drift_id,
            json!({"retention": {"keep_last": 1}}),
            "schedule.invalid_retention",
        ),
        (&drift_id, json!({"kind": "weekly"}), "schedule.invalid"),
    ] {
        let r = call(&stack, patch(format!("{path}/{id}"), body.clone())).await;
        assert_eq!((r.status, r.code()), (400, code), "{body}: {}", r.body);
    }
    // A backup of a drift schedule's id through the operations route.
    let r = call(
        &stack,
        ApiCall::post(
            stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id),
            json!({"type": "backup_schedule.run_now", "params": {"backup_schedule_id": drift_id}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "operation.invalid_params"),
        "{}",
        r.body
    );
    assert_eq!(stack.snapshot().await, before, "a refusal wrote something");

    // Repeating the kind is no change.
    let r = call(
        &stack,
        patch(format!("{path}/{drift_id}"), json!({"kind": "drift_check"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schedule"]["version"], drift["version"]);
}

#[tokio::test]
async fn a_workspace_drift_schedule_fires_one_batch_of_drift_checks_per_slot() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let (ws, owner) = (stack.demo.workspace_id, &users.owner);
    stack.add_connected_tenants(ws, owner, 2).await;
    let base = format!("/v1/workspaces/{ws}/backup-schedules");
    let mut body = hourly_drift();
    body["tenants"] = json!("all");
    let r = stack
        .call(ApiCall::post(base.clone(), body.to_string()).by(owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["schedule"]["kind"], "drift_check");
    let id = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let slot = at(r.body["schedule"]["next_fire_at"].as_str().unwrap());
    // Another workspace's owner does not see it.
    let other = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/backup-schedules/{id}",
                stack.demo.other_workspace_id
            ))
            .by(&users.outsider),
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.body);

    assert_eq!(ticks(&stack, slot, 10).await, 1, "one batch for the slot");
    stack.settle().await;
    let view = stack
        .call(ApiCall::get(format!("{base}/{id}")).by(owner))
        .await;
    let batch = view.body["schedule"]["last_batch_id"].as_str().unwrap();
    let b = stack
        .call(ApiCall::get(format!("/v1/workspaces/{ws}/batches/{batch}")).by(owner))
        .await;
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.body["batch"]["type"], "drift.scheduled", "{}", b.body);
    let tenants: Vec<_> = stack
        .store()
        .list_tenants(ws)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.status == tenantops_aws::TenantStatus::Active)
        .collect();
    // One run per tenant for the slot (each strict per schedule, slot and tenant).
    let mut all = Vec::new();
    for ((pk, _), item) in stack.snapshot().await {
        if pk.starts_with("RUN#") {
            let run: Value = serde_json::from_str(&item).unwrap();
            all.push(run);
        }
    }
    let scheduled: Vec<&Value> = all
        .iter()
        .filter(|r| r["type"] == "drift.scheduled")
        .collect();
    assert_eq!(scheduled.len(), tenants.len(), "{scheduled:?}");
    let mut run_tenants: Vec<&str> = scheduled
        .iter()
        .map(|r| r["tenant_id"].as_str().unwrap())
        .collect();
    run_tenants.sort_unstable();
    run_tenants.dedup();
    assert_eq!(run_tenants.len(), tenants.len(), "one run per tenant");
    assert!(all.iter().all(|r| r["type"] != "backup_schedule.scheduled"));
    for run in scheduled {
        assert_eq!(run["context"]["backup_schedule_id"], id.as_str());
        assert_eq!(run["context"]["target_scope"], json!({"types": [TYPE]}));
    }
}
