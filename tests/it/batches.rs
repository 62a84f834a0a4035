//! Batches: one request, every tenant. A 50-tenant batch in which 2 tenants already had the
//! run active (attached, not doubled) and 3 fail at Graph; its `Idempotency-Key` replay;
//! cancel before and after the children start; and isolation (another workspace's tenant id,
//! another workspace's batch, a non-member).

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::tenants::sim_serving;
use tenantops_tests::{ApiCall, TestStack};
use tenantops_worker::Fairness;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(1),
        handback_after: Duration::from_secs(5),
    }
}

const SYNC: &str = "deviceManagement/deviceConfigurations";

fn sync_batch(tenants: Value) -> Value {
    json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}, "tenants": tenants})
}

fn count(view: &Value, field: &str) -> u64 {
    view["batch"]["progress"][field].as_u64().unwrap()
}

#[tokio::test]
async fn a_batch_over_50_tenants_attaches_active_runs_and_reports_the_failed_ones() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, stack.users().owner.clone());
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws, &owner, 49).await);
    // Three tenants graph-sim does not know: their sign-in fails, so their runs fail.
    let config = sim_serving(&tenants[3..], &[(SYNC, 2)]);
    let mut worker = stack.worker_with(config, policy()).await;
    worker.deps.fairness = Fairness {
        per_workspace: 64,
        ..worker.deps.fairness
    };
    // Two tenants' syncs are active already.
    let mut active = Vec::new();
    for t in &tenants[10..12] {
        let r = stack
            .call(
                ApiCall::post(
                    stack.start_path(ws, t.id),
                    json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}})
                        .to_string(),
                )
                .by(&owner),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        active.push(r.body["run"]["id"].as_str().unwrap().to_owned());
    }

    let path = format!("/v1/workspaces/{ws}/batches");
    let create = |body: Value, key: &'static str| {
        ApiCall::post(path.clone(), body.to_string())
            .by(&owner)
            .header("Idempotency-Key", key)
    };
    let r = stack
        .call(create(sync_batch(json!("all")), "night-1"))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["batch"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["batch"]["tenants"].as_array().unwrap().len(), 50);
    let view_path = r.body["links"]["view"].as_str().unwrap().to_owned();

    // The replay answers the same batch; the key with another request is refused.
    let again = stack
        .call(create(sync_batch(json!("all")), "night-1"))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["batch"]["id"], json!(id));
    let other = stack
        .call(create(
            sync_batch(json!("all"))
                .as_object()
                .cloned()
                .map(|mut m| {
                    m.insert("exclude".into(), json!([tenants[0].id.to_string()]));
                    Value::Object(m)
                })
                .unwrap(),
            "night-1",
        ))
        .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.body["code"], "idempotency_key.reused");

    // The relay starts the children: 48 new runs, the 2 active ones attached.
    stack.settle().await;
    let view = stack.call(ApiCall::get(view_path.clone()).by(&owner)).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let children = view.body["children"].as_array().unwrap();
    assert_eq!(children.len(), 50);
    let attached: Vec<&str> = children
        .iter()
        .filter(|c| c["origin"] == "attached")
        .map(|c| c["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(attached.len(), 2, "{children:?}");
    for run in &active {
        assert!(attached.contains(&run.as_str()), "{run} attached");
    }
    assert_eq!(view.body["batch"]["status"], "running");
    assert_eq!(
        stack.queued_messages().await,
        50,
        "one message per child run"
    );

    // Until every child is terminal (a run the workspace's fairness or graph-sim's
    // throttling handed back comes back after its delay).
    let mut view = stack.call(ApiCall::get(view_path.clone()).by(&owner)).await;
    for _ in 0..40 {
        worker.drain().await;
        view = stack.call(ApiCall::get(view_path.clone()).by(&owner)).await;
        if view.body["batch"]["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        view.body["batch"]["status"], "partially_succeeded",
        "{}",
        view.body
    );
    assert_eq!(
        (count(&view.body, "succeeded"), count(&view.body, "failed")),
        (47, 3)
    );
    let failed = view.body["failed"].as_array().unwrap();
    let mut failed_tenants: Vec<&str> = failed
        .iter()
        .map(|f| f["tenant_id"].as_str().unwrap())
        .collect();
    failed_tenants.sort();
    let mut expected: Vec<String> = tenants[..3].iter().map(|t| t.id.to_string()).collect();
    expected.sort();
    assert_eq!(failed_tenants, expected);
    for f in failed {
        assert!(
            f["reason"].as_str().unwrap().starts_with("provider."),
            "{f}"
        );
    }
    // Each child links to its run, which names the batch.
    let first = &view.body["children"][0];
    let run = stack
        .call(ApiCall::get(first["view"].as_str().unwrap()).by(&owner))
        .await;
    assert_eq!(run.status, 200);
    if first["origin"] == "started" {
        assert_eq!(run.body["run"]["context"]["batch_id"], json!(id));
        assert_eq!(run.body["run"]["context"]["trigger"], "batch");
    }
    assert_eq!(stack.audit_entries("batch.create").await.len(), 1);

    // Retry: a new batch over the three failed tenants only, linked to this one.
    let retry = view.body["links"]["retry"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(retry.clone(), "{}")
                .by(&owner)
                .header("Idempotency-Key", "retry-1"),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["batch"]["retry_of"], json!(id));
    let mut retried: Vec<&str> = r.body["batch"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    retried.sort();
    assert_eq!(retried, expected);
    let replay = stack
        .call(
            ApiCall::post(retry, "{}")
                .by(&owner)
                .header("Idempotency-Key", "retry-1"),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body["batch"]["id"], r.body["batch"]["id"]);
    stack.settle().await;
    let second = stack
        .call(ApiCall::get(r.body["links"]["view"].as_str().unwrap()).by(&owner))
        .await;
    assert_eq!(second.body["children"].as_array().unwrap().len(), 3);
    assert_eq!(stack.audit_entries("batch.retry").await.len(), 1);
}

#[tokio::test]
async fn cancel_stops_the_children_not_started() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, stack.users().owner.clone());
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws, &owner, 4).await);
    let path = format!("/v1/workspaces/{ws}/batches");

    // Cancelled before the relay read it: no child ever starts.
    let held = stack.pause_relay().await;
    let r = stack
        .call(ApiCall::post(path.clone(), sync_batch(json!("all")).to_string()).by(&owner))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let cancel = r.body["links"]["cancel"].as_str().unwrap().to_owned();
    let view = r.body["links"]["view"].as_str().unwrap().to_owned();
    // A member whose role cannot start syncs cannot cancel them.
    let denied = stack
        .call(ApiCall::post(cancel.clone(), "{}").by(&stack.users().readonly))
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let c = stack
        .call(ApiCall::post(cancel.clone(), "{}").by(&owner))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    drop(held);
    stack.settle().await;
    let v = stack.call(ApiCall::get(view).by(&owner)).await;
    assert_eq!(v.body["batch"]["status"], "cancelled", "{}", v.body);
    assert_eq!(count(&v.body, "not_started"), 5);
    assert!(v.body["children"].as_array().unwrap().is_empty());

    // Cancelled once its children are queued: they are cancelled, and asking again answers
    // the batch as it is.
    let r = stack
        .call(ApiCall::post(path.clone(), sync_batch(json!("all")).to_string()).by(&owner))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    stack.settle().await;
    let cancel = r.body["links"]["cancel"].as_str().unwrap().to_owned();
    let c = stack
        .call(ApiCall::post(cancel.clone(), "{}").by(&owner))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["batch"]["status"], "cancelled", "{}", c.body);
    assert_eq!(count(&c.body, "cancelled"), 5);
    let again = stack.call(ApiCall::post(cancel, "{}").by(&owner)).await;
    assert_eq!(again.status, 200);
    // Cancelled is not failed: nothing to retry.
    let retry = stack
        .call(ApiCall::post(c.body["links"]["retry"].as_str().unwrap(), "{}").by(&owner))
        .await;
    assert_eq!(retry.status, 409, "{}", retry.body);
    assert_eq!(retry.body["code"], "batch.nothing_to_retry");
    assert_eq!(stack.audit_entries("batch.cancelled").await.len(), 2);
}

#[tokio::test]
async fn batches_are_invisible_across_workspaces_and_refuse_foreign_tenants() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let ws = stack.demo.workspace_id;
    let path = format!("/v1/workspaces/{ws}/batches");
    let runs_before = stack
        .call(ApiCall::get(format!("/v1/workspaces/{ws}/operations")).by(&users.owner))
        .await;

    // Another workspace's tenant, named or excluded: 404, and nothing is created.
    for body in [
        sync_batch(json!([stack.demo.other_tenant_id.to_string()])),
        sync_batch(json!([
            stack.demo.tenant_id.to_string(),
            stack.demo.other_tenant_id.to_string()
        ])),
        json!({"type": "inventory.sync", "tenants": "all", "exclude": [stack.demo.other_tenant_id.to_string()]}),
    ] {
        let r = stack
            .call(ApiCall::post(path.clone(), body.to_string()).by(&users.owner))
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["code"], "tenant.not_found");
    }
    // Bad input: its own codes, nothing written.
    for (body, code) in [
        (
            json!({"type": "inventory.sync", "tenants": "some"}),
            "batch.invalid_targets",
        ),
        (
            json!({"type": "inventory.sync", "tenants": {"tag": "nobody-has-this"}}),
            "batch.no_tenants",
        ),
        (
            json!({"type": "restore.execute", "tenants": "all"}),
            "operation.not_startable",
        ),
        (
            json!({"type": "backup_schedule.run_now", "params": {"backup_schedule_id": ulid::Ulid::new().to_string()}, "tenants": "all"}),
            "operation.invalid_params",
        ),
        (json!({"type": "inventory.sync"}), "request.invalid"),
    ] {
        let r = stack
            .call(ApiCall::post(path.clone(), body.to_string()).by(&users.owner))
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["code"], code, "{body}");
    }
    // A non-member: 404; a member without the capability: 403.
    let r = stack
        .call(ApiCall::post(path.clone(), sync_batch(json!("all")).to_string()).by(&users.outsider))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = stack
        .call(ApiCall::post(path.clone(), sync_batch(json!("all")).to_string()).by(&users.readonly))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(stack.audit_entries("batch.create").await.len(), 0);
    stack.settle().await;
    let runs_after = stack
        .call(ApiCall::get(format!("/v1/workspaces/{ws}/operations")).by(&users.owner))
        .await;
    assert_eq!(runs_before.body["items"], runs_after.body["items"]);

    // A batch is seen in its own workspace only.
    let r = stack
        .call(ApiCall::post(path.clone(), sync_batch(json!("all")).to_string()).by(&users.owner))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["batch"]["id"].as_str().unwrap();
    let other_ws = stack.demo.other_workspace_id;
    for (p, user) in [
        (format!("/v1/workspaces/{ws}/batches/{id}"), &users.outsider),
        // The outsider owns the other workspace: the id under it names nothing.
        (
            format!("/v1/workspaces/{other_ws}/batches/{id}"),
            &users.outsider,
        ),
        (
            format!("/v1/workspaces/{ws}/batches/{}", ulid::Ulid::new()),
            &users.owner,
        ),
        (
            format!("/v1/workspaces/{ws}/batches/not-an-id"),
            &users.owner,
        ),
    ] {
        let r = stack.call(ApiCall::get(p.clone()).by(user)).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
    }
    // A member whose role cannot see inventory syncs: 403.
    let r = stack
        .call(ApiCall::get(format!("/v1/workspaces/{ws}/batches/{id}")).by(&users.readonly))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn relays_racing_over_one_batch_start_each_tenants_child_once() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, stack.users().owner.clone());
    stack.add_connected_tenants(ws, &owner, 7).await;
    let held = stack.pause_relay().await;
    let r = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{ws}/batches"),
                json!({"type": "backup_schedule.run_now", "tenants": "all"}).to_string(),
            )
            .by(&owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id: tenantops_core::BatchId = r.body["batch"]["id"].as_str().unwrap().parse().unwrap();
    let batch = stack.store().get_batch(ws, id).await.unwrap().unwrap();
    assert_eq!(batch.tenants.len(), 8);

    // Four deliveries of the same stream record at once (a retried batch, a bisected one),
    // each with its own client: every tenant gets one child, and one run.
    let deps = tenantops_relay::Deps {
        store: tenantops_aws::Store::from_sdk(&stack.sdk, &stack.resources.table_name),
        dispatcher: stack.dispatcher(),
    };
    let results = futures::future::join_all(
        (0..4).map(|_| tenantops_relay::children::start_children(&batch, &deps)),
    )
    .await;
    let recorded: usize = results.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(recorded, 8, "each child recorded by exactly one delivery");
    let children = stack.store().batch_children(id).await.unwrap();
    assert_eq!(children.len(), 8);
    let mut runs: Vec<_> = children.iter().map(|c| c.run_id.unwrap()).collect();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), 8, "one run per tenant");
    drop(held);
    stack.settle().await;
    let listed = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{ws}/operations?type=backup_schedule.run_now&limit=100"
            ))
            .by(&owner),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 8);
    // The stream's own delivery afterwards finds every child recorded and starts nothing.
    assert_eq!(
        tenantops_relay::children::start_children(&batch, &deps)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_tag_targeted_workspace_schedule_fired_by_ten_concurrent_ticks_runs_once_per_tenant_per_slot()
 {
    let stack = TestStack::new().await;
    let users = stack.users();
    let (ws, owner) = (stack.demo.workspace_id, &users.owner);
    let tenants = stack.add_connected_tenants(ws, owner, 5).await;
    // Three of the five carry the tag; an archived one with the tag is not targeted.
    for t in &tenants[..4] {
        let mut c = ApiCall::post(
            format!("/v1/workspaces/{ws}/tenants/{}", t.id),
            json!({"tags": ["nightly"]}).to_string(),
        );
        c.method = "PATCH";
        let r = stack.call(c.by(owner)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{ws}/tenants/{}/archive", tenants[3].id),
                "{}",
            )
            .by(owner),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let tagged: Vec<String> = tenants[..3].iter().map(|t| t.id.to_string()).collect();

    let base = format!("/v1/workspaces/{ws}/backup-schedules");
    let body = json!({
        "name": "Nightly, every tagged tenant",
        "cadence": {"kind": "daily", "at": "02:00"},
        "retention": {"keep_last": 7},
        "types": ["deviceConfigurations"],
        "tenants": {"tag": "nightly"},
    });
    // Refused: a list of tenants, a missing `tenants`, a non-member, a role without the
    // capability; nothing is written.
    for (bad, user, status) in [
        (
            json!({"cadence": {"kind": "daily", "at": "02:00"}, "retention": {"keep_last": 7}, "tenants": [tenants[0].id.to_string()]}),
            owner,
            400,
        ),
        (
            json!({"cadence": {"kind": "daily", "at": "02:00"}, "retention": {"keep_last": 7}}),
            owner,
            400,
        ),
        (body.clone(), &users.outsider, 404),
        (body.clone(), &users.readonly, 403),
    ] {
        let r = stack
            .call(ApiCall::post(base.clone(), bad.to_string()).by(user))
            .await;
        assert_eq!(r.status, status, "{bad}: {}", r.body);
    }
    let listed = stack.call(ApiCall::get(base.clone()).by(owner)).await;
    assert_eq!(listed.body["items"], json!([]));

    let r = stack
        .call(ApiCall::post(base.clone(), body.to_string()).by(owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["schedule"]["targets"], json!({"tag": "nightly"}));
    let id = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let slot: chrono::DateTime<chrono::Utc> = r.body["schedule"]["next_fire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Another workspace's member cannot see it under its own workspace or this one.
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

    // Ten ticks of the slot's minute at once: one fires it.
    let deps = tenantops_scheduler::Deps {
        store: stack.store().clone(),
    };
    let event = tenantops_scheduler::ScheduledEvent::at(slot);
    let reports =
        futures::future::join_all((0..10).map(|_| tenantops_scheduler::handle(&event, &deps)))
            .await;
    let fired: usize = reports
        .into_iter()
        .map(|r| r.expect("every tick completes").fired)
        .sum();
    assert_eq!(fired, 1, "one batch for the slot");
    stack.settle().await;
    // And again, later in that minute: nothing new.
    for _ in 0..3 {
        let again = tenantops_scheduler::handle(&event, &deps).await.unwrap();
        assert_eq!(again.fired, 0);
    }
    stack.settle().await;

    let view = stack
        .call(ApiCall::get(format!("{base}/{id}")).by(owner))
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    let batch = view.body["schedule"]["last_batch_id"].as_str().unwrap();
    let b = stack
        .call(ApiCall::get(format!("/v1/workspaces/{ws}/batches/{batch}")).by(owner))
        .await;
    assert_eq!(b.status, 200, "{}", b.body);
    let mut children: Vec<String> = b.body["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tenant_id"].as_str().unwrap().to_owned())
        .collect();
    children.sort();
    let mut expected = tagged.clone();
    expected.sort();
    assert_eq!(children, expected, "the tagged active tenants, each once");

    // Exactly one scheduled run per tenant for the slot, each scoped to the schedule's types.
    let runs = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{ws}/operations?type=backup_schedule.scheduled&limit=100"
            ))
            .by(owner),
        )
        .await;
    let runs = runs.body["items"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let mut run_tenants: Vec<String> = runs
        .iter()
        .map(|r| r["tenant_id"].as_str().unwrap().to_owned())
        .collect();
    run_tenants.sort();
    assert_eq!(run_tenants, expected);
    for run in &runs {
        assert_eq!(run["context"]["backup_schedule_id"], json!(id));
        assert_eq!(run["context"]["trigger"], "schedule");
        assert_eq!(
            run["context"]["target_scope"],
            json!({"types": ["deviceConfigurations"]})
        );
        assert_eq!(run["initiator"], "system:scheduler");
    }

    // One tenant's scheduled backup fails; the slot's retry is a backup now of the same
    // schedule and scope for that tenant (the slot's strict identity would find the failed
    // run again), a new run.
    let failed_id: tenantops_core::RunId = runs[0]["id"].as_str().unwrap().parse().unwrap();
    let failed = stack.store().get_run(failed_id).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let claimed = tenantops_core::Transition::Claim {
        now,
        lease: chrono::Duration::seconds(30),
    };
    stack.store().transition(&failed, &claimed).await.unwrap();
    let failed = stack.store().get_run(failed_id).await.unwrap().unwrap();
    let finish = tenantops_core::Transition::Finish {
        now,
        outcome: tenantops_core::Outcome::Failed,
        failures: vec![tenantops_core::Failure::of(
            tenantops_core::ReasonCode::GraphUnavailable,
        )],
    };
    stack.store().transition(&failed, &finish).await.unwrap();
    let retry = stack
        .call(ApiCall::post(b.body["links"]["retry"].as_str().unwrap(), "{}").by(owner))
        .await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    assert_eq!(retry.body["batch"]["type"], "backup_schedule.run_now");
    assert_eq!(
        retry.body["batch"]["params"],
        json!({"backup_schedule_id": id})
    );
    stack.settle().await;
    let again = stack
        .call(ApiCall::get(retry.body["links"]["view"].as_str().unwrap()).by(owner))
        .await;
    let child = &again.body["children"][0];
    assert_eq!(child["origin"], "started", "{}", again.body);
    assert_eq!(child["tenant_id"], runs[0]["tenant_id"]);
    assert_ne!(
        child["run_id"], runs[0]["id"],
        "a new run, not the failed one"
    );
    let run = stack
        .call(ApiCall::get(child["view"].as_str().unwrap()).by(owner))
        .await;
    assert_eq!(
        run.body["run"]["context"]["target_scope"],
        json!({"types": ["deviceConfigurations"]})
    );
    assert_eq!(run.body["run"]["context"]["backup_schedule_id"], json!(id));
}
