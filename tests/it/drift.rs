//! Drift checks against graph-sim, DynamoDB Local and moto's S3: a backup, then graph-sim's
//! objects changed as an admin would (a setting, an assignment, one deletion, one new object,
//! each logged in graph-sim's Intune audit log), then a `drift.check` whose report names
//! each change, its fields and who made it; no S3 write for unchanged objects; dedupe while
//! active; a missing baseline; isolation; bad input; and no secret anywhere, nor the actor
//! outside the report; accepting a report (a backup linked from it, once, audited); reverting
//! selected items (a restore preview of the baseline for exactly those, audited); a check past its deadline continues across invocations, reading each
//! object once. And the diff of two backup sets, which reads S3 only for objects
//! whose hash differs.

use serde_json::{Value, json};
use tenantops_core::{Outcome, RunStatus};
use tenantops_graph_sim::audit::{AuditActor, record};
use tenantops_tests::{ApiCall, LogBuffer, Reply, TestStack, WorkerHarness};

use crate::continuation::{continue_to_end, reads_repeated, worker as paged_worker};
use crate::restore::{SCRIPTS, backup, setup, tenant_path};

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const TYPE: &str = "deviceConfigurations";
const ACTOR_UPN: &str = "ana.admin@contoso.example";
const ACTOR_APP: &str = "Contoso Provisioning App";

/// The ids of the tenant's device configurations, in order.
fn ids(worker: &WorkerHarness) -> Vec<String> {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections[CONFIGS]
            .objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    })
}

fn set_field(worker: &WorkerHarness, id: &str, field: &str, value: Value) {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        let o = c.objects.iter_mut().find(|o| o["id"] == id).unwrap();
        o[field] = value;
    });
}

fn fresh_group() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// The S3 operations of `calls` named `name`.
fn count(calls: &[String], name: &str) -> usize {
    calls.iter().filter(|c| *c == name).count()
}

async fn get(stack: &TestStack, path: String) -> Reply {
    stack
        .call(ApiCall::get(path).by(&stack.users().owner))
        .await
}

/// Every item of a report, read page by page (2 a page, so paging is exercised).
async fn all_items(stack: &TestStack, report: &str) -> Vec<Value> {
    let (mut items, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut path = tenant_path(stack, &format!("drift/{report}?limit=2"));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = get(stack, path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn a_drift_check_names_each_change_its_fields_and_who_made_it_and_no_secret() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,aws_smithy_runtime=info,aws_sdk_s3=info,aws_sdk_dynamodb=info,aws_sdk_sqs=info,hyper=info,h2=info,rustls=info,hyper_util=info,reqwest=info",
        ))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (stack, worker) = setup(&[("groups", 2), (CONFIGS, 5)]).await;
    let capture = stack.capture_events().await;
    let ids = ids(&worker);
    let (setting, assigned, deleted) = (&ids[0], &ids[1], &ids[2]);
    let planted = format!("PLANTED-{}-psk", ulid::Ulid::new());
    set_field(&worker, setting, "preSharedKey", json!(planted));
    let set = backup(&stack, &worker, &[TYPE]).await;

    // The admin's changes, each as Intune logs it.
    let replanted = format!("PLANTED-{}-psk2", ulid::Ulid::new());
    // A group no generated assignment names, so the assignment change always shows.
    let group = fresh_group();
    let added = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        let o = c.objects.iter_mut().find(|o| o["id"] == *setting).unwrap();
        o["description"] = json!("changed by drift test");
        o["preSharedKey"] = json!(replanted);
        c.sub_resources.insert(
            format!("{assigned}/assignments"),
            vec![json!({
                "id": format!("{assigned}_{group}"),
                "target": {
                    "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                    "groupId": group,
                }
            })],
        );
        c.objects.retain(|o| o["id"] != *deleted);
        let mut new = c.objects[0].clone();
        let new_id = ulid::Ulid::new().to_string().to_lowercase();
        new["id"] = json!(new_id);
        new["displayName"] = json!("Drift test new profile");
        c.objects.push(new);
        let user = AuditActor {
            user_principal_name: Some(ACTOR_UPN.into()),
            application_display_name: Some("Microsoft Intune portal".into()),
        };
        let app = AuditActor {
            user_principal_name: None,
            application_display_name: Some(ACTOR_APP.into()),
        };
        let ty = "DeviceConfiguration";
        record(t, &user, "Patch DeviceConfiguration", "Patch", setting, ty);
        record(
            t,
            &app,
            "Assign DeviceConfiguration",
            "Action",
            assigned,
            ty,
        );
        record(
            t,
            &user,
            "Delete DeviceConfiguration",
            "Delete",
            deleted,
            ty,
        );
        record(t, &app, "Create DeviceConfiguration", "Create", &new_id, ty);
        new_id
    });

    stack.s3_calls.take();
    let run_id = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    worker.drain().await;
    let run = stack.run(&run_id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
    // No S3 write at all; a read of the baseline snapshot for each of the two objects whose
    // hash differs, none for the unchanged ones.
    let s3 = stack.s3_calls.take();
    assert_eq!(count(&s3, "PutObject"), 0, "{s3:?}");
    assert_eq!(count(&s3, "GetObject"), 2, "{s3:?}");
    let result = run.result.clone().unwrap();
    assert_eq!(result["baseline_backup_set_id"], set.as_str());
    assert_eq!(
        (
            &result["added"],
            &result["removed"],
            &result["changed"],
            &result["unchanged"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(2)),
        "{result}"
    );

    let list = get(&stack, tenant_path(&stack, "drift")).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let report = &list.body["items"][0];
    assert_eq!(report["id"], run_id.as_str());
    assert_eq!(report["item_count"], 4);
    let items = all_items(&stack, &run_id).await;
    assert_eq!(items.len(), 4);
    let item = |id: &str| {
        items
            .iter()
            .find(|i| i["object_id"] == id)
            .unwrap_or_else(|| panic!("no item for {id}: {items:?}"))
    };
    let changed = item(setting);
    assert_eq!(changed["kind"], "changed");
    let paths: Vec<&str> = changed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["description"], "{changed}");
    assert_eq!(changed["changes"][0]["after"], "changed by drift test");
    assert_eq!(changed["actor"]["user_principal_name"], ACTOR_UPN);
    let reassigned = item(assigned);
    assert_eq!(reassigned["kind"], "changed");
    assert_eq!(
        reassigned["assignments"]["after"]["group_ids"],
        json!([group])
    );
    assert_eq!(reassigned["actor"]["application"], ACTOR_APP);
    assert_eq!(item(deleted)["kind"], "removed");
    assert_eq!(item(deleted)["actor"]["user_principal_name"], ACTOR_UPN);
    assert_eq!(item(&added)["kind"], "added");
    assert_eq!(item(&added)["actor"]["application"], ACTOR_APP);

    // No secret in the report, the run or the logs; the actor only in the report.
    let report_text = serde_json::to_string(&items).unwrap() + &list.body.to_string();
    let run_text = serde_json::to_string(&json!({
        "result": run.result, "failures": run.failures,
    }))
    .unwrap();
    let events = stack.captured(&capture).await.join("\n");
    let log_text = logs.text();
    for secret in [&planted, &replanted] {
        assert!(!report_text.contains(secret.as_str()));
        assert!(!run_text.contains(secret.as_str()));
        assert!(!log_text.contains(secret.as_str()));
        assert!(!events.contains(secret.as_str()));
    }
    assert!(!report_text.contains("preSharedKey"), "{report_text}");
    for actor in [ACTOR_UPN, ACTOR_APP] {
        assert!(!run_text.contains(actor), "{run_text}");
        assert!(!log_text.contains(actor), "the actor reached a log");
        assert!(!events.contains(actor), "the actor reached an event");
    }
    assert!(
        log_text.contains("drift report recorded"),
        "the logs were captured"
    );
}

#[tokio::test]
async fn drift_checks_dedupe_while_active_and_fail_without_a_baseline() {
    let (stack, worker) = setup(&[(CONFIGS, 2)]).await;
    let body = json!({"type": "drift.check", "params": {"types": [TYPE]}});
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let first = stack
        .call(ApiCall::post(path.clone(), body.to_string()).by(&stack.users().owner))
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let second = stack
        .call(ApiCall::post(path.clone(), body.to_string()).by(&stack.users().operator))
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["deduplicated"], true);
    assert_eq!(second.run_id(), first.run_id());
    // No backup yet: nothing to compare with.
    worker.drain().await;
    let run = stack.run(&first.run_id()).await;
    assert_eq!(run.outcome, Outcome::Failed, "{run:?}");
    assert_eq!(
        run.failures.first().map(|f| f.code.as_str()),
        Some("drift.baseline_missing")
    );
    // A named set that is not the tenant's fails the same way.
    let named = json!({"type": "drift.check", "params": {
        "types": [TYPE], "baseline_backup_set_id": ulid::Ulid::new().to_string()}});
    let id = stack.start(named).await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(
        run.failures.first().map(|f| f.code.as_str()),
        Some("drift.baseline_missing")
    );
    // Bad params change nothing: an RFC 9457 problem with its code.
    let bad = stack
        .call(
            ApiCall::post(
                path,
                json!({"type": "drift.check", "params": {"baseline": "x"}}).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.code(), "operation.invalid_params");
    assert_eq!(bad.content_type, "application/problem+json");
}

#[tokio::test]
async fn drift_reports_are_isolated_and_refuse_bad_queries() {
    let (stack, worker) = setup(&[(CONFIGS, 2)]).await;
    backup(&stack, &worker, &[TYPE]).await;
    let id = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    worker.drain().await;
    assert_eq!(stack.run(&id).await.outcome, Outcome::Succeeded);
    let users = stack.users();
    let (d, list, one) = (
        &stack.demo,
        tenant_path(&stack, "drift"),
        tenant_path(&stack, &format!("drift/{id}")),
    );
    for path in [&list, &one] {
        let r = stack
            .call(ApiCall::get(path.clone()).by(&users.operator))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = stack
            .call(ApiCall::get(path.clone()).by(&users.outsider))
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = stack
            .call(ApiCall::get(path.clone()).by(&users.readonly))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.code(), "auth.forbidden");
    }
    // Another workspace's tenant, and this report under another tenant.
    let other = format!(
        "/v1/workspaces/{}/tenants/{}/drift/{id}",
        d.other_workspace_id, d.other_tenant_id
    );
    let r = stack.call(ApiCall::get(other).by(&users.owner)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let mixed = format!(
        "/v1/workspaces/{}/tenants/{}/drift/{id}",
        d.workspace_id, d.other_tenant_id
    );
    let r = stack.call(ApiCall::get(mixed).by(&users.owner)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    for (path, code) in [
        (format!("{list}?limit=0"), "query.invalid"),
        (format!("{list}?cursor=nope"), "cursor.invalid"),
        (format!("{one}?color=red"), "query.invalid"),
        (
            tenant_path(&stack, "drift/not-a-report"),
            "drift.report_not_found",
        ),
        (
            tenant_path(&stack, &format!("drift/{}", ulid::Ulid::new())),
            "drift.report_not_found",
        ),
    ] {
        let r = stack
            .call(ApiCall::get(path.clone()).by(&users.owner))
            .await;
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.body);
        assert_eq!(r.code(), code, "{path}");
        assert_eq!(r.content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn the_diff_of_two_backup_sets_reads_s3_only_for_objects_whose_hash_differs() {
    let (stack, worker) = setup(&[("groups", 2), (CONFIGS, 6)]).await;
    let ids = ids(&worker);
    let first = backup(&stack, &worker, &[TYPE]).await;
    set_field(&worker, &ids[0], "description", json!("second version"));
    // A group no generated assignment names, so the assignment change always shows.
    let group = fresh_group();
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects.retain(|o| o["id"] != ids[1]);
        c.sub_resources.insert(
            format!("{}/assignments", ids[2]),
            vec![json!({"id": "a1", "target": {
                "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}})],
        );
    });
    let second = backup(&stack, &worker, &[TYPE]).await;
    let path = |q: &str| tenant_path(&stack, &format!("backups/{first}/diff/{second}{q}"));

    stack.s3_calls.take();
    let r = get(&stack, path("?limit=1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["counts"],
        json!({"added": 0, "removed": 1, "changed": 2, "unchanged": 3})
    );
    // Page by page: the first page is the first changed object (by type, then id).
    let mut items = r.body["items"].as_array().unwrap().clone();
    let mut cursor = r.body["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let r = get(&stack, path(&format!("?limit=1&cursor={c}"))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        cursor = r.body["next_cursor"].as_str().map(str::to_owned);
    }
    let s3 = stack.s3_calls.take();
    // Two objects' hashes differ (a setting, an assignment); each costs its two snapshots,
    // read once however the pages fall. The removed and unchanged objects cost nothing.
    assert_eq!(count(&s3, "GetObject"), 4, "{s3:?}");
    assert_eq!(s3.len(), 4, "{s3:?}");
    assert_eq!(items.len(), 3, "{items:?}");
    let item = |id: &str| items.iter().find(|i| i["object_id"] == id).unwrap();
    assert_eq!(item(&ids[0])["kind"], "changed");
    assert_eq!(item(&ids[0])["changes"][0]["path"], "description");
    assert_eq!(item(&ids[0])["changes"][0]["after"], "second version");
    assert_eq!(item(&ids[1])["kind"], "removed");
    assert_eq!(
        item(&ids[2])["assignments"]["after"]["group_ids"],
        json!([group])
    );
    assert!(item(&ids[2])["changes"].is_null(), "{items:?}");

    // Isolation and bad input.
    let users = stack.users();
    let r = stack.call(ApiCall::get(path("")).by(&users.outsider)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = stack.call(ApiCall::get(path("")).by(&users.readonly)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let d = &stack.demo;
    let other = format!(
        "/v1/workspaces/{}/tenants/{}/backups/{first}/diff/{second}",
        d.other_workspace_id, d.other_tenant_id
    );
    let r = stack.call(ApiCall::get(other).by(&users.owner)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    for (p, code) in [
        (
            tenant_path(&stack, &format!("backups/{first}/diff/nope")),
            "backup.set_not_found",
        ),
        (
            tenant_path(
                &stack,
                &format!("backups/{}/diff/{second}", ulid::Ulid::new()),
            ),
            "backup.set_not_found",
        ),
        (path("?limit=101"), "query.invalid"),
        (path("?cursor=zzz"), "cursor.invalid"),
    ] {
        let r = get(&stack, p.clone()).await;
        assert!(r.status == 400 || r.status == 404, "{p}: {}", r.body);
        assert_eq!(r.code(), code, "{p}");
    }
    assert!(
        stack.s3_calls.take().is_empty(),
        "refusals read nothing from S3"
    );
}

#[tokio::test]
async fn a_drift_check_past_its_deadline_continues_across_invocations_reading_each_object_once() {
    let stack = TestStack::new().await;
    let worker = paged_worker(&stack, &[(CONFIGS, 13)], &[CONFIGS], 3, true, false).await;
    backup(&stack, &worker, &[TYPE]).await;
    let ids = ids(&worker);
    set_field(&worker, &ids[4], "description", json!("changed mid-list"));
    set_field(
        &worker,
        &ids[11],
        "description",
        json!("changed on the last page"),
    );
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects.retain(|o| o["id"] != ids[7]);
    });
    worker.sim.clear_requests();
    let id = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    // Every invocation is past its margin: one page each.
    let (run, invocations) = continue_to_end(&stack, &worker, &id, chrono::Utc::now).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert!(invocations >= 4, "{invocations} invocations");
    assert!(run.checkpoint.is_none());
    let result = run.result.unwrap();
    assert_eq!(
        (
            &result["added"],
            &result["removed"],
            &result["changed"],
            &result["unchanged"]
        ),
        (&json!(0), &json!(1), &json!(2), &json!(10)),
        "{result}"
    );
    assert_eq!(
        reads_repeated(&worker),
        Vec::<String>::new(),
        "no read twice"
    );
    let items = all_items(&stack, &id).await;
    let mut got: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["object_id"].as_str().unwrap().to_owned(),
                i["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (ids[4].clone(), "changed".to_owned()),
        (ids[7].clone(), "removed".to_owned()),
        (ids[11].clone(), "changed".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn accepting_a_report_backs_up_its_types_once_links_the_run_and_is_audited() {
    let (stack, worker) = setup(&[(CONFIGS, 3)]).await;
    backup(&stack, &worker, &[TYPE]).await;
    let ids = ids(&worker);
    set_field(&worker, &ids[0], "description", json!("accepted change"));
    let report = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    worker.drain().await;
    let users = stack.users();
    let accept = tenant_path(&stack, &format!("drift/{report}/accept"));
    let r = stack
        .call(ApiCall::post(accept.clone(), "").by(&users.readonly))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = stack
        .call(ApiCall::post(accept.clone(), "").by(&users.outsider))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = stack
        .call(ApiCall::post(accept.clone(), "").by(&users.operator))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run = r.run_id();
    let again = stack
        .call(ApiCall::post(accept.clone(), "").by(&users.owner))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.code(), "drift.already_accepted");
    let missing = tenant_path(&stack, &format!("drift/{}/accept", ulid::Ulid::new()));
    let r = stack
        .call(ApiCall::post(missing, "").by(&users.owner))
        .await;
    assert_eq!(r.code(), "drift.report_not_found");
    worker.drain().await;
    let backup_run = stack.run(&run).await;
    assert_eq!(backup_run.outcome, Outcome::Succeeded, "{backup_run:?}");
    assert_eq!(backup_run.context.target_scope, json!({"types": [TYPE]}));
    let view = get(&stack, tenant_path(&stack, &format!("drift/{report}"))).await;
    assert_eq!(
        view.body["report"]["accepted_run"],
        format!("/v1/operations/{run}")
    );
    let audit = get(
        &stack,
        format!(
            "/v1/workspaces/{}/audit?action=drift.accept",
            stack.demo.workspace_id
        ),
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert_eq!(audit.body["items"][0]["target"], report.as_str());
    assert_eq!(audit.body["items"][0]["actor"], users.operator.to_string());
    // The accepted state is the new baseline: no drift left.
    let next = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    worker.drain().await;
    let result = stack.run(&next).await.result.unwrap();
    assert_eq!(result["changed"], 0, "{result}");
    assert_eq!(result["baseline_backup_set_id"], run.as_str());
}

#[tokio::test]
async fn reverting_items_previews_a_restore_of_exactly_those_from_the_baseline() {
    let (stack, worker) = setup(&[(CONFIGS, 4)]).await;
    let set = backup(&stack, &worker, &[TYPE]).await;
    let ids = ids(&worker);
    set_field(&worker, &ids[0], "description", json!("to be reverted"));
    set_field(&worker, &ids[2], "description", json!("kept"));
    let added = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects.retain(|o| o["id"] != ids[1]);
        let mut new = c.objects[0].clone();
        let id = fresh_group();
        new["id"] = json!(id);
        c.objects.push(new);
        id
    });
    let report = stack
        .start(json!({"type": "drift.check", "params": {"types": [TYPE]}}))
        .await;
    worker.drain().await;
    let users = stack.users();
    let revert = tenant_path(&stack, &format!("drift/{report}/revert"));
    let item = |id: &str| json!({"object_type": TYPE, "object_id": id});
    let post = |body: Value, user| ApiCall::post(revert.clone(), body.to_string()).by(user);
    let body = json!({"items": [item(&ids[0]), item(&ids[1])]});
    let r = stack.call(post(body.clone(), &users.readonly)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = stack.call(post(body.clone(), &users.outsider)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    for (bad, status, code) in [
        (
            json!({"items": [item(&added)]}),
            409,
            "restore.items_invalid",
        ),
        (
            json!({"items": [item("not-in-the-report")]}),
            409,
            "restore.items_invalid",
        ),
        (json!({"items": "all"}), 422, "request.invalid"),
        (json!({"items": [], "other": 1}), 422, "request.invalid"),
        (json!({"items": []}), 422, "request.invalid"),
    ] {
        let r = stack.call(post(bad.clone(), &users.owner)).await;
        assert_eq!(r.status, status, "{bad}: {}", r.body);
        assert_eq!(r.code(), code, "{bad}");
    }
    let r = stack.call(post(body.clone(), &users.operator)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let restore = r.body["restore"]["id"].as_str().unwrap().to_owned();
    assert!(r.body["confirmation_token"].is_string());
    worker.drain().await;
    let view = get(&stack, tenant_path(&stack, &format!("restores/{restore}"))).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(
        view.body["restore"]["backup_set_id"],
        set.as_str(),
        "{}",
        view.body
    );
    let mut planned: Vec<&str> = view.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object_id"].as_str().unwrap())
        .collect();
    planned.sort();
    let mut want = vec![ids[0].as_str(), ids[1].as_str()];
    want.sort();
    assert_eq!(planned, want, "exactly the selected items");
    let audit = get(
        &stack,
        format!(
            "/v1/workspaces/{}/audit?action=drift.revert",
            stack.demo.workspace_id
        ),
    )
    .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
    assert_eq!(audit.body["items"][0]["target"], report.as_str());
}

#[tokio::test]
async fn a_long_changed_value_is_kept_as_an_excerpt_and_its_whole_diff_referenced() {
    let (stack, worker) = setup(&[(SCRIPTS, 2)]).await;
    let content = |c: char| -> String { std::iter::repeat_n(c, 40_000).collect() };
    let set_script = |value: String| {
        worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
            t.collections.get_mut(SCRIPTS).unwrap().objects[0]["scriptContent"] = json!(value);
        })
    };
    set_script(content('A'));
    backup(&stack, &worker, &["deviceManagementScripts"]).await;
    set_script(content('B'));
    stack.s3_calls.take();
    let report = stack
        .start(json!({"type": "drift.check", "params": {"types": ["deviceManagementScripts"]}}))
        .await;
    worker.drain().await;
    // The one write: the whole diff of the changed script, beside its item.
    let s3 = stack.s3_calls.take();
    assert_eq!(count(&s3, "PutObject"), 1, "{s3:?}");
    let items = all_items(&stack, &report).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item["changes_truncated"], true);
    let change = &item["changes"][0];
    assert_eq!(change["path"], "scriptContent");
    assert_eq!(change["excerpt"], true);
    assert!(change["after"].as_str().unwrap().len() <= 512);
    let key = item["diff_key"].as_str().unwrap();
    let whole: Value = serde_json::from_slice(&stack.snapshots.get(key).await.unwrap()).unwrap();
    assert_eq!(whole[0]["after"], content('B'));
    assert!(item.to_string().len() < 20_000, "the item stays small");
}
