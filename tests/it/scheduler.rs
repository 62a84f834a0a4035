//! The scheduler against DynamoDB Local and moto: concurrent and repeated ticks, strict slots,
//! missed slots, re-enabling, archived tenants, daylight saving, dispatch failure.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use tenantops_aws::keys;
use tenantops_core::{Outcome, RunStatus, ScheduleId};
use tenantops_scheduler::{Deps, ScheduledEvent, TickReport};
use tenantops_tests::{ApiCall, TestStack};

fn base(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

fn deps(stack: &TestStack) -> Deps {
    Deps {
        store: stack.store().clone(),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn create(stack: &TestStack, body: Value) -> Value {
    let r = stack
        .call(ApiCall::post(base(stack), body.to_string()).by(&stack.users().owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["schedule"].clone()
}

async fn patch(stack: &TestStack, id: &str, body: Value) -> Value {
    let mut c = ApiCall::post(format!("{}/{id}", base(stack)), body.to_string());
    c.method = "PATCH";
    let r = stack.call(c.by(&stack.users().owner)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["schedule"].clone()
}

async fn view(stack: &TestStack, id: &str) -> Value {
    let r = stack
        .call(ApiCall::get(format!("{}/{id}", base(stack))).by(&stack.users().owner))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["schedule"].clone()
}

fn next_fire_at(s: &Value) -> DateTime<Utc> {
    at(s["next_fire_at"].as_str().unwrap())
}

async fn tick(stack: &TestStack, now: DateTime<Utc>) -> TickReport {
    tenantops_scheduler::handle(&ScheduledEvent::at(now), &deps(stack))
        .await
        .expect("tick")
}

/// Every scheduled run in the table: (schedule id, slot) -> run.
async fn scheduled_runs(stack: &TestStack) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for ((pk, _), item) in stack.snapshot().await {
        if !pk.starts_with("RUN#") {
            continue;
        }
        let run: Value = serde_json::from_str(&item).unwrap();
        if run["type"] != "backup_schedule.scheduled" {
            continue;
        }
        let key = (
            run["context"]["backup_schedule_id"]
                .as_str()
                .unwrap()
                .to_owned(),
            run["context"]["scheduled_for"].as_str().unwrap().to_owned(),
        );
        assert!(out.insert(key, run).is_none(), "two runs for one slot");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_ticks_over_200_due_schedules_create_exactly_200_runs() {
    let stack = TestStack::new().await;
    // Created through the API, 16 at a time: each request must finish within the API's
    // 10 s Lambda timeout, which 200 at once on one loaded DynamoDB Local need not.
    let created: Vec<Value> = futures::stream::iter((0..200).map(|i| {
        create(
            &stack,
            json!({
                "name": format!("s{i}"),
                "cadence": {"kind": "daily", "at": "03:00"},
                "timezone": "UTC",
                "types": ["deviceConfigurations"],
                "retention": {"keep_last": 7},
            }),
        )
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    let slot = created.iter().map(next_fire_at).max();
    let now = slot.unwrap();
    stack.dynamodb_calls.take();
    let deps = deps(&stack);
    let event = ScheduledEvent::at(now);
    let reports =
        futures::future::join_all((0..20).map(|_| tenantops_scheduler::handle(&event, &deps)))
            .await;
    let fired: usize = reports.iter().map(|r| r.as_ref().unwrap().fired).sum();
    assert_eq!(fired, 200);
    let runs = scheduled_runs(&stack).await;
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|r| r["initiator"] == "system:scheduler"
        && r["context"]["trigger"] == "schedule"
        && r["context"]["target_scope"] == json!({"types": ["deviceConfigurations"]})));
    assert_eq!(stack.queued_messages().await, 200);
    // No Scan: the due schedules come from index queries.
    assert!(
        !stack.dynamodb_calls.take().iter().any(|c| c == "Scan"),
        "the scheduler scanned"
    );

    // EventBridge delivers the same minute again (and a retry of it): nothing new.
    let again = tick(&stack, now).await;
    assert_eq!((again.due, again.fired), (0, 0));
    assert_eq!(scheduled_runs(&stack).await.len(), 200);
    assert_eq!(stack.queued_messages().await, 200);
}

/// Moves a schedule's next fire time back, as if its advance had been lost (e.g. a table
/// restored from a backup), so the scheduler meets a slot that already has its run.
async fn rewind(stack: &TestStack, s: &Value, to: DateTime<Utc>) {
    let id: ScheduleId = s["id"].as_str().unwrap().parse().unwrap();
    let key = keys::schedule(stack.demo.workspace_id, stack.demo.tenant_id, id);
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.resources.table_name)
        .set_key(Some(key.to_item()))
        .update_expression("SET next_fire_at = :n, GSI1SK = :sk")
        .expression_attribute_values(":n", AttributeValue::S(tenantops_core::time::format(to)))
        .expression_attribute_values(":sk", AttributeValue::S(keys::due_sort(to, id)))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_slot_whose_run_already_finished_is_never_fired_again() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "hourly", "minute": 0}, "retention": {"keep_days": 30}}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let slot = next_fire_at(&s);
    let first = tick(&stack, slot).await;
    assert_eq!(first.fired, 1);
    let runs = scheduled_runs(&stack).await;
    let run_id = runs.values().next().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = stack.finish(&run_id, Outcome::Succeeded).await;
    assert_eq!(done.id.to_string(), run_id);

    // A late duplicate of the same minute, after the run finished.
    let late = tick(&stack, slot).await;
    assert_eq!(late.fired, 0);
    // The schedule's advance is lost and the slot comes round again: its strict lock holds.
    rewind(&stack, &s, slot).await;
    let replay = tick(&stack, slot + Duration::minutes(1)).await;
    assert_eq!((replay.fired, replay.already_fired), (0, 1));
    let runs = scheduled_runs(&stack).await;
    assert_eq!(runs.len(), 1);
    let run = stack.run(&run_id).await;
    assert_eq!(run.status, RunStatus::Completed);
    let s = view(&stack, &id).await;
    assert_eq!(next_fire_at(&s), slot + Duration::hours(1));
    assert_eq!(s["last_run_id"], run_id.as_str());
}

#[tokio::test]
async fn a_re_enabled_schedule_fires_at_most_one_catch_up_slot() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "hourly", "minute": 15}, "retention": {"keep_last": 3}}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let first = next_fire_at(&s);
    let off = patch(&stack, &id, json!({"enabled": false})).await;
    assert_eq!(off["enabled"], false);
    // Disabled schedules are not in the due index at all.
    let idle = tick(&stack, first + Duration::hours(3)).await;
    assert_eq!(idle.due, 0);
    let on = patch(&stack, &id, json!({"enabled": true})).await;
    assert_eq!(
        next_fire_at(&on),
        first,
        "re-enabling keeps the stored next fire time"
    );

    // Five hours and ten minutes later: six slots are due, only the latest (10 minutes old) fires.
    let now = first + Duration::hours(5) + Duration::minutes(10);
    let r = tick(&stack, now).await;
    assert_eq!((r.fired, r.skipped_slots), (1, 5));
    let runs = scheduled_runs(&stack).await;
    assert_eq!(runs.len(), 1);
    let fired = runs.keys().next().unwrap().1.clone();
    assert_eq!(at(&fired), first + Duration::hours(5));
    let s = view(&stack, &id).await;
    assert_eq!(s["skipped_total"], 5);
    let skipped = s["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 5);
    assert!(
        skipped
            .iter()
            .all(|x| x["reason"] == "schedule.slot_missed")
    );
    assert_eq!(at(skipped[0]["slot"].as_str().unwrap()), first);
    assert_eq!(next_fire_at(&s), first + Duration::hours(6));

    // Down again past the grace window: the missed slots are skipped, none fires.
    let r = tick(&stack, first + Duration::hours(8) + Duration::minutes(45)).await;
    assert_eq!((r.fired, r.skipped_slots), (0, 3));
    assert_eq!(scheduled_runs(&stack).await.len(), 1);
}

#[tokio::test]
async fn an_archived_tenants_slot_is_skipped_visibly() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "daily", "at": "04:00"}, "retention": {"keep_last": 3}}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let archive = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/archive",
                    stack.demo.workspace_id, stack.demo.tenant_id
                ),
                "",
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(archive.status, 200, "{}", archive.body);
    let r = tick(&stack, next_fire_at(&s)).await;
    assert_eq!((r.fired, r.skipped_slots), (0, 1));
    assert!(scheduled_runs(&stack).await.is_empty());
    let after = view(&stack, &id).await;
    assert_eq!(after["skipped"][0]["reason"], "tenant.archived");
    assert_eq!(next_fire_at(&after), next_fire_at(&s) + Duration::days(1));
}

#[tokio::test]
async fn a_daily_0230_berlin_schedule_fires_once_per_day_across_both_transitions() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({
            "cadence": {"kind": "daily", "at": "02:30"},
            "timezone": "Europe/Berlin",
            "retention": {"keep_last": 10},
        }),
    )
    .await;
    // Tick every 30 minutes over three days around each transition of 2027 (28 March, 31
    // October). The first tick catches up once; then exactly one run per local day.
    let windows = [
        (at("2027-03-26T01:30:00Z"), at("2027-03-29T06:00:00Z")),
        (at("2027-10-29T00:30:00Z"), at("2027-11-01T06:00:00Z")),
    ];
    for (from, until) in windows {
        let mut now = from;
        while now <= until {
            tick(&stack, now).await;
            now += Duration::minutes(30);
        }
    }
    let slots: Vec<String> = scheduled_runs(&stack)
        .await
        .into_keys()
        .map(|(schedule, slot)| {
            assert_eq!(schedule, s["id"].as_str().unwrap());
            slot
        })
        .collect();
    assert_eq!(
        slots,
        vec![
            "2027-03-26T01:30:00.000Z",
            "2027-03-27T01:30:00.000Z",
            // 02:30 does not exist on 28 March: 03:30 CEST.
            "2027-03-28T01:30:00.000Z",
            "2027-03-29T00:30:00.000Z",
            "2027-10-29T00:30:00.000Z",
            "2027-10-30T00:30:00.000Z",
            // 02:30 happens twice on 31 October: once, at its first (CEST) instant.
            "2027-10-31T00:30:00.000Z",
            "2027-11-01T01:30:00.000Z",
        ]
    );
}

#[tokio::test]
async fn a_scheduled_run_waits_queued_while_its_message_cannot_be_sent_and_its_slot_stays_used() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "hourly", "minute": 30}, "retention": {"keep_last": 3}}),
    )
    .await;
    // The relay, not the scheduler, sends the work message: SQS being down costs the tick
    // nothing.
    let missing = format!("{}-missing", stack.resources.queue_url);
    stack.relay_to(&missing).await;
    let slot = next_fire_at(&s);
    let r = tenantops_scheduler::handle(&ScheduledEvent::at(slot), &deps(&stack))
        .await
        .unwrap();
    assert_eq!(r.fired, 1);
    assert!(stack.try_settle().await.is_err(), "the send fails");
    let runs = scheduled_runs(&stack).await;
    let run = runs.values().next().unwrap();
    assert_eq!(run["status"], "queued");
    assert!(run["failures"].as_array().unwrap().is_empty());
    // The slot is used: a repeated tick does not fire it again.
    rewind(&stack, &s, slot).await;
    let again = tick(&stack, slot).await;
    assert_eq!((again.fired, again.already_fired), (0, 1));
    // Once SQS answers, the relay's retry dispatches it, once.
    stack.relay_to(&stack.resources.queue_url).await;
    assert_eq!(stack.settle().await, 1);
    assert_eq!(stack.queued_messages().await, 1);
}

#[tokio::test]
async fn a_schedule_changed_after_the_tick_read_it_is_left_for_the_next_tick() {
    let stack = TestStack::new().await;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "hourly", "minute": 45}, "retention": {"keep_last": 3}}),
    )
    .await;
    let id: ScheduleId = s["id"].as_str().unwrap().parse().unwrap();
    let slot = next_fire_at(&s);
    // What a tick read from the index, before someone narrowed the scope.
    let read = stack
        .store()
        .schedule(stack.demo.workspace_id, stack.demo.tenant_id, id)
        .await
        .unwrap()
        .unwrap();
    patch(&stack, &id.to_string(), json!({"types": ["mobileApps"]})).await;
    let advance = tenantops_aws::schedules::Advance {
        next_fire_at: slot + Duration::hours(1),
        skipped: Vec::new(),
        skipped_count: 0,
        fired: None,
    };
    assert!(
        !stack
            .store()
            .advance_schedule(&read, &advance)
            .await
            .unwrap(),
        "a stale read must not move the schedule"
    );
    // The next tick reads the new version and fires the slot with the new scope.
    let r = tick(&stack, slot).await;
    assert_eq!(r.fired, 1);
    let runs = scheduled_runs(&stack).await;
    let run = runs.values().next().unwrap();
    assert_eq!(
        run["context"]["target_scope"],
        json!({"types": ["mobileApps"]})
    );
    assert_eq!(run["status"], RunStatus::Queued.as_str());
}
