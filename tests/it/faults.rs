//! Fault injection against the local stack. Each test proves "nothing lost, nothing
//! duplicated": every run ends exactly once, with one terminal transition, one notification
//! and one Completed event, and no work counted or stored twice.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tenantops_aws::{RunQuery, Store};
use tenantops_core::{Outcome, Run, RunStatus};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::Fault;
use tenantops_reaper::Tick;
use tenantops_tests::faults::{DynamoFaults, KillAt};
use tenantops_tests::{ApiCall, TestStack, WorkerHarness};

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        handback_after: Duration::from_secs(1),
    }
}

fn codes(run: &Run) -> Vec<String> {
    run.failures.iter().map(|f| f.code.to_string()).collect()
}

async fn tenant_runs(stack: &TestStack) -> Vec<Run> {
    stack
        .store()
        .list_runs(&RunQuery {
            workspace: Some(stack.demo.workspace_id),
            tenant: Some(stack.demo.tenant_id),
            types: None,
            status: None,
            active: None,
            problem: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap()
        .items
}

/// The lifecycle events captured for one run: (Started, Completed) counts.
fn lifecycle_counts(events: &[Value], run_id: &str) -> (usize, usize) {
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["detail-type"] == kind && e["detail"]["run_id"] == run_id)
            .count()
    };
    (of("OperationRun Started"), of("OperationRun Completed"))
}

async fn parse_events(stack: &TestStack, capture: &str) -> Vec<Value> {
    stack
        .captured(capture)
        .await
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

async fn completed_notifications(stack: &TestStack, run_id: &str) -> usize {
    stack
        .store()
        .notifications(&stack.users().owner, 200)
        .await
        .unwrap()
        .iter()
        .filter(|n| n.run_id.to_string() == run_id && n.status == "completed")
        .count()
}

#[tokio::test]
async fn dynamodb_throttling_and_5xx_on_every_write_path_are_retried_without_loss_or_duplicates() {
    // Every second DynamoDB operation of the API, the worker and the reaper has its first two
    // attempts answered with a throttle or a 500 before it is sent.
    every_write_path_under(DynamoFaults::every(2, 2)).await;
}

#[tokio::test]
async fn dynamodb_answers_lost_after_a_write_applied_are_retried_without_loss_or_duplicates() {
    // Every transaction (start, claim, progress, finish, reap) and conditional update (the
    // reaper's re-dispatch mark) is applied, but its caller gets a 500 and retries: the retry
    // must neither apply the write twice (counters) nor mistake its own committed write for
    // someone else's (a dedupe answer and no dispatch, a refused claim, a skipped re-dispatch).
    every_write_path_under(DynamoFaults::lose_answers(
        1,
        &["TransactWriteItems", "UpdateItem"],
    ))
    .await;
}

/// Starts (and a dedupe hit) through the API, a worker draining them, a reaper failing a
/// stale run, all through `faults`; then nothing may be lost or duplicated.
async fn every_write_path_under(faults: DynamoFaults) {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let store = Store::new(faults.dynamodb(&stack.sdk), &stack.resources.table_name);
    let api = stack.with_store(store.clone());
    let counts: Vec<(&str, usize)> = tenantops_graph_sim::DEMO_COLLECTIONS
        .iter()
        .map(|p| (*p, 6))
        .collect();
    let mut worker = stack.worker(&counts, policy()).await;
    worker.deps.store = store.clone();
    let mut reaper = stack.reaper();
    reaper.store = store.clone();
    // One re-dispatch, then `run.stale`: the second sighting below fails the run.
    reaper.thresholds.max_redispatches = 1;

    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let owner = &stack.users().owner;
    let mut ids = Vec::new();
    for body in [
        json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}),
        json!({"type": "directory_groups.sync"}),
        json!({"type": "directory_role_definitions.sync"}),
    ] {
        let r = stack
            .call_with(
                &api,
                ApiCall::post(path.clone(), body.to_string()).by(owner),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        // The same start again is a dedupe hit, not a second run.
        let again = stack
            .call_with(
                &api,
                ApiCall::post(path.clone(), body.to_string()).by(owner),
            )
            .await;
        assert_eq!(
            (again.status, again.run_id()),
            (200, r.run_id()),
            "{}",
            again.body
        );
        ids.push(r.run_id());
    }
    assert_eq!(worker.drain().await, 3);

    // One run left behind for the reaper: its message is lost and it goes stale.
    let stale = stack
        .call_with(
            &api,
            ApiCall::post(
                path.clone(),
                json!({"type": "provider_connection.verify"}).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(stale.status, 202, "{}", stale.body);
    let got = stack
        .sqs
        .receive_message()
        .queue_url(&stack.resources.queue_url)
        .send()
        .await
        .unwrap();
    for m in got.messages.unwrap_or_default() {
        stack
            .sqs
            .delete_message()
            .queue_url(&stack.resources.queue_url)
            .receipt_handle(m.receipt_handle.unwrap())
            .send()
            .await
            .unwrap();
    }
    let first = Utc::now() + chrono::Duration::hours(1);
    let second = first + chrono::Duration::hours(1);
    let t1 = tenantops_reaper::tick(first, &reaper).await;
    let _ = stack
        .sqs
        .purge_queue()
        .queue_url(&stack.resources.queue_url)
        .send()
        .await;
    let t2 = tenantops_reaper::tick(second, &reaper).await;
    assert_eq!(
        (t1.redispatched, t2.failed_stale, t1.errors + t2.errors),
        (1, 1, 0),
        "{t1:?} {t2:?}"
    );
    assert!(
        faults.injected() > 5,
        "faults were injected: {}",
        faults.injected()
    );

    let runs = tenant_runs(&stack).await;
    assert_eq!(runs.len(), 4, "no duplicate run: {runs:?}");
    let events = parse_events(&stack, &capture).await;
    for id in &ids {
        let run = stack.run(id).await;
        assert_eq!(
            (run.status, run.outcome, run.attempts),
            (RunStatus::Completed, Outcome::Succeeded, 1),
            "{run:?}"
        );
        assert_eq!(run.counters.processed, run.counters.total, "{run:?}");
        assert_eq!(lifecycle_counts(&events, id), (1, 1), "{id}");
        assert_eq!(completed_notifications(&stack, id).await, 1, "{id}");
    }
    assert_eq!(
        stack.run(&ids[0]).await.counters.processed,
        6,
        "counted once"
    );
    let inventory = stack
        .store()
        .inventory(
            stack.demo.workspace_id,
            stack.demo.tenant_id,
            "deviceConfigurations",
        )
        .await
        .unwrap();
    assert_eq!(inventory.len(), 6);
    let reaped = stack.run(&stale.run_id()).await;
    assert_eq!(codes(&reaped), ["run.stale"]);
    assert_eq!(lifecycle_counts(&events, &stale.run_id()), (0, 1));
    assert_eq!(completed_notifications(&stack, &stale.run_id()).await, 1);

    // Every identity is free again.
    for body in [
        json!({"type": "directory_groups.sync"}),
        json!({"type": "provider_connection.verify"}),
    ] {
        let r = stack
            .call_with(
                &api,
                ApiCall::post(path.clone(), body.to_string()).by(owner),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
}

/// A kill and what followed it.
struct Killed {
    stack: TestStack,
    worker: WorkerHarness,
    /// The run as the killed worker left it.
    at_kill: Run,
    /// The run once a healthy worker had its redelivered message.
    run: Run,
    events: Vec<Value>,
}

/// A two-type inventory sync whose first worker is killed at `at`; the message comes back
/// after its (short) visibility timeout and a healthy worker finishes the run.
async fn kill_then_recover(at: KillAt) -> Killed {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let mut worker = stack
        .worker(
            &[
                ("deviceManagement/deviceConfigurations", 5),
                ("deviceManagement/deviceCompliancePolicies", 5),
            ],
            policy(),
        )
        .await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations", "deviceCompliancePolicies"]}}))
        .await;

    // The doomed worker: its DynamoDB calls go through the kill switch, its lease is short.
    let faults = DynamoFaults::none();
    let mut kill = faults.kill_at(at);
    worker.deps.store = Store::new(faults.dynamodb(&stack.sdk), &stack.resources.table_name);
    // As long as the message's visibility: the retry does not wait longer, and a loaded
    // machine does not see the doomed worker's lease run out before its kill.
    worker.deps.lease = chrono::Duration::seconds(2);
    let received = stack
        .sqs
        .receive_message()
        .queue_url(&stack.resources.queue_url)
        .visibility_timeout(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let event = tenantops_local::worker_host::event(&received, &stack.resources.queue_url).unwrap();
    tokio::select! {
        _ = tenantops_worker::handle(event, chrono::Utc::now() + chrono::TimeDelta::seconds(120), &worker.deps) => panic!("the worker was to be killed"),
        _ = kill.fired() => {}
    }
    let at_kill = stack.run(&id).await;

    // A healthy worker picks up the redelivered message once it is visible again.
    worker.deps.store = stack.store().clone();
    worker.deps.lease = tenantops_worker::LEASE;
    let mut run = stack.run(&id).await;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        worker.drain().await;
        run = stack.run(&id).await;
        if run.status == RunStatus::Completed {
            break;
        }
    }
    let events = parse_events(&stack, &capture).await;
    Killed {
        stack,
        worker,
        at_kill,
        run,
        events,
    }
}

/// What every kill test proves once the run ended.
async fn assert_ended_exactly_once(stack: &TestStack, run: &Run, events: &[Value]) {
    let id = run.id.to_string();
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    assert_eq!(run.attempts, 2, "killed once, re-claimed once");
    assert_eq!(
        (run.counters.total, run.counters.processed),
        (10, 10),
        "the dead attempt's work is not counted twice"
    );
    for ty in ["deviceConfigurations", "deviceCompliancePolicies"] {
        let stored = stack
            .store()
            .inventory(stack.demo.workspace_id, stack.demo.tenant_id, ty)
            .await
            .unwrap();
        assert_eq!(stored.len(), 5, "{ty}: stored once per object");
    }
    let (_, completed) = lifecycle_counts(events, &id);
    assert_eq!(completed, 1, "one Completed event");
    assert_eq!(completed_notifications(stack, &id).await, 1);
    assert_eq!(
        stack.queued_messages().await,
        0,
        "the message was acknowledged"
    );
    assert_eq!(tenant_runs(stack).await.len(), 1, "no second run");
    let far = Utc::now() + chrono::Duration::days(2);
    assert_eq!(
        tenantops_reaper::tick(far, &stack.reaper()).await,
        Tick::default(),
        "nothing left for the reaper"
    );
}

#[tokio::test]
async fn a_worker_killed_right_after_claiming_leaves_a_run_that_ends_exactly_once() {
    let k = kill_then_recover(KillAt {
        operation: "TransactWriteItems",
        body_contains: None,
        nth: 1,
        after_sending: true,
    })
    .await;
    assert_eq!(
        (
            k.at_kill.status,
            k.at_kill.attempts,
            k.at_kill.counters.processed
        ),
        (RunStatus::Running, 1, 0),
        "killed right after its claim"
    );
    assert_ended_exactly_once(&k.stack, &k.run, &k.events).await;
    let lists = k
        .worker
        .sim
        .requests()
        .iter()
        // First pages only: one listing per attempt that reached Graph.
        .filter(|r| {
            r.path.ends_with("deviceConfigurations")
                && r.status == 200
                && !r.query.contains("skiptoken")
        })
        .count();
    assert_eq!(lists, 1, "the killed worker never reached Graph");
}

#[tokio::test]
async fn a_worker_killed_after_half_the_work_leaves_a_run_that_ends_exactly_once() {
    // The claim is the first transaction, the first type's progress the second.
    let k = kill_then_recover(KillAt {
        operation: "TransactWriteItems",
        body_contains: None,
        nth: 2,
        after_sending: true,
    })
    .await;
    assert_eq!(
        (k.at_kill.status, k.at_kill.counters.processed),
        (RunStatus::Running, 5),
        "killed with one of its two types done"
    );
    assert_ended_exactly_once(&k.stack, &k.run, &k.events).await;
}

#[tokio::test]
async fn a_worker_killed_after_its_writes_but_before_finishing_leaves_a_run_that_ends_exactly_once()
{
    // The finishing transaction is the one that sets the status to completed.
    let k = kill_then_recover(KillAt {
        operation: "TransactWriteItems",
        body_contains: Some(r#"{"S":"completed"}"#),
        nth: 1,
        after_sending: false,
    })
    .await;
    assert_eq!(
        (k.at_kill.status, k.at_kill.counters.processed),
        (RunStatus::Running, 10),
        "killed with all its work written, before its finish"
    );
    assert_ended_exactly_once(&k.stack, &k.run, &k.events).await;
}

#[tokio::test]
async fn graph_5xx_storms_end_every_run_with_a_terminal_outcome() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(
            &[("deviceManagement/deviceConfigurations", 5), ("groups", 5)],
            policy(),
        )
        .await;
    worker.sim.inject(Fault::Unavailable {
        path_prefix: String::new(),
        times: 10_000,
        status: 503,
        retry_after_secs: None,
    });
    let inventory = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    let groups = stack.start(json!({"type": "directory_groups.sync"})).await;
    let reaper = stack.reaper();
    let ended = drive_until_finished(&stack, &worker, &reaper, &[&inventory, &groups]).await;
    for run in ended {
        assert_eq!(
            (run.status, run.outcome),
            (RunStatus::Completed, Outcome::Failed),
            "{run:?}"
        );
        assert!(!run.failures.is_empty(), "{run:?}");
    }
}

#[tokio::test]
async fn graph_throttling_storms_end_every_run_with_a_terminal_outcome() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 5)], policy())
        .await;
    // Every request throttled with a Retry-After longer than the worker sleeps: each
    // delivery hands the message back, until SQS gives up on it.
    worker.sim.inject(Fault::Throttle {
        path_prefix: String::new(),
        times: 10_000,
        retry_after_secs: Some(2),
    });
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    let reaper = stack.reaper();
    let ended = drive_until_finished(&stack, &worker, &reaper, &[&id]).await;
    let run = &ended[0];
    assert_eq!(
        (run.status, run.outcome, codes(run)),
        (
            RunStatus::Completed,
            Outcome::Failed,
            vec!["worker.exhausted".into()]
        ),
        "{run:?}"
    );
    assert!(run.attempts >= tenantops_local::provision::MAX_RECEIVE_COUNT);
    assert!(
        worker.sim.requests_inside_retry_after().is_empty(),
        "no request was sent inside a Retry-After window"
    );
}

/// Runs the worker and the reaper (as of now) until the runs are finished, within a bounded
/// number of rounds.
async fn drive_until_finished(
    stack: &TestStack,
    worker: &WorkerHarness,
    reaper: &tenantops_reaper::Deps,
    ids: &[&str],
) -> Vec<Run> {
    for _ in 0..60 {
        worker.drain().await;
        tenantops_reaper::tick(Utc::now(), reaper).await;
        let mut runs = Vec::new();
        for id in ids {
            runs.push(stack.run(id).await);
        }
        if runs.iter().all(|r| r.status == RunStatus::Completed) {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut runs = Vec::new();
    for id in ids {
        runs.push(stack.run(id).await);
    }
    panic!("runs still not finished: {runs:?}");
}

/// Every scheduled run in the table, by (schedule, slot); a second run for a slot fails.
async fn scheduled_runs(stack: &TestStack) -> std::collections::BTreeMap<(String, String), Run> {
    let mut out = std::collections::BTreeMap::new();
    for ((pk, _), item) in stack.snapshot().await {
        if !pk.starts_with("RUN#") {
            continue;
        }
        let run: Run = serde_json::from_str(&item).unwrap();
        if run.operation != tenantops_core::OperationType::BackupScheduleScheduled {
            continue;
        }
        let key = (
            run.context.backup_schedule_id.clone().unwrap(),
            tenantops_core::time::format(run.context.scheduled_for.unwrap()),
        );
        assert!(out.insert(key, run).is_none(), "two runs for one slot");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_ticks_run_concurrently_and_retried_under_dynamodb_faults_fire_each_slot_once() {
    let stack = TestStack::new().await;
    let base = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    );
    let mut slot = None;
    for i in 0..8 {
        let body = json!({
            "name": format!("nightly {i}"),
            "cadence": {"kind": "daily", "at": "03:00"},
            "timezone": "UTC",
            "types": ["deviceConfigurations"],
            "retention": {"keep_last": 7},
        });
        let r = stack
            .call(ApiCall::post(base.clone(), body.to_string()).by(&stack.users().owner))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let next = chrono::DateTime::parse_from_rfc3339(
            r.body["schedule"]["next_fire_at"].as_str().unwrap(),
        )
        .unwrap()
        .with_timezone(&Utc);
        slot = Some(slot.map_or(next, |s: chrono::DateTime<Utc>| s.max(next)));
    }
    let event = tenantops_scheduler::ScheduledEvent::at(slot.unwrap());

    // Four concurrent ticks whose DynamoDB calls are throttled or fail with 500s before they
    // are sent, then EventBridge's retry of the same minute whose writes' answers are lost.
    let throttled = DynamoFaults::every(2, 2);
    let deps = tenantops_scheduler::Deps {
        store: Store::new(throttled.dynamodb(&stack.sdk), &stack.resources.table_name),
    };
    let ticks =
        futures::future::join_all((0..4).map(|_| tenantops_scheduler::handle(&event, &deps))).await;
    let lost = DynamoFaults::lose_answers(1, &["TransactWriteItems", "UpdateItem"]);
    let retry_deps = tenantops_scheduler::Deps {
        store: Store::new(lost.dynamodb(&stack.sdk), &stack.resources.table_name),
    };
    let retried = tenantops_scheduler::handle(&event, &retry_deps).await;
    assert!(throttled.injected() > 0);

    let runs = scheduled_runs(&stack).await;
    assert_eq!(
        runs.len(),
        8,
        "one run per schedule's slot: {ticks:?} {retried:?}"
    );
    assert_eq!(stack.queued_messages().await, 8, "one dispatch per run");
    assert!(runs.values().all(|r| r.status == RunStatus::Queued));
}

const POLICIES: &str = "deviceManagement/configurationPolicies";

fn policy_names(worker: &WorkerHarness) -> Vec<String> {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let mut names: Vec<String> = t.collections[POLICIES]
            .objects
            .iter()
            .map(|o| o["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    })
}

#[tokio::test]
async fn a_restore_killed_after_its_graph_writes_but_before_finishing_writes_nothing_twice() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let entra = stack.entra_tenant_id().await;
    let client = tenantops_graph_sim::SimClient::new(
        tenantops_local::seed::DEMO_CLIENT_ID,
        tenantops_local::seed::DEMO_CLIENT_SECRET,
    );
    let mut config =
        tenantops_graph_sim::SimConfig::generated(&entra, client, &[("groups", 2), (POLICIES, 3)]);
    // As Graph: a repeated POST creates a second object.
    config.idempotent_creates = false;
    let mut worker = stack.worker_with(config, policy()).await;
    let owner = &stack.users().owner;
    let tenant = format!(
        "/v1/workspaces/{}/tenants/{}",
        stack.demo.workspace_id, stack.demo.tenant_id
    );

    // Back the policies up (with their assignments' group in the cache), delete them in the
    // tenant, and preview their restore.
    let group = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections["groups"].objects[0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(POLICIES).unwrap();
        let ids: Vec<String> = c
            .objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids {
            c.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({"id": format!("{id}_a"), "target": {
                    "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                    "groupId": group,
                    "deviceAndAppManagementAssignmentFilterId": null,
                    "deviceAndAppManagementAssignmentFilterType": "none"}})],
            );
        }
    });
    stack.start(json!({"type": "directory_groups.sync"})).await;
    worker.drain().await;
    let r = stack
        .call(
            ApiCall::post(
                format!("{tenant}/backup-schedules"),
                json!({"name": "before the restore", "cadence": {"kind": "hourly", "minute": 5},
                       "retention": {"keep_last": 10}, "types": ["configurationPolicies"]})
                .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let schedule = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                format!("{tenant}/backup-schedules/{schedule}/run-now"),
                "{}",
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let set = stack.run(&r.run_id()).await.result.unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let names = policy_names(&worker);
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(POLICIES).unwrap();
        c.objects.clear();
        c.sub_resources.clear();
    });
    stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["configurationPolicies"]}}))
        .await;
    worker.drain().await;
    let p = stack
        .call(
            ApiCall::post(
                format!("{tenant}/restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(p.status, 202, "{}", p.body);
    let restore = p.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = p.body["confirmation_token"].as_str().unwrap().to_owned();
    // The preview is a run: computed before the restore can be executed.
    worker.drain().await;
    let r = stack
        .call(
            ApiCall::post(
                format!("{tenant}/restores/{restore}/execute"),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.run_id();

    // The worker writes every object to Graph, then dies just before its finishing write.
    let faults = DynamoFaults::none();
    let mut kill = faults.kill_at(KillAt {
        operation: "TransactWriteItems",
        body_contains: Some(r#"{"S":"completed"}"#),
        nth: 1,
        after_sending: false,
    });
    worker.deps.store = Store::new(faults.dynamodb(&stack.sdk), &stack.resources.table_name);
    // As long as the message's visibility: the retry does not wait longer, and a loaded
    // machine does not see the doomed worker's lease run out before its kill.
    worker.deps.lease = chrono::Duration::seconds(2);
    let received = stack
        .sqs
        .receive_message()
        .queue_url(&stack.resources.queue_url)
        .visibility_timeout(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let event = tenantops_local::worker_host::event(&received, &stack.resources.queue_url).unwrap();
    tokio::select! {
        _ = tenantops_worker::handle(event, chrono::Utc::now() + chrono::TimeDelta::seconds(120), &worker.deps) => panic!("the worker was to be killed"),
        _ = kill.fired() => {}
    }
    assert_eq!(policy_names(&worker), names, "every object was written");
    assert_eq!(stack.run(&id).await.status, RunStatus::Running);

    // The message comes back; a healthy worker ends the run without writing anything again.
    worker.deps.store = stack.store().clone();
    worker.deps.lease = tenantops_worker::LEASE;
    let mut run = stack.run(&id).await;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        worker.drain().await;
        run = stack.run(&id).await;
        if run.status == RunStatus::Completed {
            break;
        }
    }
    assert_eq!(
        (run.status, run.outcome, run.attempts),
        (RunStatus::Completed, Outcome::Succeeded, 2),
        "{run:?}"
    );
    assert_eq!(policy_names(&worker), names, "no object written twice");
    let creates = worker
        .sim
        .writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path.ends_with(POLICIES))
        .count();
    assert_eq!(creates, 3, "one create per object");
    let events = parse_events(&stack, &capture).await;
    assert_eq!(lifecycle_counts(&events, &id).1, 1, "one Completed event");
    assert_eq!(completed_notifications(&stack, &id).await, 1);
}
