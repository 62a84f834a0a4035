//! Cooperative cancel: `POST /v1/operations/{run}/cancel` on queued, running, cancelled,
//! completed and foreign runs; a worker stopping at its next checkpoint mid-backup, mid-sync
//! and mid-restore.

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_aws::{AuditQuery, Progressed, Store};
use tenantops_core::{Outcome, RunId, RunStatus, Transition};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::{SimClient, SimConfig};
use tenantops_local::seed::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use tenantops_tests::faults::{DynamoFaults, KillAt, Pause};
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

fn sync() -> serde_json::Value {
    json!({ "type": "inventory.sync" })
}

async fn cancel(stack: &TestStack, run: &str, user: &tenantops_core::UserId) -> Reply {
    stack
        .call(ApiCall::post(format!("/v1/operations/{run}/cancel"), "").by(user))
        .await
}

async fn cancelled_entries(stack: &TestStack) -> usize {
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: Some("operation.cancelled".to_owned()),
            tenant: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    entries.len()
}

#[tokio::test]
async fn a_queued_run_is_cancelled_at_once_and_frees_its_identity() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;

    let r = cancel(&stack, &run, owner).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.run_id(), run);
    assert_eq!(r.body["run"]["status"], "completed");
    assert_eq!(r.body["run"]["outcome"], "cancelled");
    assert_eq!(r.body["links"]["view"], format!("/v1/operations/{run}"));
    let stored = stack.run(&run).await;
    assert_eq!(
        (stored.status, stored.outcome),
        (RunStatus::Completed, Outcome::Cancelled)
    );
    assert!(stored.completed_at.is_some());
    assert_eq!(cancelled_entries(&stack).await, 1);

    // The identity is free: the same start is a new run.
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let again = stack
        .call(ApiCall::post(path, sync().to_string()).by(owner))
        .await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_ne!(again.run_id(), run);
}

#[tokio::test]
async fn cancelling_twice_answers_the_run_and_audits_once() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;
    let first = cancel(&stack, &run, owner).await;
    let second = cancel(&stack, &run, owner).await;
    assert_eq!((first.status, second.status), (200, 200), "{}", second.body);
    assert_eq!(second.body["run"], first.body["run"]);
    assert_eq!(cancelled_entries(&stack).await, 1);
}

#[tokio::test]
async fn foreign_and_unknown_runs_are_not_found_like_the_viewer() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let run = stack.start(sync()).await;
    let unknown = RunId::new().to_string();
    for (id, user) in [
        (run.as_str(), &users.outsider),
        (unknown.as_str(), &users.owner),
        ("not-a-run-id", &users.owner),
    ] {
        let r = cancel(&stack, id, user).await;
        let viewed = stack
            .call(ApiCall::get(format!("/v1/operations/{id}")).by(user))
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.code(), "run.not_found");
        assert_eq!(r.body["detail"], viewed.body["detail"]);
        assert_eq!(viewed.status, 404);
    }
    assert_eq!(stack.run(&run).await.status, RunStatus::Queued);
    assert_eq!(cancelled_entries(&stack).await, 0);
}

#[tokio::test]
async fn readonly_is_forbidden_naming_the_start_capability() {
    let stack = TestStack::new().await;
    let run = stack.start(sync()).await;
    let r = cancel(&stack, &run, &stack.users().readonly).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.code(), "auth.forbidden");
    let needed = tenantops_core::OperationType::InventorySync
        .spec()
        .start_capability
        .to_string();
    assert!(
        r.body["detail"].as_str().unwrap().contains(&needed),
        "{}",
        r.body
    );
    assert_eq!(stack.run(&run).await.status, RunStatus::Queued);
    assert_eq!(cancelled_entries(&stack).await, 0);
}

#[tokio::test]
async fn a_run_completed_otherwise_is_a_conflict() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let run = stack.start(sync()).await;
    stack.finish(&run, Outcome::Succeeded).await;
    let r = cancel(&stack, &run, owner).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "run.already_completed");
    assert_eq!(stack.run(&run).await.outcome, Outcome::Succeeded);
    assert_eq!(cancelled_entries(&stack).await, 0);
}

const POLICIES: &str = "deviceManagement/configurationPolicies";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

fn tenant_path(stack: &TestStack, rest: &str) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/{rest}",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

/// Claims a queued run as a worker named `owner` would.
async fn claim(stack: &TestStack, run: &str, owner: &str) {
    let run = stack.run(run).await;
    let claim = Transition::Claim {
        now: chrono::Utc::now(),
        lease: chrono::Duration::minutes(5),
    };
    stack
        .store()
        .transition_as(&run, Some(owner), &claim)
        .await
        .unwrap();
}

/// The worker's table client, held before the `nth` transaction that names the run's
/// counters (the claim is the first; each checkpoint another).
fn paused_at(worker: &mut WorkerHarness, stack: &TestStack, nth: u64) -> Pause {
    let faults = DynamoFaults::none();
    let pause = faults.pause_at(KillAt {
        operation: "TransactWriteItems",
        body_contains: Some("counters"),
        nth,
        after_sending: false,
    });
    worker.deps.store = Store::new(faults.dynamodb(&stack.sdk), &stack.resources.table_name);
    pause
}

fn no_secret(r: &Reply) {
    assert!(
        !r.body.to_string().contains(DEMO_CLIENT_SECRET),
        "a secret in a response: {}",
        r.body
    );
}

#[tokio::test]
async fn a_running_run_gets_a_cancel_request_once_and_others_are_refused_as_for_queued_runs() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let run = stack.start(sync()).await;
    claim(&stack, &run, "worker-a").await;

    for (user, status, code) in [
        (&users.outsider, 404, "run.not_found"),
        (&users.readonly, 403, "auth.forbidden"),
    ] {
        let r = cancel(&stack, &run, user).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
        no_secret(&r);
    }
    assert_eq!(cancelled_entries(&stack).await, 0);
    assert!(stack.run(&run).await.cancel_requested_at.is_none());

    let first = cancel(&stack, &run, &users.owner).await;
    assert_eq!(first.status, 202, "{}", first.body);
    no_secret(&first);
    assert_eq!(first.body["run"]["status"], "running");
    assert_eq!(first.body["run"]["outcome"], "pending");
    assert!(
        first.body["run"]["cancel_requested_at"].is_string(),
        "{}",
        first.body
    );
    let second = cancel(&stack, &run, &users.owner).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_eq!(second.body["run"], first.body["run"]);
    assert_eq!(cancelled_entries(&stack).await, 1, "audited once");

    // The worker's next checkpoint is refused and says why; its counters stay.
    let stored = stack.run(&run).await;
    let delta = tenantops_core::Counters {
        total: 3,
        ..Default::default()
    };
    assert_eq!(
        stack
            .store()
            .progress_unless_cancelled(&stored, "worker-a", delta)
            .await
            .unwrap(),
        Progressed::CancelRequested
    );
    assert_eq!(stack.run(&run).await.counters, stored.counters);
    // A worker that lost the lease is told so, not that a cancel was requested.
    assert!(
        stack
            .store()
            .progress_unless_cancelled(&stored, "worker-b", delta)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_backup_cancelled_mid_way_ends_cancelled_with_its_counters_as_they_were() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let mut worker = stack.worker(&[(POLICIES, 3)], policy()).await;
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, "backup-schedules"),
                json!({
                    "name": "Cancelled",
                    "cadence": {"kind": "hourly", "minute": 5},
                    "retention": {"keep_last": 10},
                    "types": ["configurationPolicies"],
                })
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
                tenant_path(&stack, &format!("backup-schedules/{schedule}/run-now")),
                "{}",
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run = r.run_id();

    // Held at the checkpoint after the page's objects were read (the claim, then this).
    let mut pause = paused_at(&mut worker, &stack, 2);
    let work = worker.drain();
    let cancelling = async {
        tokio::time::timeout(std::time::Duration::from_secs(120), pause.reached())
            .await
            .expect("the worker reached the held checkpoint");
        let before = stack.run(&run).await;
        assert_eq!(before.status, RunStatus::Running);
        assert_eq!(before.counters.processed, 0, "{before:?}");
        let r = cancel(&stack, &run, owner).await;
        assert_eq!(r.status, 202, "{}", r.body);
        pause.release();
        before.counters
    };
    let (_, at_cancel) = tokio::join!(work, cancelling);

    let done = stack.run(&run).await;
    assert_eq!(
        (done.status, done.outcome),
        (RunStatus::Completed, Outcome::Cancelled),
        "{done:?}"
    );
    assert_eq!(done.counters, at_cancel, "counters as they were");
    assert!(done.cancel_requested_at.is_some() && done.completed_at.is_some());
    assert!(done.failures.is_empty(), "{done:?}");
    // It stopped before a set was recorded.
    let sets = stack
        .store()
        .backup_sets(stack.demo.workspace_id, stack.demo.tenant_id, 10, None)
        .await
        .unwrap();
    assert!(sets.items.is_empty(), "{sets:?}");
    let again = cancel(&stack, &run, owner).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["run"]["outcome"], "cancelled");
    assert_eq!(cancelled_entries(&stack).await, 1);
}

#[tokio::test]
async fn a_sync_cancelled_mid_way_frees_its_identity() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let mut worker = stack.worker(&[(POLICIES, 2)], policy()).await;
    let run = stack.start(sync()).await;
    // Held at its first checkpoint (the claim is the first write naming the counters).
    let mut pause = paused_at(&mut worker, &stack, 2);
    let work = worker.drain();
    let cancelling = async {
        tokio::time::timeout(std::time::Duration::from_secs(120), pause.reached())
            .await
            .expect("the worker reached the held checkpoint");
        let r = cancel(&stack, &run, owner).await;
        assert_eq!(r.status, 202, "{}", r.body);
        // While its worker has yet to stop, the identity is still taken.
        let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
        let dedupe = stack
            .call(ApiCall::post(path, sync().to_string()).by(owner))
            .await;
        assert_eq!(dedupe.status, 200, "{}", dedupe.body);
        assert_eq!(dedupe.run_id(), run);
        pause.release();
    };
    tokio::join!(work, cancelling);

    let done = stack.run(&run).await;
    assert_eq!(
        (done.status, done.outcome),
        (RunStatus::Completed, Outcome::Cancelled),
        "{done:?}"
    );
    assert_eq!(done.counters, tenantops_core::Counters::default());
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let again = stack
        .call(ApiCall::post(path, sync().to_string()).by(owner))
        .await;
    assert_eq!(again.status, 202, "the identity is free: {}", again.body);
    assert_ne!(again.run_id(), run);
}

async fn audited(stack: &TestStack, action: &str) -> usize {
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: Some(action.to_owned()),
            tenant: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    entries.len()
}

fn policy_count(worker: &WorkerHarness) -> usize {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections[POLICIES].objects.len()
    })
}

#[tokio::test]
async fn a_restore_cancelled_halfway_reports_exactly_the_items_it_wrote() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let entra = stack.entra_tenant_id().await;
    let mut config = SimConfig::generated(
        &entra,
        SimClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        &[("groups", 2), (POLICIES, 3)],
    );
    config.idempotent_creates = false;
    let mut worker = stack.worker_with(config, policy()).await;
    // Every policy assigned to a group the directory cache knows, so the preview resolves.
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let group = t.collections["groups"].objects[0]["id"].clone();
        let c = t.collections.get_mut(POLICIES).unwrap();
        let ids: Vec<String> = c
            .objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids {
            c.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({
                    "id": format!("{id}_a"),
                    "target": {
                        "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                        "groupId": group,
                        "deviceAndAppManagementAssignmentFilterId": null,
                        "deviceAndAppManagementAssignmentFilterType": "none"
                    }
                })],
            );
        }
    });
    let groups = stack.start(json!({"type": "directory_groups.sync"})).await;
    worker.drain().await;
    assert_eq!(stack.run(&groups).await.outcome, Outcome::Succeeded);

    // A backup of the three policies, then they are deleted and the inventory knows it.
    let schedule = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, "backup-schedules"),
                json!({
                    "name": "For the restore",
                    "cadence": {"kind": "hourly", "minute": 5},
                    "retention": {"keep_last": 10},
                    "types": ["configurationPolicies"],
                })
                .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(schedule.status, 201, "{}", schedule.body);
    let schedule = schedule.body["schedule"]["id"].as_str().unwrap().to_owned();
    let backup = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("backup-schedules/{schedule}/run-now")),
                "{}",
            )
            .by(owner),
        )
        .await;
    assert_eq!(backup.status, 202, "{}", backup.body);
    worker.drain().await;
    let backup = stack.run(&backup.run_id()).await;
    assert_eq!(backup.outcome, Outcome::Succeeded, "{backup:?}");
    let set = backup.result.unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(POLICIES).unwrap();
        c.objects.clear();
        c.sub_resources.clear();
    });
    let resync = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["configurationPolicies"]}}))
        .await;
    worker.drain().await;
    assert_eq!(stack.run(&resync).await.outcome, Outcome::Succeeded);

    let preview = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, "restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(preview.status, 202, "{}", preview.body);
    // The preview is a run of its own: worked to its end before the execute.
    worker.drain().await;
    assert_eq!(
        stack.run(&preview.run_id()).await.outcome,
        Outcome::Succeeded
    );
    let restore = preview.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = preview.body["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let execute = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(execute.status, 202, "{}", execute.body);
    let run = execute.run_id();

    // Held at the checkpoint after the first item was written (claim, total, this).
    let mut pause = paused_at(&mut worker, &stack, 3);
    let work = worker.drain();
    let cancelling = async {
        tokio::time::timeout(std::time::Duration::from_secs(120), pause.reached())
            .await
            .expect("the worker reached the held checkpoint");
        assert_eq!(policy_count(&worker), 1, "one item written so far");
        let r = cancel(&stack, &run, owner).await;
        assert_eq!(r.status, 202, "{}", r.body);
        no_secret(&r);
        pause.release();
    };
    tokio::join!(work, cancelling);

    let done = stack.run(&run).await;
    assert_eq!(
        (done.status, done.outcome),
        (RunStatus::Completed, Outcome::Cancelled),
        "{done:?}"
    );
    assert_eq!(policy_count(&worker), 1, "nothing written after the cancel");
    let result = done.result.clone().unwrap();
    let items = result["items"].as_array().unwrap();
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "cancelled", "cancelled"], "{result}");
    assert!(items[0]["written_id"].is_string(), "{result}");
    assert!(
        items[1..].iter().all(|i| i["written_id"].is_null()),
        "{result}"
    );
    assert_eq!(
        (result["succeeded"].as_u64(), result["cancelled"].as_u64()),
        (Some(1), Some(2))
    );
    // The counters match the items: the last checkpoint's step is recorded at the finish.
    assert_eq!(
        (
            done.counters.total,
            done.counters.processed,
            done.counters.succeeded
        ),
        (3, 1, 1),
        "{done:?}"
    );

    // The restore's own records say the same.
    let view = stack
        .call(ApiCall::get(tenant_path(&stack, &format!("restores/{restore}"))).by(owner))
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    no_secret(&view);
    let recorded: Vec<(Value, Value)> = view.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["status"].clone(), i["written_id"].clone()))
        .collect();
    assert_eq!(recorded[0].0, "done");
    assert_eq!(recorded[0].1, items[0]["written_id"]);
    assert_eq!(recorded[1].0, "cancelled");
    assert_eq!(recorded[2].0, "cancelled");
    assert_eq!(audited(&stack, "restore.object_written").await, 1);
    assert_eq!(audited(&stack, "restore.executed").await, 1);
    assert_eq!(cancelled_entries(&stack).await, 1);
}
