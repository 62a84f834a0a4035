//! Backups against graph-sim, DynamoDB Local and moto's S3: content-addressed snapshots,
//! write-once manifests, retention, per-item reads, partial failures, and the two read routes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantops_aws::snapshots::snapshot_key;
use tenantops_core::backup::{BackupSet, BackupSetStatus, ManifestEntry};
use tenantops_core::{BackupSetId, Outcome, Run, RunStatus};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::{DEMO_COLLECTIONS, Fault};
use tenantops_tests::{ApiCall, TestStack, WorkerHarness};

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

const POLICIES: &str = "deviceManagement/configurationPolicies";
const PROFILES: &str = "deviceManagement/deviceConfigurations";

fn schedules_path(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

fn backups_path(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/backups",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

/// A schedule through the API; `types: None` covers every backup type.
async fn schedule(stack: &TestStack, types: Option<&[&str]>, retention: Value) -> String {
    let mut body = json!({
        "name": "Hourly",
        "cadence": {"kind": "hourly", "minute": 5},
        "retention": retention,
    });
    if let Some(t) = types {
        body["types"] = json!(t);
    }
    let r = stack
        .call(ApiCall::post(schedules_path(stack), body.to_string()).by(&stack.users().owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["schedule"]["id"].as_str().unwrap().to_owned()
}

/// Backs up now through the schedule's run-now and lets the worker finish it.
async fn backup(stack: &TestStack, worker: &WorkerHarness, schedule: &str) -> Run {
    let r = stack
        .call(
            ApiCall::post(
                format!("{}/{schedule}/run-now", schedules_path(stack)),
                "{}",
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.run_id();
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    run
}

fn set_of(run: &Run) -> BackupSetId {
    run.result.as_ref().unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn set(stack: &TestStack, id: BackupSetId) -> BackupSet {
    stack
        .store()
        .backup_set(stack.demo.workspace_id, stack.demo.tenant_id, id)
        .await
        .unwrap()
        .expect("the set is recorded")
}

async fn entries(stack: &TestStack, id: BackupSetId) -> Vec<ManifestEntry> {
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let page = stack
            .store()
            .manifest_entries(stack.demo.workspace_id, stack.demo.tenant_id, id, 7, after)
            .await
            .unwrap();
        all.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => return all,
        }
    }
}

fn puts(stack: &TestStack) -> usize {
    stack
        .s3_calls
        .take()
        .iter()
        .filter(|c| c.as_str() == "PutObject")
        .count()
}

async fn object(stack: &TestStack, key: &str) -> Option<Value> {
    let out = stack
        .s3
        .get_object()
        .bucket(&stack.resources.snapshot_bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = out.body.collect().await.unwrap().into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// (ETag, version id) of every version stored under `key`.
async fn versions(stack: &TestStack, key: &str) -> Vec<(String, String)> {
    let out = stack
        .s3
        .list_object_versions()
        .bucket(&stack.resources.snapshot_bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| {
            (
                v.e_tag().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_unchanged_policy_shares_one_snapshot_and_a_changed_one_gets_a_new_object() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[(POLICIES, 4), (PROFILES, 3)], policy())
        .await;
    let id = schedule(
        &stack,
        Some(&["configurationPolicies", "deviceConfigurations"]),
        json!({"keep_last": 10}),
    )
    .await;
    stack.s3_calls.take();
    let first = backup(&stack, &worker, &id).await;
    assert_eq!(first.outcome, Outcome::Succeeded, "{:?}", first.failures);
    assert_eq!(first.counters.total, 7);
    assert_eq!(first.counters.succeeded, 7);
    let r = first.result.clone().unwrap();
    assert_eq!(
        (r["objects"].as_u64(), r["new_snapshots"].as_u64()),
        (Some(7), Some(7))
    );
    assert_eq!(puts(&stack), 7 + 1, "seven snapshots and one manifest");

    // One policy changes in the tenant; nothing else does.
    let changed = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let p = &mut t.collections.get_mut(POLICIES).unwrap().objects[0];
        p["description"] = json!("changed by an admin");
        // Volatile fields alone never make a new snapshot.
        p["lastModifiedDateTime"] = json!("2030-01-01T00:00:00Z");
        p["id"].as_str().unwrap().to_owned()
    });
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections.get_mut(PROFILES).unwrap().objects[0]["lastModifiedDateTime"] =
            json!("2030-01-01T00:00:00Z");
    });
    let second = backup(&stack, &worker, &id).await;
    assert_eq!(second.outcome, Outcome::Succeeded, "{:?}", second.failures);
    let r = second.result.clone().unwrap();
    assert_eq!(
        (r["new_snapshots"].as_u64(), r["reused_snapshots"].as_u64()),
        (Some(1), Some(6))
    );
    assert_eq!(puts(&stack), 1 + 1, "one new snapshot and the new manifest");
    let stored = stack
        .s3
        .list_object_versions()
        .bucket(&stack.resources.snapshot_bucket)
        .prefix(format!(
            "snapshots/{}/{}/",
            stack.demo.workspace_id, stack.demo.tenant_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.versions().len(),
        8,
        "7 + 1 snapshot objects, one version each"
    );

    let (a, b) = (
        entries(&stack, set_of(&first)).await,
        entries(&stack, set_of(&second)).await,
    );
    assert_eq!(a.len(), 7);
    assert_eq!(b.len(), 7);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.object_type, &x.object_id),
            (&y.object_type, &y.object_id)
        );
        if x.object_id == changed {
            assert_ne!(x.hash, y.hash);
            assert_ne!(x.snapshot_key, y.snapshot_key);
        } else {
            assert_eq!(x.snapshot_key, y.snapshot_key, "{}", x.object_id);
        }
        // Both sets' snapshots exist, under their content hash.
        let stored = object(&stack, &y.snapshot_key).await.expect("snapshot");
        assert_eq!(tenantops_core::backup::content_hash(&stored), y.hash);
    }
    let latest = stack
        .store()
        .latest_snapshot(
            stack.demo.workspace_id,
            stack.demo.tenant_id,
            "configurationPolicies",
            &changed,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.set_id, set_of(&second));
    assert_ne!(
        Some(latest.hash.as_str()),
        a.iter()
            .find(|e| e.object_id == changed)
            .map(|e| e.hash.as_str())
    );
}

#[tokio::test]
async fn manifests_are_written_once_and_a_redelivered_finished_backup_writes_nothing() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 5)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 5}),
    )
    .await;
    let first = backup(&stack, &worker, &id).await;
    let first_set = set(&stack, set_of(&first)).await;
    let before = versions(&stack, &first_set.manifest_key).await;
    let bytes_before = object(&stack, &first_set.manifest_key).await.unwrap();
    assert_eq!(before.len(), 1);

    let second = backup(&stack, &worker, &id).await;
    let second_set = set(&stack, set_of(&second)).await;
    assert_ne!(first_set.manifest_key, second_set.manifest_key);
    assert_eq!(versions(&stack, &first_set.manifest_key).await, before);
    assert_eq!(
        object(&stack, &first_set.manifest_key).await.unwrap(),
        bytes_before
    );
    // Same content, so the manifests are equal, but each set has its own.
    assert_eq!(first_set.manifest_hash, second_set.manifest_hash);

    // SQS delivers the finished run's message again: acknowledged, nothing written.
    stack.s3_calls.take();
    let sets_before = stack
        .store()
        .backup_sets(stack.demo.workspace_id, stack.demo.tenant_id, 50, None)
        .await
        .unwrap()
        .items;
    stack
        .sqs
        .send_message()
        .queue_url(&stack.resources.queue_url)
        .message_body(json!({"run_id": second.id.to_string()}).to_string())
        .send()
        .await
        .unwrap();
    stack.dynamodb_calls.take();
    worker.drain().await;
    assert!(stack.s3_calls.take().is_empty(), "no S3 call at all");
    let writes: Vec<String> = stack
        .dynamodb_calls
        .take()
        .into_iter()
        .filter(|c| c != "GetItem" && c != "Query")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let sets_after = stack
        .store()
        .backup_sets(stack.demo.workspace_id, stack.demo.tenant_id, 50, None)
        .await
        .unwrap()
        .items;
    assert_eq!(sets_before, sets_after);
    assert_eq!(stack.run(&second.id.to_string()).await, second);
}

#[tokio::test]
async fn a_store_refuses_to_record_a_second_set_for_the_same_run() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 2)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 5}),
    )
    .await;
    let run = backup(&stack, &worker, &id).await;
    let stored = set(&stack, set_of(&run)).await;
    let mut other = stored.clone();
    other.object_count = 99;
    other.manifest_hash = "not-the-first".into();
    let again = stack.store().record_backup_set(&other, &[]).await.unwrap();
    assert_eq!(
        again,
        tenantops_aws::Recorded::AlreadyRecorded(Box::new(stored.clone()))
    );
    assert_eq!(set(&stack, stored.id).await, stored);
    assert_eq!(entries(&stack, stored.id).await.len(), 2);
}

#[tokio::test]
async fn the_demo_tenant_backs_up_with_settings_definition_values_script_content_and_assignments() {
    let stack = TestStack::new().await;
    let counts: Vec<(&str, usize)> = DEMO_COLLECTIONS.iter().map(|p| (*p, 3)).collect();
    let worker = stack.worker(&counts, policy()).await;
    let id = schedule(&stack, None, json!({"keep_days": 30})).await;
    let run = backup(&stack, &worker, &id).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    let backup_types = tenantops_graph::REGISTRY
        .iter()
        .filter(|t| t.backup)
        .count() as u64;
    assert_eq!(run.counters.total, 3 * backup_types);
    assert_eq!(run.counters.succeeded, run.counters.total);
    let set_id = set_of(&run);
    assert_eq!(set(&stack, set_id).await.status, BackupSetStatus::Complete);
    let all = entries(&stack, set_id).await;
    assert_eq!(all.len() as u64, 3 * backup_types);

    let requests = worker.sim.requests();
    let read = |pred: &dyn Fn(&str) -> bool| requests.iter().any(|r| pred(&r.path));
    assert!(read(
        &|p| p.contains("/configurationPolicies/") && p.ends_with("/settings")
    ));
    assert!(read(
        &|p| p.contains("/groupPolicyConfigurations/") && p.ends_with("/definitionValues")
    ));
    assert!(read(&|p| {
        p.contains("/deviceManagementScripts/") && !p.ends_with("/assignments")
    }));
    assert!(read(&|p| p.ends_with("/assignments")));
    assert!(
        worker.sim.writes().is_empty(),
        "a backup never writes to Graph"
    );

    let snapshot_of = |ty: &str| {
        all.iter()
            .find(|e| e.object_type == ty)
            .unwrap_or_else(|| panic!("an entry of {ty}"))
            .clone()
    };
    let policy = object(&stack, &snapshot_of("configurationPolicies").snapshot_key)
        .await
        .unwrap();
    assert!(
        !policy["settings"].as_array().unwrap().is_empty(),
        "{policy}"
    );
    assert!(policy["assignments"].is_array());
    assert!(policy.get("id").is_none(), "volatile fields are not stored");
    let admx = object(
        &stack,
        &snapshot_of("groupPolicyConfigurations").snapshot_key,
    )
    .await
    .unwrap();
    assert!(
        !admx["definitionValues"].as_array().unwrap().is_empty(),
        "{admx}"
    );
    let script = object(&stack, &snapshot_of("deviceManagementScripts").snapshot_key)
        .await
        .unwrap();
    assert!(
        !script["scriptContent"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    let compliance = object(
        &stack,
        &snapshot_of("deviceCompliancePolicies").snapshot_key,
    )
    .await
    .unwrap();
    assert!(
        compliance["scheduledActionsForRule"].is_array(),
        "{compliance}"
    );
    assert!(
        compliance["assignments"].is_array(),
        "list-expanded assignments are kept"
    );
    assert!(
        all.iter().any(|e| e.assignments.count > 0),
        "assignments are summarized in the manifest"
    );
}

#[tokio::test]
async fn a_graph_failure_on_some_objects_is_a_partial_set_with_per_object_failures() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[(POLICIES, 4), (PROFILES, 2)], policy())
        .await;
    let broken = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections.get(POLICIES).unwrap().objects[1]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    worker.sim.inject(Fault::Forbidden {
        path_prefix: format!("{POLICIES}/{broken}"),
    });
    let id = schedule(
        &stack,
        Some(&["configurationPolicies", "deviceConfigurations"]),
        json!({"keep_last": 3}),
    )
    .await;
    let run = backup(&stack, &worker, &id).await;
    assert_eq!(run.outcome, Outcome::PartiallySucceeded);
    assert_eq!(
        (
            run.counters.total,
            run.counters.succeeded,
            run.counters.failed
        ),
        (6, 5, 1)
    );
    assert_eq!(run.failures.len(), 1);
    assert_eq!(run.failures[0].code.as_str(), "graph.permission_denied");
    assert_eq!(
        run.failures[0].object_ref.as_deref(),
        Some(format!("configurationPolicies/{broken}").as_str())
    );
    let s = set(&stack, set_of(&run)).await;
    assert_eq!(s.status, BackupSetStatus::Partial);
    assert_eq!(s.object_count, 5);
    assert!(
        !entries(&stack, s.id)
            .await
            .iter()
            .any(|e| e.object_id == broken)
    );
    let r = stack
        .call(ApiCall::get(backups_path(&stack)).by(&stack.users().readonly))
        .await;
    assert_eq!(r.body["items"][0]["status"], "partial");
}

async fn tick(stack: &TestStack, now: DateTime<Utc>) {
    let deps = tenantops_scheduler::Deps {
        store: stack.store().clone(),
    };
    tenantops_scheduler::handle(&tenantops_scheduler::ScheduledEvent::at(now), &deps)
        .await
        .expect("tick");
}

async fn head(stack: &TestStack, key: &str) -> bool {
    stack
        .s3
        .head_object()
        .bucket(&stack.resources.snapshot_bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn retention_keeps_the_last_n_and_the_last_successful_set_and_deletes_only_unreferenced_snapshots()
 {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(POLICIES, 3)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["configurationPolicies"]),
        json!({"keep_last": 1}),
    )
    .await;
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let (profile, broken) = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let o = &t.collections.get(POLICIES).unwrap().objects;
        (
            o[0]["id"].as_str().unwrap().to_owned(),
            o[2]["id"].as_str().unwrap().to_owned(),
        )
    });
    // A: complete. B: partial, with a version of `profile` that exists only in B.
    let a = backup(&stack, &worker, &id).await;
    assert_eq!(a.outcome, Outcome::Succeeded);
    let original = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let p = &mut t.collections.get_mut(POLICIES).unwrap().objects[0];
        let was = p["description"].clone();
        p["description"] = json!("only in B");
        was
    });
    worker.sim.inject(Fault::Forbidden {
        path_prefix: format!("{POLICIES}/{broken}"),
    });
    let b = backup(&stack, &worker, &id).await;
    assert_eq!(b.outcome, Outcome::PartiallySucceeded, "{:?}", b.failures);
    let only_in_b = entries(&stack, set_of(&b))
        .await
        .into_iter()
        .find(|e| e.object_id == profile)
        .unwrap();
    let key_b = snapshot_key(ws, tenant, &only_in_b.hash);
    assert!(head(&stack, &key_b).await);
    let manifest_b = set(&stack, set_of(&b)).await.manifest_key;
    assert_eq!(versions(&stack, &manifest_b).await.len(), 1);

    // C: the scheduler's run, still partial; `profile` is back to what A saw.
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections.get_mut(POLICIES).unwrap().objects[0]["description"] = original;
    });
    let s: Value = stack
        .call(ApiCall::get(format!("{}/{id}", schedules_path(&stack))).by(&stack.users().owner))
        .await
        .body;
    let due = DateTime::parse_from_rfc3339(s["schedule"]["next_fire_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    tick(&stack, due).await;
    worker.drain().await;
    let sets = stack.store().all_backup_sets(ws, tenant).await.unwrap();
    let c = sets
        .iter()
        .find(|s| s.set.id != set_of(&a) && s.set.id != set_of(&b))
        .expect("the scheduled run's set")
        .set
        .clone();
    let c_run = stack.run(&c.run_id.to_string()).await;
    assert_eq!(c_run.operation.as_str(), "backup_schedule.scheduled");
    assert_eq!(c_run.outcome, Outcome::PartiallySucceeded);
    let retention = &c_run.result.as_ref().unwrap()["retention"];
    assert_eq!(
        retention["expired_sets"],
        json!([set_of(&b).to_string()]),
        "{retention}"
    );
    assert_eq!(retention["deleted_snapshots"], 1);

    // Kept: C (the newest, keep_last 1) and A (the last successful), not B.
    let listed = stack
        .call(ApiCall::get(backups_path(&stack)).by(&stack.users().owner))
        .await;
    let ids: Vec<String> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![c.id.to_string(), set_of(&a).to_string()]);
    assert!(
        stack
            .store()
            .backup_set(ws, tenant, set_of(&b))
            .await
            .unwrap()
            .is_none()
    );
    assert!(entries(&stack, set_of(&b)).await.is_empty());
    // Nothing of B is left: no item, no manifest (unlocked in this bucket).
    assert!(
        !stack
            .store()
            .all_backup_sets(ws, tenant)
            .await
            .unwrap()
            .iter()
            .any(|s| s.set.id == set_of(&b))
    );
    assert!(versions(&stack, &manifest_b).await.is_empty());
    // B's own snapshot is gone; the ones A and C still use stay.
    assert!(!head(&stack, &key_b).await);
    for e in entries(&stack, set_of(&a)).await {
        assert!(head(&stack, &e.snapshot_key).await, "{}", e.snapshot_key);
        assert!(
            stack
                .store()
                .snapshot_reference_count(ws, tenant, &e.hash)
                .await
                .unwrap()
                >= 1
        );
    }
    let audit = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{ws}/audit?action=backup_set.expire"
            ))
            .by(&stack.users().owner),
        )
        .await;
    let items = audit.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", audit.body);
    assert_eq!(items[0]["actor"], "system:retention");
    assert_eq!(items[0]["target"], set_of(&b).to_string());
}

#[tokio::test]
async fn retention_leaves_unreferenced_snapshots_that_object_lock_still_holds() {
    let stack = TestStack::new().await;
    stack
        .s3
        .put_object_lock_configuration()
        .bucket(&stack.resources.snapshot_bucket)
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .rule(
                    aws_sdk_s3::types::ObjectLockRule::builder()
                        .default_retention(
                            aws_sdk_s3::types::DefaultRetention::builder()
                                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let worker = stack.worker(&[(PROFILES, 2)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 1}),
    )
    .await;
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let first = backup(&stack, &worker, &id).await;
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        for o in &mut t.collections.get_mut(PROFILES).unwrap().objects {
            o["description"] = json!("second version");
        }
    });
    let second = backup(&stack, &worker, &id).await;
    let schedule_id = id.parse().unwrap();
    let retention = tenantops_core::schedule::Retention {
        keep_last: Some(1),
        keep_days: None,
    };
    let pass = tenantops_worker::retention::expire(
        &worker.deps,
        ws,
        tenant,
        schedule_id,
        retention,
        set_of(&second),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(pass.expired_sets, vec![set_of(&first)]);
    assert_eq!((pass.deleted_snapshots, pass.locked_snapshots), (0, 2));
    assert_eq!(pass.locked_manifests, 1);
    // Unlisted, but its item waits (marked) for its manifest's lock to pass.
    let all = stack.store().all_backup_sets(ws, tenant).await.unwrap();
    assert!(all.iter().any(|s| s.set.id == set_of(&first) && s.expiring));
    assert!(
        stack
            .store()
            .backup_set(ws, tenant, set_of(&first))
            .await
            .unwrap()
            .is_none()
    );
    for e in entries(&stack, set_of(&second)).await {
        assert!(head(&stack, &e.snapshot_key).await);
    }
    // The first set's snapshots stay while locked; a later pass sees them again.
    let again = tenantops_worker::retention::expire(
        &worker.deps,
        ws,
        tenant,
        schedule_id,
        retention,
        set_of(&second),
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(again.expired_sets.is_empty());
    assert_eq!((again.locked_snapshots, again.locked_manifests), (2, 1));
}

#[tokio::test]
async fn backup_routes_are_paginated_and_isolated_by_workspace() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 3)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 9}),
    )
    .await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(backup(&stack, &worker, &id).await);
    }
    let owner = &stack.users().owner;
    // Newest first, two per page.
    let first = stack
        .call(ApiCall::get(format!("{}?limit=2", backups_path(&stack))).by(owner))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = stack
        .call(ApiCall::get(format!("{}?limit=2&cursor={cursor}", backups_path(&stack))).by(owner))
        .await;
    let ids: Vec<String> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["items"].as_array().unwrap())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = runs.iter().rev().map(|r| set_of(r).to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(second.body["next_cursor"], Value::Null);
    assert_eq!(
        first.body["items"][0]["run"],
        tenantops_core::links::view(runs[2].id)
    );

    // One set, its entries in pages; readonly members may view.
    let set_id = set_of(&runs[0]);
    let path = format!("{}/{set_id}", backups_path(&stack));
    let page = stack
        .call(ApiCall::get(format!("{path}?limit=2")).by(&stack.users().readonly))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["backup_set"]["id"], set_id.to_string());
    assert_eq!(page.body["backup_set"]["object_count"], 3);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = stack
        .call(ApiCall::get(format!("{path}?limit=2&cursor={next}")).by(owner))
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert!(rest.body["items"][0]["hash"].as_str().unwrap().len() == 64);
    // A cursor of one set does not page another.
    let other_path = format!("{}/{}", backups_path(&stack), set_of(&runs[1]));
    let wrong = stack
        .call(ApiCall::get(format!("{other_path}?cursor={next}")).by(owner))
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "cursor.invalid"));

    // A set of the other workspace's tenant.
    let mut theirs = set(&stack, set_id).await;
    theirs.id = BackupSetId::new();
    theirs.workspace_id = stack.demo.other_workspace_id;
    theirs.tenant_id = stack.demo.other_tenant_id;
    stack.store().record_backup_set(&theirs, &[]).await.unwrap();
    let their_path = format!(
        "/v1/workspaces/{}/tenants/{}/backups",
        stack.demo.other_workspace_id, stack.demo.other_tenant_id
    );
    let outsider = &stack.users().outsider;
    let ok = stack
        .call(ApiCall::get(format!("{their_path}/{}", theirs.id)).by(outsider))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Their set id under our tenant: not found, as a missing set.
    let cross = stack
        .call(ApiCall::get(format!("{}/{}", backups_path(&stack), theirs.id)).by(owner))
        .await;
    assert_eq!((cross.status, cross.code()), (404, "backup.set_not_found"));
    let missing = stack
        .call(ApiCall::get(format!("{}/{}", backups_path(&stack), BackupSetId::new())).by(owner))
        .await;
    assert_eq!(cross.body["detail"], missing.body["detail"]);
    let malformed = stack
        .call(ApiCall::get(format!("{}/not-a-set", backups_path(&stack))).by(owner))
        .await;
    assert_eq!(malformed.status, 404);
    // Not a member of the workspace: 404 on both routes, whatever the ids.
    for p in [backups_path(&stack), path.clone()] {
        let r = stack.call(ApiCall::get(p).by(outsider)).await;
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let r = stack
        .call(ApiCall::get(format!("{their_path}/{}", theirs.id)).by(owner))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Unknown query parameters are refused.
    let r = stack
        .call(ApiCall::get(format!("{}?type=x", backups_path(&stack))).by(owner))
        .await;
    assert_eq!((r.status, r.code()), (400, "query.invalid"));
}

#[tokio::test]
async fn a_reclaimed_backup_run_adopts_the_manifest_its_first_attempt_wrote() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 3)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 5}),
    )
    .await;
    let earlier = backup(&stack, &worker, &id).await;
    let earlier_set = set(&stack, set_of(&earlier)).await;
    let earlier_entries = entries(&stack, earlier_set.id).await;

    // The tenant changes; then a run whose first worker wrote its manifest (from before the
    // change) and died holding the lease.
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        for o in &mut t.collections.get_mut(PROFILES).unwrap().objects {
            o["description"] = json!("changed after the first attempt");
        }
    });
    let r = stack
        .call(
            ApiCall::post(format!("{}/{id}/run-now", schedules_path(&stack)), "{}")
                .by(&stack.users().owner),
        )
        .await;
    let run = stack.run(&r.run_id()).await;
    let set_id = BackupSetId::from_ulid(run.id.ulid());
    let manifest = tenantops_aws::snapshots::manifest_key(
        stack.demo.workspace_id,
        stack.demo.tenant_id,
        set_id,
    );
    let first_attempt = object(&stack, &earlier_set.manifest_key).await.unwrap();
    worker
        .deps
        .snapshots
        .put_if_absent_with(
            &manifest,
            serde_json::to_vec(&first_attempt).unwrap(),
            &[("set-status", "partial")],
        )
        .await
        .unwrap();
    let past = Utc::now() - chrono::Duration::minutes(30);
    stack
        .store()
        .transition_as(
            &run,
            Some("a-worker-that-died"),
            &tenantops_core::Transition::Claim {
                now: past,
                lease: chrono::Duration::minutes(5),
            },
        )
        .await
        .unwrap();

    worker.drain().await;
    let done = stack.run(&run.id.to_string()).await;
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.attempts, 2, "re-claimed once its lease expired");
    assert_eq!(set_of(&done), set_id, "the set is the run's");
    // One manifest version, the first attempt's; the set lists its entries.
    assert_eq!(versions(&stack, &manifest).await.len(), 1);
    let adopted = entries(&stack, set_id).await;
    assert_eq!(adopted, earlier_entries);
    assert_eq!(
        set(&stack, set_id).await.manifest_hash,
        earlier_set.manifest_hash
    );
    // The set keeps the status its manifest was written with, not this attempt's.
    assert_eq!(set(&stack, set_id).await.status, BackupSetStatus::Partial);
    assert_eq!(done.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn concurrent_recordings_of_one_set_create_it_once() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 2)], policy()).await;
    let id = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_last": 5}),
    )
    .await;
    let run = backup(&stack, &worker, &id).await;
    let template = set(&stack, set_of(&run)).await;
    let template_entries = entries(&stack, template.id).await;
    for _ in 0..5 {
        let mut fresh = template.clone();
        fresh.id = BackupSetId::new();
        let attempts = (0..8).map(|i| {
            let store = stack.store().clone();
            let mut mine = fresh.clone();
            mine.object_count = i;
            let entries = template_entries.clone();
            tokio::spawn(async move { store.record_backup_set(&mine, &entries).await.unwrap() })
        });
        let results = futures::future::join_all(attempts).await;
        let created = results
            .iter()
            .filter(|r| matches!(r, Ok(tenantops_aws::Recorded::Created)))
            .count();
        assert_eq!(created, 1);
        let winner = set(&stack, fresh.id).await;
        for r in results {
            if let Ok(tenantops_aws::Recorded::AlreadyRecorded(s)) = r {
                assert_eq!(*s, winner);
            }
        }
        assert_eq!(entries(&stack, fresh.id).await, template_entries);
    }
}

#[tokio::test]
async fn a_deletion_claim_and_a_new_reference_never_both_win() {
    let stack = TestStack::new().await;
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let store = stack.store().clone();
    for round in 0..20 {
        let hash = format!("{round:064x}");
        // A snapshot that a set used and no longer does.
        let old = BackupSetId::new();
        let now = Utc::now();
        store
            .reference_snapshot(ws, tenant, &hash, old, now)
            .await
            .unwrap();
        let expired = BackupSet {
            id: old,
            workspace_id: ws,
            tenant_id: tenant,
            run_id: tenantops_core::RunId::new(),
            schedule_id: None,
            status: BackupSetStatus::Complete,
            types: vec![],
            object_count: 1,
            manifest_key: String::new(),
            manifest_hash: String::new(),
            created_at: now,
        };
        let entry = ManifestEntry {
            object_type: "deviceConfigurations".into(),
            object_id: "x".into(),
            name: "x".into(),
            hash: hash.clone(),
            snapshot_key: snapshot_key(ws, tenant, &hash),
            assignments: Default::default(),
        };
        store.record_backup_set(&expired, &[entry]).await.unwrap();
        store.finish_expiry(&expired).await.unwrap();
        assert_eq!(
            store
                .snapshot_reference_count(ws, tenant, &hash)
                .await
                .unwrap(),
            0
        );

        let (a, b) = (store.clone(), store.clone());
        let (h1, h2) = (hash.clone(), hash.clone());
        let claim = tokio::spawn(async move {
            a.claim_snapshot_deletion(ws, tenant, &h1, now)
                .await
                .unwrap()
        });
        let reference = tokio::spawn(async move {
            b.reference_snapshot(ws, tenant, &h2, BackupSetId::new(), Utc::now())
                .await
                .unwrap()
        });
        let (claimed, referenced) = (claim.await.unwrap(), reference.await.unwrap());
        let count = store
            .snapshot_reference_count(ws, tenant, &hash)
            .await
            .unwrap();
        match referenced {
            tenantops_aws::backups::Reference::Busy => {
                assert!(claimed, "busy only while a deletion holds the claim");
                assert_eq!(count, 0);
            }
            tenantops_aws::backups::Reference::Referenced { .. } => {
                assert!(
                    !claimed,
                    "a referenced snapshot is never claimed for deletion"
                );
                assert_eq!(count, 1);
            }
        }
    }
}

#[tokio::test]
async fn a_long_throttle_hands_the_backup_back_and_the_retry_reuses_what_was_stored() {
    let stack = TestStack::new().await;
    let fast = RetryPolicy {
        handback_after: Duration::from_secs(1),
        ..policy()
    };
    let worker = stack.worker(&[(POLICIES, 3)], fast).await;
    let id = schedule(
        &stack,
        Some(&["configurationPolicies"]),
        json!({"keep_last": 5}),
    )
    .await;
    let last = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections.get(POLICIES).unwrap().objects[2]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    worker.sim.inject(Fault::Throttle {
        path_prefix: format!("{POLICIES}/{last}/settings"),
        times: 1,
        retry_after_secs: Some(3),
    });
    stack.s3_calls.take();
    let r = stack
        .call(
            ApiCall::post(format!("{}/{id}/run-now", schedules_path(&stack)), "{}")
                .by(&stack.users().owner),
        )
        .await;
    let run_id = r.run_id();
    worker.drain().await;
    let run = stack.run(&run_id).await;
    assert_eq!(run.status, RunStatus::Running, "handed back, not failed");
    assert!(
        stack
            .store()
            .backup_sets(stack.demo.workspace_id, stack.demo.tenant_id, 10, None)
            .await
            .unwrap()
            .items
            .is_empty(),
        "no set before the run has captured everything"
    );

    tokio::time::sleep(Duration::from_millis(3300)).await;
    worker.drain().await;
    let run = stack.run(&run_id).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{:?}",
        run.failures
    );
    assert_eq!(run.attempts, 2);
    assert_eq!(
        run.counters.total, 3,
        "counted once, by the attempt that finished"
    );
    assert_eq!(entries(&stack, set_of(&run)).await.len(), 3);
    // Three snapshots and one manifest, whichever attempt stored them.
    assert_eq!(puts(&stack), 3 + 1);
}

/// A recorded set of the schedule, `age_days` old, using the snapshot `hash` (stored).
async fn aged_set(
    stack: &TestStack,
    worker: &WorkerHarness,
    schedule: tenantops_core::ScheduleId,
    age_days: i64,
    hash: &str,
) -> BackupSet {
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let created_at = Utc::now() - chrono::Duration::days(age_days);
    let ulid = ulid::Ulid::from_parts(
        u64::try_from(created_at.timestamp_millis()).unwrap(),
        rand_bits(),
    );
    let set = BackupSet {
        id: BackupSetId::from_ulid(ulid),
        workspace_id: ws,
        tenant_id: tenant,
        run_id: tenantops_core::RunId::new(),
        schedule_id: Some(schedule),
        status: BackupSetStatus::Complete,
        types: vec!["deviceConfigurations".into()],
        object_count: 1,
        manifest_key: tenantops_aws::snapshots::manifest_key(
            ws,
            tenant,
            BackupSetId::from_ulid(ulid),
        ),
        manifest_hash: String::new(),
        created_at,
    };
    let key = snapshot_key(ws, tenant, hash);
    stack
        .store()
        .reference_snapshot(ws, tenant, hash, set.id, Utc::now())
        .await
        .unwrap();
    worker
        .deps
        .snapshots
        .put_if_absent(&key, format!("{{\"v\":\"{hash}\"}}").into_bytes())
        .await
        .unwrap();
    let entry = ManifestEntry {
        object_type: "deviceConfigurations".into(),
        object_id: format!("object-{age_days}"),
        name: "aged".into(),
        hash: hash.to_owned(),
        snapshot_key: key,
        assignments: Default::default(),
    };
    stack
        .store()
        .record_backup_set(&set, &[entry])
        .await
        .unwrap();
    set
}

fn rand_bits() -> u128 {
    ulid::Ulid::new().random()
}

#[tokio::test]
async fn retention_by_days_keeps_younger_sets_and_expires_older_ones() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(PROFILES, 1)], policy()).await;
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let schedule: tenantops_core::ScheduleId = schedule(
        &stack,
        Some(&["deviceConfigurations"]),
        json!({"keep_days": 7}),
    )
    .await
    .parse()
    .unwrap();
    let hash = |n: u8| format!("{n:064x}");
    let old = aged_set(&stack, &worker, schedule, 20, &hash(1)).await;
    let older_shared = aged_set(&stack, &worker, schedule, 10, &hash(2)).await;
    let young = aged_set(&stack, &worker, schedule, 3, &hash(2)).await;
    let newest = aged_set(&stack, &worker, schedule, 0, &hash(3)).await;
    let pass = tenantops_worker::retention::expire(
        &worker.deps,
        ws,
        tenant,
        schedule,
        tenantops_core::schedule::Retention {
            keep_last: None,
            keep_days: Some(7),
        },
        newest.id,
        Utc::now(),
    )
    .await
    .unwrap();
    let mut expired = pass.expired_sets.clone();
    expired.sort();
    let mut want = vec![old.id, older_shared.id];
    want.sort();
    assert_eq!(expired, want);
    // hash(1) was only the oldest set's; hash(2) is still the young set's.
    assert_eq!(pass.deleted_snapshots, 1);
    assert!(!head(&stack, &snapshot_key(ws, tenant, &hash(1))).await);
    assert!(head(&stack, &snapshot_key(ws, tenant, &hash(2))).await);
    assert!(head(&stack, &snapshot_key(ws, tenant, &hash(3))).await);
    let left: Vec<BackupSetId> = stack
        .store()
        .backup_sets(ws, tenant, 10, None)
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![newest.id, young.id]);
    // A second pass finds nothing more to do.
    let again = tenantops_worker::retention::expire(
        &worker.deps,
        ws,
        tenant,
        schedule,
        tenantops_core::schedule::Retention {
            keep_last: None,
            keep_days: Some(7),
        },
        newest.id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(again, Default::default());
}

/// The navigations a backup folds into a type's snapshot, by the registry: sub-collections,
/// per-item expansions and assignments.
fn navigations(ty: &tenantops_graph::ObjectType) -> Vec<&'static str> {
    use tenantops_graph::registry::{Assignments, ExtraRead};
    let name = |s: &'static str| s.split(['?', '(']).next().unwrap_or(s);
    let mut navs: Vec<&'static str> = ty
        .extra_reads
        .iter()
        .filter_map(|r| match r {
            ExtraRead::SubCollection(s) | ExtraRead::ExpandOnItem(s) => Some(name(s)),
            ExtraRead::ItemContent => None,
        })
        .collect();
    if ty.assignments != Assignments::None {
        navs.push("assignments");
    }
    navs
}

/// An administrative template's values as the registry's read expands them: each value's
/// bound definition and each presentation value's bound presentation inline (graph-sim holds
/// the binds, which Graph never answers).
fn definition_values_as_read(
    tenant: &std::collections::BTreeMap<String, tenantops_graph_sim::Collection>,
    id: &str,
) -> Value {
    let templates = &tenant["deviceManagement/groupPolicyConfigurations"];
    let catalog = &tenant["deviceManagement/groupPolicyDefinitions"];
    let bound = |v: &mut Value, bind: &str| {
        let url = v[bind].as_str().unwrap().to_owned();
        v.as_object_mut().unwrap().remove(bind);
        url
    };
    let key = |url: &str, name: &str| {
        let from = url.rfind(&format!("{name}('")).unwrap() + name.len() + 2;
        url[from..url.len() - 2].to_owned()
    };
    let values = templates.sub_resources[&format!("{id}/definitionValues")].clone();
    let values = values.into_iter().map(|mut v| {
        let definition = key(
            &bound(&mut v, "definition@odata.bind"),
            "groupPolicyDefinitions",
        );
        v["definition"] = catalog
            .objects
            .iter()
            .find(|d| d["id"] == definition.as_str())
            .unwrap()
            .clone();
        let below = format!(
            "{id}/definitionValues/{}/presentationValues",
            v["id"].as_str().unwrap()
        );
        let presentations = &catalog.sub_resources[&format!("{definition}/presentations")];
        let options = templates.sub_resources[&below].iter().map(|p| {
            let mut p = p.clone();
            let presentation = key(&bound(&mut p, "presentation@odata.bind"), "presentations");
            p["presentation"] = presentations
                .iter()
                .find(|x| x["id"] == presentation.as_str())
                .unwrap()
                .clone();
            p
        });
        v["presentationValues"] = Value::Array(options.collect());
        v
    });
    Value::Array(values.collect())
}

#[tokio::test]
async fn a_backup_of_the_default_tenant_reads_at_most_1_2_graph_requests_per_object_and_every_navigation()
 {
    // graph-sim's default tenant: `graph-sim --demo`, 20 objects in each collection.
    let stack = TestStack::new().await;
    let counts: Vec<(&str, usize)> = DEMO_COLLECTIONS.iter().map(|p| (*p, 20)).collect();
    let worker = stack.worker(&counts, policy()).await;
    let id = schedule(&stack, None, json!({"keep_days": 30})).await;
    worker.sim.clear_requests();
    let run = backup(&stack, &worker, &id).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    let all = entries(&stack, set_of(&run)).await;
    assert_eq!(all.len() as u64, run.counters.succeeded);

    // A count of requests, not a timing: lists carry assignments, settings come 1,000 a page.
    let graph = worker
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .count();
    let per_object = graph as f64 / all.len() as f64;
    assert!(
        per_object <= 1.2,
        "{graph} Graph requests for {} objects: {per_object:.3} a object",
        all.len()
    );

    // Every snapshot holds the whole object: its properties (script bodies included) and
    // every navigation the registry names, exactly as graph-sim holds them.
    let tenant = worker
        .sim
        .with_tenant(&worker.entra_tenant_id, |t| t.collections.clone());
    for entry in &all {
        let ty = tenantops_graph::ObjectType::named(&entry.object_type).unwrap();
        let collection = &tenant[ty.path];
        let mut full = collection
            .objects
            .iter()
            .find(|o| o["id"] == entry.object_id.as_str())
            .unwrap()
            .clone();
        for nav in navigations(ty) {
            let items = collection
                .sub_resources
                .get(&format!("{}/{nav}", entry.object_id))
                .cloned()
                .unwrap_or_default();
            full[nav] = Value::Array(items);
        }
        if ty.name == "groupPolicyConfigurations" {
            full["definitionValues"] = definition_values_as_read(&tenant, &entry.object_id);
        }
        let stored = object(&stack, &entry.snapshot_key).await.unwrap();
        assert_eq!(
            stored,
            tenantops_core::backup::normalize(&full),
            "{}/{}",
            entry.object_type,
            entry.object_id
        );
    }
}
