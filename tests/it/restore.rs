//! Restores against graph-sim (with Graph's real create behaviour: no dedupe), DynamoDB Local
//! and moto's S3: preview, refusals that write nothing, execution that survives a crash
//! mid-way without duplicates, round trips through backup, isolation, high-risk gating, audit.

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_aws::{AuditQuery, Store};
use tenantops_core::{Outcome, Run, RunStatus};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::{SimClient, SimConfig};
use tenantops_local::seed::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use tenantops_tests::faults::{DynamoFaults, KillAt};
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

#[path = "restore_inplace.rs"]
mod in_place;

pub(crate) const POLICIES: &str = "deviceManagement/configurationPolicies";
pub(crate) const TEMPLATES: &str = "deviceManagement/groupPolicyConfigurations";
pub(crate) const SCRIPTS: &str = "deviceManagement/deviceManagementScripts";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

/// A stack and a worker whose graph-sim creates like Graph does (a repeated POST is a
/// second object).
pub(crate) async fn setup(counts: &[(&str, usize)]) -> (TestStack, WorkerHarness) {
    let stack = TestStack::new().await;
    let entra = stack.entra_tenant_id().await;
    let client = SimClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
    let mut config = SimConfig::generated(&entra, client, counts);
    config.idempotent_creates = false;
    let worker = stack.worker_with(config, policy()).await;
    (stack, worker)
}

pub(crate) fn tenant_path(stack: &TestStack, rest: &str) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/{rest}",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

/// Runs a start to completion.
async fn run_to_end(stack: &TestStack, worker: &WorkerHarness, body: Value) -> Run {
    let id = stack.start(body).await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    run
}

/// A backup of `types` through a schedule's run-now; returns the set id.
pub(crate) async fn backup(stack: &TestStack, worker: &WorkerHarness, types: &[&str]) -> String {
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(stack, "backup-schedules"),
                json!({
                    "name": format!("Restore test {}", ulid::Ulid::new()),
                    "cadence": {"kind": "hourly", "minute": 5},
                    "retention": {"keep_last": 10},
                    "types": types,
                })
                .to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let schedule = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(stack, &format!("backup-schedules/{schedule}/run-now")),
                "{}",
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.run_id();
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    run.result.as_ref().unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn sync(stack: &TestStack, worker: &WorkerHarness, types: &[&str]) {
    let run = run_to_end(
        stack,
        worker,
        json!({"type": "inventory.sync", "params": {"types": types}}),
    )
    .await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
}

pub(crate) async fn sync_groups(stack: &TestStack, worker: &WorkerHarness) {
    let run = run_to_end(stack, worker, json!({"type": "directory_groups.sync"})).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
}

/// Gives every object of `path` exactly one assignment, to `group`.
pub(crate) fn assign_all(worker: &WorkerHarness, path: &str, group: &str) {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(path).unwrap();
        let ids: Vec<String> = c
            .objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids {
            c.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({
                    "id": format!("{id}_{group}"),
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
}

pub(crate) fn first_group(worker: &WorkerHarness) -> String {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections["groups"].objects[0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

/// Deletes every object of `path` in the tenant (as someone in the Intune portal would).
pub(crate) fn delete_all(worker: &WorkerHarness, path: &str) {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(path).unwrap();
        c.objects.clear();
        c.sub_resources.clear();
    });
}

pub(crate) fn names_in(worker: &WorkerHarness, path: &str) -> Vec<String> {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let mut names: Vec<String> = t.collections[path]
            .objects
            .iter()
            .map(|o| {
                o.get("name")
                    .or_else(|| o.get("displayName"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    })
}

async fn preview(stack: &TestStack, worker: &WorkerHarness, body: Value) -> Reply {
    preview_as(stack, worker, &stack.users().owner, body).await
}

/// Starts a preview as `user`. A started one (202) is worked to its end and answered as the
/// restore with all its items (read page by page) and the start's token; any other answer
/// as it came.
pub(crate) async fn preview_as(
    stack: &TestStack,
    worker: &WorkerHarness,
    user: &tenantops_core::UserId,
    body: Value,
) -> Reply {
    let started = stack
        .call(ApiCall::post(tenant_path(stack, "restores"), body.to_string()).by(user))
        .await;
    if started.status != 202 {
        return started;
    }
    assert_eq!(
        started.body["restore"]["status"], "previewing",
        "{}",
        started.body
    );
    worker.drain().await;
    let run = stack.run(&started.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    let restore = started.body["restore"]["id"].as_str().unwrap();
    let (record, items) = all_items(stack, restore).await;
    Reply {
        status: started.status,
        content_type: started.content_type,
        headers: started.headers,
        body: json!({
            "restore": record,
            "items": items,
            "confirmation_token": started.body["confirmation_token"],
            "run": started.body["run"],
        }),
    }
}

/// The restore and every item, page by page.
pub(crate) async fn all_items(stack: &TestStack, restore: &str) -> (Value, Vec<Value>) {
    let (mut items, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
        let r = stack
            .call(
                ApiCall::get(tenant_path(stack, &format!("restores/{restore}{query}")))
                    .by(&stack.users().owner),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (r.body["restore"].clone(), items),
        }
    }
}

pub(crate) async fn execute_as(
    stack: &TestStack,
    user: &tenantops_core::UserId,
    restore: &str,
    token: &str,
) -> Reply {
    stack
        .call(
            ApiCall::post(
                tenant_path(stack, &format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(user),
        )
        .await
}

fn ids(r: &Reply) -> (String, String) {
    (
        r.body["restore"]["id"].as_str().unwrap().to_owned(),
        r.body["confirmation_token"].as_str().unwrap().to_owned(),
    )
}

async fn hashes(stack: &TestStack, set: &str) -> Vec<(String, String)> {
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let page = stack
            .store()
            .manifest_entries(
                stack.demo.workspace_id,
                stack.demo.tenant_id,
                set.parse().unwrap(),
                100,
                after,
            )
            .await
            .unwrap();
        out.extend(page.entries.into_iter().map(|e| (e.object_type, e.hash)));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.sort();
    out
}

async fn audit_count(stack: &TestStack, action: &str) -> usize {
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

#[tokio::test]
async fn settings_catalog_and_administrative_templates_round_trip_through_a_restore() {
    let (stack, worker) = setup(&[("groups", 3), (POLICIES, 2), (TEMPLATES, 2)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    assign_all(&worker, TEMPLATES, &group);
    sync_groups(&stack, &worker).await;
    let types = ["configurationPolicies", "groupPolicyConfigurations"];
    let first = backup(&stack, &worker, &types).await;
    let before = hashes(&stack, &first).await;
    let names = (names_in(&worker, POLICIES), names_in(&worker, TEMPLATES));
    assert_eq!(before.len(), 4);

    delete_all(&worker, POLICIES);
    delete_all(&worker, TEMPLATES);
    sync(&stack, &worker, &types).await;
    worker.sim.clear_requests();

    let p = preview(&stack, &worker, json!({ "backup_set_id": first })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    assert_eq!(p.body["restore"]["executable"], true, "{}", p.body);
    let items = p.body["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["action"] == "create"), "{items:?}");
    // A create's diff lists only fields that have a value: `before` left out, never null.
    for row in items.iter().flat_map(|i| i["diff"].as_array().unwrap()) {
        assert!(row.get("before").is_none(), "{row}");
        assert!(!row["after"].is_null(), "{row}");
    }
    assert!(
        items
            .iter()
            .all(|i| i["assignment_targets"][0]["status"] == "resolved")
    );
    assert!(
        worker.sim.writes().is_empty(),
        "a preview never writes to Graph"
    );
    let (restore, token) = ids(&p);

    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    assert_eq!(
        (run.counters.total, run.counters.succeeded),
        (4, 4),
        "{run:?}"
    );
    assert_eq!(
        (names_in(&worker, POLICIES), names_in(&worker, TEMPLATES)),
        names
    );

    let second = backup(&stack, &worker, &types).await;
    assert_eq!(
        hashes(&stack, &second).await,
        before,
        "backup -> delete -> restore -> backup gives the same snapshots"
    );

    let view = stack
        .call(
            ApiCall::get(tenant_path(&stack, &format!("restores/{restore}")))
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["restore"]["status"], "completed");
    assert!(view.body.get("confirmation_token").is_none());
    assert!(
        view.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "done" && i["written_id"].is_string())
    );
    assert_eq!(audit_count(&stack, "restore.previewed").await, 1);
    assert_eq!(audit_count(&stack, "restore.object_written").await, 4);
    assert_eq!(audit_count(&stack, "restore.executed").await, 1);
}

#[tokio::test]
async fn a_restore_redelivered_mid_way_creates_no_duplicate_objects() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 3)]).await;
    let mut worker = worker;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let names = names_in(&worker, POLICIES);
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;

    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run_id = r.run_id();

    // The worker dies after Graph created the second object and before the id was recorded:
    // the one moment where retrying the create would duplicate it.
    let faults = DynamoFaults::none();
    let mut kill = faults.kill_at(KillAt {
        operation: "TransactWriteItems",
        body_contains: Some(r#"{"S":"created"}"#),
        nth: 2,
        after_sending: false,
    });
    let healthy = worker.deps.store.clone();
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
    assert_eq!(
        names_in(&worker, POLICIES).len(),
        2,
        "two creates reached Graph"
    );

    // The message comes back; a healthy worker resumes the restore.
    worker.deps.store = healthy;
    worker.deps.lease = tenantops_worker::LEASE;
    let mut run = stack.run(&run_id).await;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        worker.drain().await;
        run = stack.run(&run_id).await;
        if run.status == RunStatus::Completed {
            break;
        }
    }
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    assert_eq!(run.attempts, 2, "killed once, re-claimed once");
    assert_eq!(
        names_in(&worker, POLICIES),
        names,
        "each snapshot restored exactly once"
    );
    assert_eq!(
        policy_creates(&worker),
        3,
        "the interrupted create was adopted, not repeated"
    );
    assert_eq!(audit_count(&stack, "restore.object_written").await, 3);
}

#[tokio::test]
async fn execute_is_refused_without_a_current_confirmed_executable_preview_and_writes_nothing() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 2)]).await;
    let group = first_group(&worker);
    // Assigned to a group the tenant's cache does not know.
    let unknown = "0badc0de-0000-4000-8000-000000000001";
    assign_all(&worker, POLICIES, unknown);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    // Deleted since: the restore would create them.
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;
    worker.sim.clear_requests();
    let owner = stack.users().owner.clone();

    // No preview: an id that was never previewed.
    let r = execute_as(&stack, &owner, &ulid::Ulid::new().to_string(), "x").await;
    assert_eq!(
        (r.status, r.code()),
        (404, "restore.not_found"),
        "{}",
        r.body
    );

    // Unresolved mappings block execution.
    let blocked = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(blocked.status, 202, "{}", blocked.body);
    assert_eq!(blocked.body["restore"]["executable"], false);
    assert_eq!(
        blocked.body["restore"]["blockers"],
        json!(["mapping_unresolved"])
    );
    assert_eq!(blocked.body["restore"]["summary"]["unresolved_targets"], 2);
    let (blocked_id, blocked_token) = ids(&blocked);
    let r = execute_as(&stack, &owner, &blocked_id, &blocked_token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.mapping_unresolved"),
        "{}",
        r.body
    );

    // Mapped explicitly: executable. A foreign token (another preview's) is refused.
    let mapped = preview(
        &stack,
        &worker,
        json!({ "backup_set_id": set, "mapping": {"groups": {unknown: group}} }),
    )
    .await;
    assert_eq!(mapped.status, 202, "{}", mapped.body);
    assert_eq!(
        mapped.body["restore"]["executable"], true,
        "{}",
        mapped.body
    );
    assert_eq!(
        mapped.body["items"][0]["assignment_targets"][0]["status"],
        "mapped"
    );
    let (mapped_id, mapped_token) = ids(&mapped);
    let r = execute_as(&stack, &owner, &mapped_id, &blocked_token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.confirmation_invalid"),
        "{}",
        r.body
    );

    // The operator may preview, not execute.
    let r = execute_as(&stack, &stack.users().operator, &mapped_id, &mapped_token).await;
    assert_eq!((r.status, r.code()), (403, "auth.forbidden"), "{}", r.body);
    let by_operator = preview_as(
        &stack,
        &worker,
        &stack.users().operator,
        json!({ "backup_set_id": set, "mapping": {"drop": [unknown]} }),
    )
    .await;
    assert_eq!(by_operator.status, 202, "{}", by_operator.body);
    assert_eq!(
        by_operator.body["items"][0]["assignment_targets"][0]["status"],
        "dropped"
    );

    // Stale: older than the bound.
    let key = tenantops_aws::keys::restore(
        stack.demo.workspace_id,
        stack.demo.tenant_id,
        mapped_id.parse().unwrap(),
    );
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.resources.table_name)
        .set_key(Some(key.to_item()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::S("2026-01-01T00:00:00.000000Z".into()),
        )
        .send()
        .await
        .unwrap();
    let r = execute_as(&stack, &owner, &mapped_id, &mapped_token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.preview_stale"),
        "{}",
        r.body
    );

    // Stale: the inventory changed since the preview.
    let dropped = preview(
        &stack,
        &worker,
        json!({ "backup_set_id": set, "mapping": {"drop": [unknown]} }),
    )
    .await;
    let (dropped_id, dropped_token) = ids(&dropped);
    sync(&stack, &worker, &["configurationPolicies"]).await;
    worker.sim.clear_requests();
    let before = stack.snapshot().await;
    let r = execute_as(&stack, &owner, &dropped_id, &dropped_token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.inventory_changed"),
        "{}",
        r.body
    );
    assert_eq!(stack.snapshot().await, before, "a refusal changes nothing");

    worker.drain().await;
    assert!(
        worker.sim.writes().is_empty(),
        "no refused restore reached Graph: {:?}",
        worker.sim.writes()
    );
    assert_eq!(stack.queued_messages().await, 0);
}

#[tokio::test]
async fn a_second_execute_while_the_run_is_active_returns_the_same_run() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 1)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    sync(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    // Unchanged since its backup: nothing to write.
    assert_eq!(p.body["items"][0]["action"], "skip_unchanged", "{}", p.body);
    let (restore, token) = ids(&p);
    let owner = stack.users().owner.clone();
    let first = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(first.status, 202, "{}", first.body);
    // An inventory write since the confirmation does not turn the dedupe into a refusal.
    stack
        .store()
        .bump_inventory_version(stack.demo.workspace_id, stack.demo.tenant_id)
        .await
        .unwrap();
    let again = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["deduplicated"], true);
    assert_eq!(again.run_id(), first.run_id());

    worker.drain().await;
    let run = stack.run(&first.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    assert_eq!(run.counters.skipped, 1);
    let after = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(
        (after.status, after.code()),
        (409, "restore.already_executed"),
        "{}",
        after.body
    );
    assert!(worker.sim.writes().is_empty());
}

#[tokio::test]
async fn bad_preview_input_is_refused_with_stable_codes_and_changes_nothing() {
    let (stack, worker) = setup(&[(POLICIES, 1)]).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let before = stack.snapshot().await;
    let cases = [
        (
            json!({ "backup_set_id": ulid::Ulid::new().to_string() }),
            404,
            "restore.backup_set_not_found",
        ),
        (
            json!({ "backup_set_id": "not-a-set" }),
            404,
            "restore.backup_set_not_found",
        ),
        (
            json!({ "backup_set_id": set, "mapping": {"groups": "g1"} }),
            400,
            "restore.mapping_invalid",
        ),
        (
            json!({ "backup_set_id": set, "mapping": {"groups": {"a": "b"}, "drop": ["a"]} }),
            400,
            "restore.mapping_invalid",
        ),
        (
            json!({ "backup_set_id": set, "items": [{"object_type": "configurationPolicies", "object_id": "nope"}] }),
            409,
            "restore.items_invalid",
        ),
        (
            json!({ "backup_set_id": set, "items": [] }),
            422,
            "request.invalid",
        ),
        (json!({ "set": set }), 422, "request.invalid"),
    ];
    for (body, status, code) in cases {
        let r = preview(&stack, &worker, body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "refused previews store nothing"
    );
    assert!(worker.sim.writes().is_empty());
}

#[tokio::test]
async fn restores_are_invisible_from_other_workspaces() {
    let (stack, worker) = setup(&[(POLICIES, 1)]).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    let (restore, token) = ids(&p);
    let outsider = stack.users().outsider.clone();

    // Not a member of the restore's workspace: exactly like a missing workspace.
    let r = stack
        .call(ApiCall::get(tenant_path(&stack, &format!("restores/{restore}"))).by(&outsider))
        .await;
    assert_eq!((r.status, r.code()), (404, "workspace.not_found"));
    let r = execute_as(&stack, &outsider, &restore, &token).await;
    assert_eq!((r.status, r.code()), (404, "workspace.not_found"));

    // In their own workspace, this workspace's ids name nothing.
    let theirs = |rest: &str| {
        format!(
            "/v1/workspaces/{}/tenants/{}/{rest}",
            stack.demo.other_workspace_id, stack.demo.other_tenant_id
        )
    };
    let r = stack
        .call(ApiCall::get(theirs(&format!("restores/{restore}"))).by(&outsider))
        .await;
    assert_eq!((r.status, r.code()), (404, "restore.not_found"));
    let r = stack
        .call(
            ApiCall::post(
                theirs("restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(&outsider),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "restore.backup_set_not_found"));
    let r = stack
        .call(
            ApiCall::post(
                theirs(&format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(&outsider),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "restore.not_found"));
    assert!(worker.sim.writes().is_empty());
}

#[tokio::test]
async fn high_risk_types_are_preview_only_until_an_owner_enables_them() {
    let (stack, worker) = setup(&[(SCRIPTS, 1)]).await;
    // Assigned to every device: no group to map.
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(SCRIPTS).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        c.sub_resources.insert(
            format!("{id}/assignments"),
            vec![json!({
                "id": format!("{id}_all"),
                "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}
            })],
        );
    });
    let set = backup(&stack, &worker, &["deviceManagementScripts"]).await;
    delete_all(&worker, SCRIPTS);
    sync(&stack, &worker, &["deviceManagementScripts"]).await;
    worker.sim.clear_requests();
    let owner = stack.users().owner.clone();

    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    assert_eq!(p.body["restore"]["blockers"], json!(["high_risk_disabled"]));
    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.high_risk_disabled"),
        "{}",
        r.body
    );

    // Only an owner changes the setting, and the change is audited.
    let settings = |user| {
        let path = format!("/v1/workspaces/{}", stack.demo.workspace_id);
        let body = json!({"settings": {"restore_high_risk": true}}).to_string();
        let stack = &stack;
        async move {
            stack
                .call(ApiCall {
                    method: "PATCH",
                    ..ApiCall::post(path, body).by(user)
                })
                .await
        }
    };
    let r = settings(&stack.users().manager).await;
    // A manager lacks the capability: the ordinary 403 naming it (not the member-rules code).
    assert_eq!((r.status, r.code()), (403, "auth.forbidden"));
    assert_eq!(r.body["capability"], "workspace.settings", "{}", r.body);
    assert_eq!(audit_count(&stack, "workspace.settings_changed").await, 0);
    let r = settings(&owner).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["workspace"]["settings"]["restore_high_risk"], true);
    assert_eq!(audit_count(&stack, "workspace.settings_changed").await, 1);

    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.body["restore"]["executable"], true, "{}", p.body);
    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    assert_eq!(names_in(&worker, SCRIPTS).len(), 1);
}

#[tokio::test]
async fn concurrent_executes_of_one_preview_start_exactly_one_run() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 2)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    let (restore, token) = ids(&p);
    let owner = stack.users().owner.clone();

    let replies =
        futures::future::join_all((0..12).map(|_| execute_as(&stack, &owner, &restore, &token)))
            .await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 202).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let run = created[0].run_id();
    for r in &replies {
        assert!(r.status == 202 || r.status == 200, "{}", r.body);
        assert_eq!(r.run_id(), run, "every answer names the one run");
    }
    assert_eq!(stack.queued_messages().await, 1);
    worker.drain().await;
    assert_eq!(stack.run(&run).await.outcome, Outcome::Succeeded);
    assert_eq!(names_in(&worker, POLICIES).len(), 2);
}

#[tokio::test]
async fn a_restore_with_some_failed_items_partially_succeeds_and_names_them() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 2)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    let (restore, token) = ids(&p);
    // Graph refuses the first create.
    worker.sim.inject(tenantops_graph_sim::Fault::ErrorBody {
        path_prefix: "deviceManagement/configurationPolicies".into(),
        times: 1,
        status: 400,
        body: json!({"error": {"code": "BadRequest", "message": "refused"}}),
    });
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(run.outcome, Outcome::PartiallySucceeded, "{run:?}");
    assert_eq!(
        (
            run.counters.processed,
            run.counters.succeeded,
            run.counters.failed
        ),
        (2, 1, 1)
    );
    let first_id = p.body["items"][0]["object_id"].as_str().unwrap();
    assert_eq!(run.failures.len(), 1);
    assert_eq!(
        run.failures[0].object_ref.as_deref(),
        Some(format!("configurationPolicies/{first_id}").as_str())
    );
    assert!(
        !run.failures[0].message.contains("refused"),
        "no Graph text is stored"
    );
    let view = stack
        .call(
            ApiCall::get(tenant_path(&stack, &format!("restores/{restore}")))
                .by(&stack.users().owner),
        )
        .await;
    let statuses: Vec<&Value> = view.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["status"])
        .collect();
    assert_eq!(statuses, vec!["failed", "done"]);
    assert_eq!(names_in(&worker, POLICIES).len(), 1);
    assert_eq!(audit_count(&stack, "restore.object_written").await, 1);
}

#[test]
fn the_restore_policy_of_every_type_matches_the_contract_registry() {
    use tenantops_graph::registry::{REGISTRY, RestoreMethod, Risk};
    for ty in REGISTRY {
        let p = tenantops_core::restore::type_policy(ty.name, true);
        assert_eq!(
            p.restorable,
            ty.restore != RestoreMethod::NotSupported,
            "{}: restorable",
            ty.name
        );
        assert_eq!(p.high_risk, ty.risk == Risk::High, "{}: high risk", ty.name);
    }
}

#[tokio::test]
async fn an_object_changed_since_its_backup_is_updated_back_with_a_field_diff() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 1)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let before = hashes(&stack, &set).await;
    // Someone edits the policy in the portal.
    let id = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let o = &mut t.collections.get_mut(POLICIES).unwrap().objects[0];
        o["description"] = json!("edited by hand");
        o["lastModifiedDateTime"] = json!("2099-01-01T00:00:00Z");
        o["id"].as_str().unwrap().to_owned()
    });
    sync(&stack, &worker, &["configurationPolicies"]).await;
    worker.sim.clear_requests();

    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    let item = &p.body["items"][0];
    assert_eq!(item["action"], "update", "{item}");
    assert_eq!(item["diff_base"], "inventory", "{item}");
    assert!(
        item["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "description" && c["before"] == "edited by hand"),
        "{item}"
    );
    // The inventory's record of the object's type is not a change.
    assert!(
        item["diff"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["path"] != "odataType"),
        "{item}"
    );
    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    let writes = worker.sim.writes();
    assert!(
        writes
            .iter()
            .all(|w| w.method != "POST" || w.path.ends_with("/assign")),
        "an update creates nothing: {writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.method == "PUT" && w.path.ends_with(&id)),
        "a settings-catalog policy is PUT back with its settings: {writes:?}"
    );
    let again = backup(&stack, &worker, &["configurationPolicies"]).await;
    assert_eq!(
        hashes(&stack, &again).await,
        before,
        "the policy is as backed up"
    );
}

#[tokio::test]
async fn executing_again_after_the_run_ended_unfinished_resumes_the_restore() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 2)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let names = names_in(&worker, POLICIES);
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    let (restore, token) = ids(&p);
    let owner = stack.users().owner.clone();
    let first = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(first.status, 202, "{}", first.body);
    // The run ends before any worker touched it (as the reaper ends a lost one).
    stack.finish(&first.run_id(), Outcome::Failed).await;

    let second = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_ne!(second.run_id(), first.run_id());
    worker.drain().await;
    let run = stack.run(&second.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    assert_eq!(names_in(&worker, POLICIES), names);
    let third = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(
        (third.status, third.code()),
        (409, "restore.already_executed")
    );
}

#[tokio::test]
async fn only_the_worker_holding_the_runs_lease_can_take_a_restore_item() {
    let (stack, worker) = setup(&[("groups", 2), (POLICIES, 1)]).await;
    let group = first_group(&worker);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let p = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run = stack.run(&r.run_id()).await;
    let claim = tenantops_core::Transition::Claim {
        now: chrono::Utc::now(),
        lease: tenantops_worker::LEASE,
    };
    stack
        .store()
        .transition_as(&run, Some("owner-3"), &claim)
        .await
        .unwrap();

    let owners: Vec<String> = (0..8).map(|i| format!("owner-{i}")).collect();
    let restore_id: tenantops_core::RestoreId = restore.parse().unwrap();
    let (ws, tenant, run_id) = (stack.demo.workspace_id, stack.demo.tenant_id, run.id);
    let attempts = owners.into_iter().map(|owner| {
        let store = stack.store().clone();
        async move {
            let lease = tenantops_aws::restores::ItemLease {
                workspace: ws,
                tenant,
                restore: restore_id,
                run: run_id,
                owner: &owner,
            };
            let r = store.claim_restore_item(&lease, 0).await;
            (owner, r)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<&String> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(tenantops_aws::restores::ItemClaim::Claimed { .. })))
        .map(|(o, _)| o)
        .collect();
    assert_eq!(won, vec!["owner-3"], "{results:?}");
    for (owner, r) in &results {
        if owner != "owner-3" {
            assert!(
                matches!(r, Err(tenantops_aws::StoreError::TransitionRefused)),
                "{owner}: {r:?}"
            );
        }
    }
    let item_now = || async {
        stack
            .store()
            .restore_item(ws, tenant, restore_id, 0)
            .await
            .unwrap()
            .unwrap()
    };
    let item = item_now().await;
    assert_eq!(item.owner.as_deref(), Some("owner-3"));
    assert_eq!(item.attempts, 1);

    // The run ends (as the reaper fails a stale one) while its item still names owner-3:
    // the run's status, not only its lease owner, decides, so owner-3 writes nothing more.
    stack.finish(&run_id.to_string(), Outcome::Failed).await;
    let lease = tenantops_aws::restores::ItemLease {
        workspace: ws,
        tenant,
        restore: restore_id,
        run: run_id,
        owner: "owner-3",
    };
    let late = stack.store().claim_restore_item(&lease, 0).await;
    assert!(
        matches!(late, Err(tenantops_aws::StoreError::TransitionRefused)),
        "{late:?}"
    );
    let item = item_now().await;
    assert_eq!(item.attempts, 1, "the late attempt changed nothing");
}

/// Two previews of one set, both computed while a policy was deleted, both plan to create
/// it. Executing the first moves the tenant's inventory stamp in its start transaction, so
/// the second is refused: the policy is created once.
#[tokio::test]
async fn competing_restores_of_one_absent_object_create_it_once() {
    let (stack, worker) = setup(&[("groups", 1), (POLICIES, 1)]).await;
    sync_groups(&stack, &worker).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let names = names_in(&worker, POLICIES);
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &["configurationPolicies"]).await;

    let first = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    let second = preview(&stack, &worker, json!({ "backup_set_id": set })).await;
    for p in [&first, &second] {
        assert_eq!(p.status, 202, "{}", p.body);
        assert_eq!(p.body["items"][0]["action"], "create", "{}", p.body);
    }
    let owner = stack.users().owner.clone();
    let (restore, token) = ids(&first);
    let run = execute_as(&stack, &owner, &restore, &token).await;
    assert_eq!(run.status, 202, "{}", run.body);
    let (other, other_token) = ids(&second);
    let refused = execute_as(&stack, &owner, &other, &other_token).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "restore.inventory_changed"),
        "{}",
        refused.body
    );

    worker.drain().await;
    let done = stack.run(&run.run_id()).await;
    assert_eq!(done.outcome, Outcome::Succeeded, "{done:?}");
    assert_eq!(names_in(&worker, POLICIES), names, "created once");
    assert_eq!(policy_creates(&worker), 1);
}

/// The settings-catalog policies Graph was asked to create.
fn policy_creates(worker: &WorkerHarness) -> usize {
    worker
        .sim
        .writes()
        .iter()
        .filter(|w| {
            w.method == "POST" && w.path.ends_with("/deviceManagement/configurationPolicies")
        })
        .count()
}
