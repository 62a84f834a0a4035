//! Limits on what a tenant may ask for: the minimum interval between two slots of a backup
//! schedule (`schedule.too_frequent`, configured by `TENANTOPS_MIN_SCHEDULE_INTERVAL_MINUTES`),
//! and the quota of manual backups per tenant and window (429 `quota.exceeded` with
//! `Retry-After`, configured by `TENANTOPS_MANUAL_BACKUP_QUOTA` and its window).

use std::sync::Arc;

use serde_json::{Value, json};
use tenantops_api::{Deps, Limits};
use tenantops_core::{Outcome, UserId};
use tenantops_tests::{ApiCall, Reply, TestStack};

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
            ..stack.deps.limits
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

/// The quota window of these tests. Windows are fixed and aligned to the epoch, so a test
/// under a 10-minute window fails whenever it straddles a boundary (it did in CI, at
/// 22:00:00); this one's boundaries are in 2001 and 2033.
const WINDOW: u32 = 1_000_000_000;

/// The stack's API allowing `quota` manual backups per tenant and window of `window` seconds.
fn with_quota(stack: &TestStack, quota: u32, window: u32) -> Arc<Deps> {
    Arc::new(Deps {
        limits: Limits {
            manual_backup_quota: quota,
            manual_backup_quota_window_seconds: window,
            ..stack.deps.limits
        },
        ..(*stack.deps).clone()
    })
}

/// A daily schedule of `tenant` (of the demo workspace); its run-now path.
async fn run_now_path(stack: &TestStack, tenant: &str) -> String {
    let base = format!(
        "/v1/workspaces/{}/tenants/{tenant}/backup-schedules",
        stack.demo.workspace_id
    );
    let daily = schedule(json!({"kind": "daily", "at": "02:30"})).to_string();
    let r = stack
        .call(ApiCall::post(base.clone(), daily).by(&stack.users().owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    format!(
        "{base}/{}/run-now",
        r.body["schedule"]["id"].as_str().unwrap()
    )
}

async fn run_now(stack: &TestStack, deps: &Arc<Deps>, path: &str, key: Option<&str>) -> Reply {
    let mut call = ApiCall::post(path.to_owned(), "").by(&stack.users().owner);
    if let Some(key) = key {
        call = call.header("idempotency-key", key);
    }
    stack.call_with(deps, call).await
}

/// A 429 as the document promises it: the code, and a Retry-After of whole seconds within
/// the window.
fn assert_over_quota(r: &Reply, window: u64) {
    assert_eq!((r.status, r.code()), (429, "quota.exceeded"), "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    let after: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=window).contains(&after),
        "Retry-After {after} not in 1..={window}"
    );
}

async fn runs_of(stack: &TestStack, tenant: &str) -> usize {
    let r = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations?tenant={tenant}&limit=100",
                stack.demo.workspace_id
            ))
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_start_past_the_quota_is_429_with_retry_after_and_writes_nothing() {
    let stack = TestStack::new().await;
    let tenant = stack.demo.tenant_id.to_string();
    let path = run_now_path(&stack, &tenant).await;
    let deps = with_quota(&stack, 3, WINDOW);
    let mut first = None;
    for _ in 0..3 {
        let r = run_now(&stack, &deps, &path, None).await;
        assert_eq!(r.status, 202, "{}", r.body);
        first.get_or_insert(r.run_id());
    }
    let before = stack.snapshot().await;
    let over = run_now(&stack, &deps, &path, None).await;
    assert_over_quota(&over, WINDOW.into());
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused start wrote something"
    );

    // A retry counts against the same quota.
    let failed = first.unwrap();
    stack.finish(&failed, Outcome::Failed).await;
    let retry = path.replace("/run-now", "/retry");
    let r = stack
        .call_with(
            &deps,
            ApiCall::post(retry.clone(), json!({ "run_id": failed }).to_string())
                .by(&stack.users().owner),
        )
        .await;
    assert_over_quota(&r, WINDOW.into());
    // With room left, the same retry starts.
    let r = stack
        .call_with(
            &with_quota(&stack, 4, WINDOW),
            ApiCall::post(retry, json!({ "run_id": failed }).to_string()).by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    // Run-now through the operations route counts too.
    let start = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let r = stack
        .call_with(
            &with_quota(&stack, 4, WINDOW),
            ApiCall::post(
                start,
                json!({"type": "backup_schedule.run_now"}).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_over_quota(&r, WINDOW.into());
}

#[tokio::test]
async fn a_concurrent_burst_creates_at_most_the_quota() {
    let stack = TestStack::new().await;
    let tenant = stack.demo.tenant_id.to_string();
    let path = run_now_path(&stack, &tenant).await;
    let deps = with_quota(&stack, 5, WINDOW);
    let burst = (0..20).map(|_| run_now(&stack, &deps, &path, None));
    let replies = futures::future::join_all(burst).await;
    let created = replies.iter().filter(|r| r.status == 202).count();
    for r in replies.iter().filter(|r| r.status != 202) {
        assert_over_quota(r, WINDOW.into());
    }
    assert_eq!(created, 5, "exactly the quota was admitted");
    assert_eq!(runs_of(&stack, &tenant).await, 5);
}

#[tokio::test]
async fn a_dedupe_hit_uses_no_quota_and_answers_its_run_even_when_the_quota_is_used_up() {
    let stack = TestStack::new().await;
    let tenant = stack.demo.tenant_id.to_string();
    let path = run_now_path(&stack, &tenant).await;
    let deps = with_quota(&stack, 2, WINDOW);
    let keyed = run_now(&stack, &deps, &path, Some("click-1")).await;
    assert_eq!(keyed.status, 202, "{}", keyed.body);
    for _ in 0..3 {
        let replay = run_now(&stack, &deps, &path, Some("click-1")).await;
        assert_eq!(replay.status, 200, "{}", replay.body);
        assert_eq!(replay.run_id(), keyed.run_id());
    }
    // The replays left the second start free.
    let second = run_now(&stack, &deps, &path, None).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_over_quota(&run_now(&stack, &deps, &path, None).await, WINDOW.into());
    let replay = run_now(&stack, &deps, &path, Some("click-1")).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body["deduplicated"], true);
    assert_eq!(replay.run_id(), keyed.run_id());
    // A refused start uses none either: a readonly member's 403 leaves the quota as it was.
    let readonly: &UserId = &stack.users().readonly;
    let r = stack
        .call_with(&deps, ApiCall::post(path.clone(), "").by(readonly))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(runs_of(&stack, &tenant).await, 2);
}

#[tokio::test]
async fn another_tenant_has_its_own_quota() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let tenant = stack.demo.tenant_id.to_string();
    let r = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{}/tenants", stack.demo.workspace_id),
                json!({
                    "entra_tenant_id": "0d3c6a0e-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                    "display_name": "Other",
                })
                .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let other = r.body["tenant"]["id"].as_str().unwrap().to_owned();
    let (mine, theirs) = (
        run_now_path(&stack, &tenant).await,
        run_now_path(&stack, &other).await,
    );
    let deps = with_quota(&stack, 1, WINDOW);
    assert_eq!(run_now(&stack, &deps, &mine, None).await.status, 202);
    assert_over_quota(&run_now(&stack, &deps, &mine, None).await, WINDOW.into());
    let r = run_now(&stack, &deps, &theirs, None).await;
    assert_eq!(r.status, 202, "the other tenant is unaffected: {}", r.body);
}
