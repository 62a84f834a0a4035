//! Backup schedules through the API: CRUD with audit, validation, isolation, run-now and retry.

use serde_json::{Value, json};
use tenantops_core::Outcome;
use tenantops_core::schedule::BACKUP_TYPES;
use tenantops_tests::{ApiCall, Reply, TestStack};

fn base(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

fn with_method(method: &'static str, path: String, body: Option<Value>) -> ApiCall<'static> {
    let mut c = match body {
        Some(b) => ApiCall::post(path, b.to_string()),
        None => ApiCall::get(path),
    };
    c.method = method;
    c
}

fn nightly() -> Value {
    json!({
        "name": "Nightly",
        "cadence": {"kind": "daily", "at": "02:30"},
        "timezone": "Europe/Berlin",
        "retention": {"keep_last": 30, "keep_days": 90},
    })
}

async fn create(stack: &TestStack, body: Value) -> Value {
    let r = stack
        .call(ApiCall::post(base(stack), body.to_string()).by(&stack.users().owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["schedule"].clone()
}

#[tokio::test]
async fn a_schedule_is_created_listed_viewed_changed_and_deleted_with_audit() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let s = create(&stack, nightly()).await;
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["enabled"], true);
    assert_eq!(s["version"], 1);
    assert_eq!(s["types"].as_array().unwrap().len(), BACKUP_TYPES.len());
    // The next slot is a 02:30 in Berlin, in the future.
    let next: chrono::DateTime<chrono::Utc> = s["next_fire_at"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now());
    let berlin = next.with_timezone(&"Europe/Berlin".parse::<chrono_tz::Tz>().unwrap());
    assert_eq!(berlin.format("%H:%M").to_string(), "02:30");

    let readonly = &stack.users().readonly;
    let list = stack.call(ApiCall::get(base(&stack)).by(readonly)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    assert_eq!(list.body["next_cursor"], Value::Null);
    let view = stack
        .call(ApiCall::get(format!("{}/{id}", base(&stack))).by(readonly))
        .await;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["schedule"]["name"], "Nightly");

    let patched = stack
        .call(
            with_method(
                "PATCH",
                format!("{}/{id}", base(&stack)),
                Some(json!({"types": ["mobileApps", "deviceConfigurations"], "enabled": false})),
            )
            .by(owner),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["schedule"]["types"],
        json!(["deviceConfigurations", "mobileApps"])
    );
    assert_eq!(patched.body["schedule"]["enabled"], false);
    assert_eq!(patched.body["schedule"]["version"], 2);

    let updates = stack.audit_entries("backup_schedule.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["target"], id.as_str());
    assert_eq!(updates[0]["before"]["enabled"], true);
    assert_eq!(updates[0]["after"]["enabled"], false);
    assert_eq!(
        updates[0]["after"]["types"],
        json!(["deviceConfigurations", "mobileApps"])
    );
    let creates = stack.audit_entries("backup_schedule.create").await;
    assert_eq!(creates[0]["before"], Value::Null);
    assert_eq!(creates[0]["after"]["name"], "Nightly");

    let gone = stack
        .call(with_method("DELETE", format!("{}/{id}", base(&stack)), None).by(owner))
        .await;
    assert_eq!(gone.status, 204);
    let deletes = stack.audit_entries("backup_schedule.delete").await;
    assert_eq!(deletes[0]["before"]["name"], "Nightly");
    assert_eq!(deletes[0]["after"], Value::Null);
    let view = stack
        .call(ApiCall::get(format!("{}/{id}", base(&stack))).by(owner))
        .await;
    assert_eq!(view.status, 404);
    assert_eq!(view.code(), "schedule.not_found");
}

#[tokio::test]
async fn bad_schedule_input_is_a_400_with_a_stable_code_and_writes_nothing() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let existing = create(&stack, nightly()).await;
    let id = existing["id"].as_str().unwrap().to_owned();
    let with = |k: &str, v: Value| {
        let mut b = nightly();
        b[k] = v;
        b.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad cron",
            with("cadence", json!({"kind": "cron", "expr": "61 * * * *"})),
            "schedule.invalid_cadence",
        ),
        (
            "cron with six fields",
            with("cadence", json!({"kind": "cron", "expr": "0 0 2 * * *"})),
            "schedule.invalid_cadence",
        ),
        (
            "unknown cadence kind",
            with("cadence", json!({"kind": "yearly"})),
            "schedule.invalid_cadence",
        ),
        (
            "bad time of day",
            with("cadence", json!({"kind": "daily", "at": "25:00"})),
            "schedule.invalid_cadence",
        ),
        (
            "unknown timezone",
            with("timezone", json!("Europe/Atlantis")),
            "schedule.unknown_timezone",
        ),
        (
            "unknown type",
            with("types", json!(["deviceConfigurations", "users"])),
            "schedule.unknown_type",
        ),
        (
            "keep_last out of range",
            with("retention", json!({"keep_last": 0})),
            "schedule.invalid_retention",
        ),
        (
            "keep_days out of range",
            with("retention", json!({"keep_days": 3651})),
            "schedule.invalid_retention",
        ),
        (
            "no retention at all",
            with("retention", json!({})),
            "schedule.invalid_retention",
        ),
        (
            "unknown field",
            with("owner", json!("me")),
            "schedule.invalid",
        ),
        (
            "unknown retention field",
            with("retention", json!({"keep_last": 3, "keep_forever": true})),
            "schedule.invalid_retention",
        ),
        (
            "wrong type",
            with("enabled", json!("yes")),
            "schedule.invalid",
        ),
        (
            "malformed JSON",
            "{\"cadence\": ".into(),
            "request.malformed_json",
        ),
        ("not an object", "[1, 2]".into(), "schedule.invalid"),
    ];
    let before = stack.snapshot().await;
    for (what, body, code) in &cases {
        let r = stack
            .call(ApiCall::post(base(&stack), body.clone()).by(owner))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, *code),
            "create: {what}: {}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
        if *what != "no retention at all" && *what != "malformed JSON" {
            // The same mistakes in a change.
            let patch: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let patch = match patch {
                Value::Object(mut m) => {
                    m.remove("name");
                    Value::Object(m).to_string()
                }
                other => other.to_string(),
            };
            let r = stack
                .call(with_method("PATCH", format!("{}/{id}", base(&stack)), None).by(owner))
                .await;
            assert_eq!(r.status, 400, "patch without body: {}", r.body);
            let mut call = ApiCall::post(format!("{}/{id}", base(&stack)), patch);
            call.method = "PATCH";
            let r = stack.call(call.by(owner)).await;
            assert_eq!(
                (r.status, r.code()),
                (400, *code),
                "patch: {what}: {}",
                r.body
            );
        }
    }
    let retry = stack
        .call(ApiCall::post(format!("{}/{id}/retry", base(&stack)), r#"{"run": "x"}"#).by(owner))
        .await;
    assert_eq!((retry.status, retry.code()), (400, "schedule.invalid"));
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn other_workspaces_schedules_are_404_and_readonly_members_may_not_manage() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    // The outsider owns the other workspace and makes a schedule there.
    let theirs = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/backup-schedules",
                    d.other_workspace_id, d.other_tenant_id
                ),
                nightly().to_string(),
            )
            .by(&users.outsider),
        )
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let their_id = theirs.body["schedule"]["id"].as_str().unwrap().to_owned();

    // Their id under our workspace and tenant: no such schedule here.
    for (method, suffix, body) in [
        ("GET", "", None),
        ("PATCH", "", Some(json!({"enabled": false}))),
        ("DELETE", "", None),
        ("POST", "/run-now", Some(json!({}))),
    ] {
        let r = stack
            .call(
                with_method(method, format!("{}/{their_id}{suffix}", base(&stack)), body)
                    .by(&users.owner),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (404, "schedule.not_found"),
            "{method} {suffix}"
        );
    }
    // Their workspace's paths: we are not members.
    let theirs_path = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        d.other_workspace_id, d.other_tenant_id
    );
    for call in [
        ApiCall::get(theirs_path.clone()),
        ApiCall::get(format!("{theirs_path}/{their_id}")),
        ApiCall::post(theirs_path.clone(), nightly().to_string()),
        ApiCall::post(format!("{theirs_path}/{their_id}/run-now"), "{}"),
    ] {
        let r = stack.call(call.by(&users.owner)).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "workspace.not_found"),
            "{}",
            r.body
        );
    }
    // Their tenant under our workspace.
    let r = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{}/backup-schedules",
                    d.workspace_id, d.other_tenant_id
                ),
                nightly().to_string(),
            )
            .by(&users.owner),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "tenant.not_found"));

    let before = stack.snapshot().await;
    let r = stack
        .call(ApiCall::post(base(&stack), nightly().to_string()).by(&users.readonly))
        .await;
    assert_eq!((r.status, r.code()), (403, "auth.forbidden"));
    let ours = create(&stack, nightly()).await;
    let ours_id = ours["id"].as_str().unwrap();
    let before_readonly = stack.snapshot().await;
    for call in [
        with_method(
            "PATCH",
            format!("{}/{ours_id}", base(&stack)),
            Some(json!({"enabled": false})),
        ),
        with_method("DELETE", format!("{}/{ours_id}", base(&stack)), None),
        ApiCall::post(format!("{}/{ours_id}/run-now", base(&stack)), "{}"),
    ] {
        let r = stack.call(call.by(&users.readonly)).await;
        assert_eq!((r.status, r.code()), (403, "auth.forbidden"), "{}", r.body);
    }
    assert_eq!(stack.snapshot().await, before_readonly);
    assert_ne!(before, before_readonly, "the owner's create was written");
}

#[tokio::test]
async fn run_now_is_a_new_run_per_click_unless_the_idempotency_key_repeats() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let s = create(
        &stack,
        json!({
            "cadence": {"kind": "hourly", "minute": 5},
            "types": ["deviceConfigurations", "configurationPolicies"],
            "retention": {"keep_last": 5},
        }),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let path = format!("{}/{id}/run-now", base(&stack));
    let first = stack.call(ApiCall::post(path.clone(), "").by(owner)).await;
    let second = stack
        .call(ApiCall::post(path.clone(), "{}").by(owner))
        .await;
    assert_eq!((first.status, second.status), (202, 202), "{}", first.body);
    assert_ne!(first.run_id(), second.run_id());
    let run = &first.body["run"];
    assert_eq!(run["type"], "backup_schedule.run_now");
    assert_eq!(run["context"]["backup_schedule_id"], id);
    assert_eq!(
        run["context"]["target_scope"],
        json!({"types": ["deviceConfigurations", "configurationPolicies"]})
    );

    let keyed = |key: &'static str| {
        ApiCall::post(path.clone(), "{}")
            .by(owner)
            .header("Idempotency-Key", key)
    };
    let a = stack.call(keyed("nightly-fix-1")).await;
    let b = stack.call(keyed("nightly-fix-1")).await;
    assert_eq!((a.status, b.status), (202, 200));
    assert_eq!(a.run_id(), b.run_id());
    assert_eq!(b.body["deduplicated"], true);
    assert_eq!(stack.queued_messages().await, 3);
}

async fn finished_run(stack: &TestStack, schedule: &str, outcome: Outcome) -> String {
    let r = stack
        .call(
            ApiCall::post(format!("{}/{schedule}/run-now", base(stack)), "{}")
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    stack.finish(&r.run_id(), outcome).await;
    r.run_id()
}

#[tokio::test]
async fn retry_names_a_failed_run_of_the_schedule_and_records_it() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let s = create(&stack, nightly()).await;
    let id = s["id"].as_str().unwrap();
    let other = create(&stack, nightly()).await;
    let other_id = other["id"].as_str().unwrap();
    let failed = finished_run(&stack, id, Outcome::Failed).await;
    let partial = finished_run(&stack, id, Outcome::PartiallySucceeded).await;
    let succeeded = finished_run(&stack, id, Outcome::Succeeded).await;
    let elsewhere = finished_run(&stack, other_id, Outcome::Failed).await;
    let retry = |run: &str| {
        ApiCall::post(
            format!("{}/{id}/retry", base(&stack)),
            json!({ "run_id": run }).to_string(),
        )
        .by(owner)
    };

    for original in [&failed, &partial] {
        let r: Reply = stack.call(retry(original)).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["run"]["type"], "backup_schedule.retry");
        assert_eq!(r.body["run"]["context"]["retry_of"], original.as_str());
        assert_eq!(r.body["run"]["context"]["trigger"], "retry");
        assert_eq!(r.body["run"]["context"]["backup_schedule_id"], id);
        assert_eq!(
            r.body["run"]["context"]["target_scope"]["types"]
                .as_array()
                .unwrap()
                .len(),
            BACKUP_TYPES.len()
        );
    }
    let before = stack.snapshot().await;
    let r = stack.call(retry(&succeeded)).await;
    assert_eq!((r.status, r.code()), (409, "schedule.retry_not_allowed"));
    let r = stack.call(retry(&elsewhere)).await;
    assert_eq!((r.status, r.code()), (409, "schedule.retry_run_invalid"));
    let r = stack.call(retry(&ulid::Ulid::new().to_string())).await;
    assert_eq!((r.status, r.code()), (409, "schedule.retry_run_invalid"));
    let r = stack.call(retry("not-a-run")).await;
    assert_eq!((r.status, r.code()), (400, "schedule.invalid"));
    assert_eq!(stack.snapshot().await, before);
}

#[tokio::test]
async fn run_now_of_a_deleted_schedule_is_404_and_sends_nothing() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let s = create(&stack, nightly()).await;
    let id = s["id"].as_str().unwrap();
    let gone = stack
        .call(with_method("DELETE", format!("{}/{id}", base(&stack)), None).by(owner))
        .await;
    assert_eq!(gone.status, 204);
    let r = stack
        .call(ApiCall::post(format!("{}/{id}/run-now", base(&stack)), "{}").by(owner))
        .await;
    assert_eq!((r.status, r.code()), (404, "schedule.not_found"));
    assert_eq!(stack.queued_messages().await, 0);
}

#[tokio::test]
async fn run_now_through_the_operations_route_covers_the_named_schedules_scope() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let s = create(
        &stack,
        json!({"cadence": {"kind": "hourly", "minute": 0}, "types": ["mobileApps"], "retention": {"keep_last": 2}}),
    )
    .await;
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let start = |params: Value| {
        ApiCall::post(
            path.clone(),
            json!({"type": "backup_schedule.run_now", "params": params}).to_string(),
        )
        .by(owner)
    };
    let named = stack
        .call(start(json!({"backup_schedule_id": s["id"]})))
        .await;
    assert_eq!(named.status, 202, "{}", named.body);
    assert_eq!(
        named.body["run"]["context"]["target_scope"],
        json!({"types": ["mobileApps"]})
    );
    let adhoc = stack.call(start(json!({}))).await;
    assert_eq!(adhoc.status, 202);
    assert_eq!(
        adhoc.body["run"]["context"]["target_scope"]["types"]
            .as_array()
            .unwrap()
            .len(),
        BACKUP_TYPES.len()
    );
    let before = stack.snapshot().await;
    let missing = stack
        .call(start(
            json!({"backup_schedule_id": ulid::Ulid::new().to_string()}),
        ))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "schedule.not_found")
    );
    assert_eq!(stack.snapshot().await, before);
}
