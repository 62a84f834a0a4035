//! Limits on what a tenant may ask for: the minimum interval between two slots of a backup
//! schedule (`schedule.too_frequent`, configured by `TENANTOPS_MIN_SCHEDULE_INTERVAL_MINUTES`).

use std::sync::Arc;

use serde_json::{Value, json};
use tenantops_api::{Deps, Limits};
use tenantops_tests::{ApiCall, TestStack};

fn base(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

fn schedule(cadence: Value) -> Value {
    json!({
        "name": "Frequent",
        "cadence": cadence,
        "timezone": "Europe/Berlin",
        "retention": {"keep_last": 5},
    })
}

fn cron(expr: &str) -> Value {
    json!({"kind": "cron", "expr": expr})
}

/// The stack's API with another minimum schedule interval.
fn with_minimum(stack: &TestStack, minutes: u32) -> Arc<Deps> {
    Arc::new(Deps {
        limits: Limits {
            min_schedule_interval_minutes: minutes,
        },
        ..(*stack.deps).clone()
    })
}

#[tokio::test]
async fn a_cadence_more_frequent_than_the_minimum_is_refused_on_create_and_writes_nothing() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    assert_eq!(Limits::default().min_schedule_interval_minutes, 60);
    let before = stack.snapshot().await;
    for expr in ["* * * * *", "*/30 * * * *", "0,59 * * * *"] {
        let r = stack
            .call(ApiCall::post(base(&stack), schedule(cron(expr)).to_string()).by(owner))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "schedule.too_frequent"),
            "{expr}: {}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("60 minutes"), "{expr}: {detail}");
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused schedule wrote something"
    );

    // Hourly cadences are at the minimum, not below it.
    for cadence in [
        cron("0 * * * *"),
        cron("15 */2 * * *"),
        json!({"kind": "hourly", "minute": 5}),
        json!({"kind": "daily", "at": "02:30"}),
    ] {
        let r = stack
            .call(ApiCall::post(base(&stack), schedule(cadence.clone()).to_string()).by(owner))
            .await;
        assert_eq!(r.status, 201, "{cadence}: {}", r.body);
    }
}

#[tokio::test]
async fn the_minimum_is_configuration() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let half_hourly = schedule(cron("*/30 * * * *")).to_string();
    let r = stack
        .call_with(
            &with_minimum(&stack, 30),
            ApiCall::post(base(&stack), half_hourly.clone()).by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = stack
        .call_with(
            &with_minimum(&stack, 31),
            ApiCall::post(base(&stack), half_hourly).by(owner),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "schedule.too_frequent"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("31 minutes"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn an_update_to_a_too_frequent_cadence_is_refused_and_changes_nothing() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let r = stack
        .call(ApiCall::post(base(&stack), schedule(cron("0 * * * *")).to_string()).by(owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let path = format!("{}/{id}", base(&stack));
    let stored = r.body["schedule"].clone();

    let before = stack.snapshot().await;
    for patch in [
        json!({"cadence": cron("* * * * *")}),
        json!({"cadence": cron("*/30 * * * *"), "name": "Renamed"}),
    ] {
        let mut call = ApiCall::post(path.clone(), patch.to_string());
        call.method = "PATCH";
        let r = stack.call(call.by(owner)).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "schedule.too_frequent"),
            "{patch}: {}",
            r.body
        );
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused change wrote something"
    );
    let view = stack.call(ApiCall::get(path.clone()).by(owner)).await;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["schedule"], stored);

    // A schedule stored under a smaller minimum stays editable in its other fields, and its
    // cadence is held to the minimum only when it changes.
    let r = stack
        .call_with(
            &with_minimum(&stack, 1),
            ApiCall::post(base(&stack), schedule(cron("*/5 * * * *")).to_string()).by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let frequent = format!(
        "{}/{}",
        base(&stack),
        r.body["schedule"]["id"].as_str().unwrap()
    );
    let mut call = ApiCall::post(
        frequent.clone(),
        json!({"name": "Renamed", "cadence": cron("*/5 * * * *")}).to_string(),
    );
    call.method = "PATCH";
    let r = stack.call(call.by(owner)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schedule"]["name"], "Renamed");
    let mut call = ApiCall::post(
        frequent,
        json!({"cadence": cron("*/10 * * * *")}).to_string(),
    );
    call.method = "PATCH";
    let r = stack.call(call.by(owner)).await;
    assert_eq!((r.status, r.code()), (400, "schedule.too_frequent"));
}
