//! Webhook subscriptions and deliveries: a failed run delivered to a local receiver that
//! verifies the Standard Webhooks signature itself; a receiver that is down retried with
//! backoff, then dead-lettered, as its delivery log shows; SSRF refusals at registration and
//! at delivery; who may manage subscriptions; the signing secret nowhere but Secrets Manager
//! and the create answer; missed schedule slots and failed connection checks as events.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tenantops_core::webhook::{RetrySchedule, UrlPolicy};
use tenantops_core::{Failure, Outcome, ReasonCode};
use tenantops_tests::{ApiCall, LogBuffer, Reply, TestStack};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    hooks: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.hooks.lock().unwrap().push(Hook {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body,
    });
    StatusCode::NO_CONTENT
}

/// A receiver on loopback: `/hook` records and answers 204; `/moved` answers a 307 to
/// `/hook`, `/broken` a 500.
async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(record))
        .route(
            "/moved",
            axum::routing::post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, "/hook")],
                )
            }),
        )
        .route(
            "/broken",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), r)
}

/// A loopback URL where nothing listens.
async fn down_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// Verifies a Standard Webhooks signature independently of the notifier's code: HMAC-SHA256
/// keyed with the secret's base64 bytes over `{id}.{timestamp}.{body}`; the header may list
/// several space-separated `v1,` signatures.
fn verified(secret: &str, hook: &Hook) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", hook.id, hook.timestamp, hook.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    hook.signature.split(' ').any(|s| s == expected)
}

fn hooks_path(stack: &TestStack) -> String {
    format!("/v1/workspaces/{}/webhooks", stack.demo.workspace_id)
}

async fn register(
    stack: &TestStack,
    api: &Arc<tenantops_api::Deps>,
    url: &str,
    events: Value,
) -> Reply {
    stack
        .call_with(
            api,
            ApiCall::post(
                hooks_path(stack),
                json!({ "url": url, "events": events }).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await
}

/// Fails a run of the demo tenant and publishes its `Completed` event, as a worker does.
async fn fail_a_run(stack: &TestStack) -> String {
    let id = stack.start(json!({ "type": "inventory.sync" })).await;
    stack
        .finish_with(
            &id,
            Outcome::Failed,
            vec![Failure {
                code: ReasonCode::GraphThrottled,
                message: ReasonCode::GraphThrottled.message().into(),
                object_ref: None,
            }],
        )
        .await;
    let run = stack.run(&id).await;
    tenantops_aws::announce_completed(&stack.deps.events, stack.store(), &run).await;
    id
}

async fn deliveries(stack: &TestStack, hook: &str) -> Vec<Value> {
    let r = stack
        .call(
            ApiCall::get(format!("{}/{hook}/deliveries", hooks_path(stack)))
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap()
}

/// Asserts that the captured bus events of `detail_type` are there and match their documented
/// schema (`docs/events/{schema}.schema.json`).
fn assert_documented(captured: &[String], detail_type: &str, schema: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(format!("docs/events/{schema}.schema.json"));
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let events: Vec<Value> = captured
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["detail-type"] == detail_type)
        .collect();
    assert!(!events.is_empty(), "no {detail_type} event");
    for e in &events {
        let errors: Vec<String> = validator.iter_errors(e).map(|x| x.to_string()).collect();
        assert!(errors.is_empty(), "{detail_type}: {errors:?}\n{e}");
    }
}

async fn dead_letters(stack: &TestStack) -> Vec<String> {
    stack
        .captured(&stack.resources.webhook_dead_letter_queue_url)
        .await
}

#[tokio::test]
async fn a_failed_run_reaches_a_subscribed_receiver_signed_and_is_logged_delivered() {
    let stack = TestStack::new().await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let (url, rx) = receiver().await;
    let created = register(&stack, &api, &url, json!(["run.failed"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["webhook"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let hook = created.body["webhook"]["id"].as_str().unwrap().to_owned();

    let run = fail_a_run(&stack).await;
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::LOCAL);
    host.drain(&deps).await.unwrap();

    let got = rx.hooks();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        verified(&secret, &got[0]),
        "signature does not verify: {got:?}"
    );
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "run.failed");
    assert_eq!(body["data"]["run_id"], run.as_str());
    assert_eq!(body["data"]["failure_codes"], json!(["graph.throttled"]));
    assert_eq!(
        body["data"]["links"]["run"],
        format!("/v1/operations/{run}")
    );

    let log = deliveries(&stack, &hook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["id"], got[0].id.as_str());
    assert_eq!(log[0]["event_type"], "run.failed");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"][0]["status_code"], 204);

    // A partially succeeded run is no event this subscription named: nothing is sent.
    let partial = stack
        .start(json!({ "type": "directory_groups.sync" }))
        .await;
    stack
        .finish_with(&partial, Outcome::PartiallySucceeded, vec![])
        .await;
    let run = stack.run(&partial).await;
    tenantops_aws::announce_completed(&stack.deps.events, stack.store(), &run).await;
    host.drain(&deps).await.unwrap();
    assert_eq!(
        rx.hooks().len(),
        1,
        "run.partially_succeeded was not subscribed"
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_with_backoff_then_dead_lettered_and_logged_failed() {
    let stack = TestStack::new().await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let url = down_url().await;
    let created = register(&stack, &api, &url, json!(["run.failed"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let hook = created.body["webhook"]["id"].as_str().unwrap().to_owned();

    // The deployed schedule in seconds: 1 s, then 2 s each, none past 5 s after the first.
    let retries = RetrySchedule {
        first_delay_seconds: 1,
        max_delay_seconds: 2,
        window_seconds: 5,
    };
    fail_a_run(&stack).await;
    let (deps, host) = stack.notifier(retries, UrlPolicy::LOCAL);
    // Polled as the event-source mapping polls, until the delivery is dead-lettered (a guard
    // against a hang, not a timing assertion).
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    let mut letters = Vec::new();
    while letters.is_empty() && std::time::Instant::now() < give_up {
        host.invoke(&deps, Duration::from_secs(1)).await.unwrap();
        letters = dead_letters(&stack).await;
    }
    assert_eq!(letters.len(), 1, "one delivery dead-lettered");
    let letter: Value = serde_json::from_str(&letters[0]).unwrap();

    let log = deliveries(&stack, &hook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "failed");
    assert!(log[0]["next_attempt_at"].is_null());
    let attempts = log[0]["attempts"].as_array().unwrap();
    // How many fit in the window depends on when each ran; at least a retry did.
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(&letter["delivery"]["attempts"], &log[0]["attempts"]);
    let at: Vec<chrono::DateTime<chrono::Utc>> = attempts
        .iter()
        .map(|a| a["at"].as_str().unwrap().parse().unwrap())
        .collect();
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["number"], i + 1);
        assert_eq!(a["error"], "connection_failed");
        assert!(a["status_code"].is_null());
    }
    // Each wait at least the schedule's: 1 s, then 2 s.
    for (i, pair) in at.windows(2).enumerate() {
        let wait = if i == 0 { 1 } else { 2 };
        assert!(
            pair[1] - pair[0] >= chrono::Duration::seconds(wait),
            "{at:?}"
        );
    }
}

#[tokio::test]
async fn urls_reaching_internal_addresses_are_refused_at_registration_and_at_delivery() {
    let stack = TestStack::new().await;
    let deployed = stack.deps.clone();
    let local = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let before = stack.snapshot().await;
    for (api, url) in [
        (&deployed, "http://169.254.169.254/latest/meta-data/"),
        (&deployed, "https://169.254.169.254/"),
        (&deployed, "http://10.0.0.1/"),
        (&deployed, "https://[fd00::1]/"),
        (&deployed, "https://[::ffff:10.0.0.1]/"),
        (&deployed, "https://127.0.0.1/"),
        // A name that resolves to loopback, when loopback is not allowed.
        (&deployed, "https://localhost/hook"),
        (&local, "http://10.0.0.1/"),
        (&local, "https://192.168.0.10/"),
    ] {
        let r = register(&stack, api, url, json!(["run.failed"])).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "webhook.url_refused"),
            "{url}: {}",
            r.body
        );
    }
    for url in [
        "ftp://example.com/",
        "http://93.184.216.34/",
        "https://u:p@93.184.216.34/",
    ] {
        let r = register(&stack, &deployed, url, json!(["run.failed"])).await;
        assert_eq!((r.status, r.code()), (422, "webhook.url_invalid"), "{url}");
    }
    assert_eq!(stack.snapshot().await, before, "a refusal writes nothing");

    // Registered where loopback is allowed, refused by a notifier that does not allow it:
    // the address is judged again when delivering, and nothing is sent.
    let (url, rx) = receiver().await;
    let created = register(&stack, &local, &url, json!(["run.failed"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let hook = created.body["webhook"]["id"].as_str().unwrap().to_owned();
    fail_a_run(&stack).await;
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::PUBLIC);
    host.drain(&deps).await.unwrap();
    assert!(rx.hooks().is_empty());
    let log = deliveries(&stack, &hook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["attempts"][0]["error"], "address_refused");
    assert_eq!(log[0]["status"], "retrying");
}

#[tokio::test]
async fn only_owners_and_managers_manage_a_workspaces_own_subscriptions() {
    let stack = TestStack::new().await;
    let users = stack.users();
    let d = &stack.demo;
    // A public address literal: nothing to resolve, never delivered to here.
    let body = json!({ "url": "https://93.184.216.34/hook", "events": ["drift.detected"] });
    let create = || ApiCall::post(hooks_path(&stack), body.to_string());
    let mine = stack.call(create().by(&users.owner)).await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let mine = mine.body["webhook"]["id"].as_str().unwrap().to_owned();
    let managers = stack.call(create().by(&users.manager)).await;
    assert_eq!(managers.status, 201, "{}", managers.body);
    let theirs = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{}/webhooks", d.other_workspace_id),
                body.to_string(),
            )
            .by(&users.outsider),
        )
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let theirs = theirs.body["webhook"]["id"].as_str().unwrap().to_owned();

    let base = hooks_path(&stack);
    let calls = |id: &str| {
        vec![
            ApiCall::get(base.clone()),
            ApiCall::post(base.clone(), body.to_string()),
            ApiCall::get(format!("{base}/{id}")),
            ApiCall::get(format!("{base}/{id}/deliveries")),
            ApiCall::post(format!("{base}/{id}/test"), ""),
            ApiCall {
                method: "DELETE",
                ..ApiCall::get(format!("{base}/{id}"))
            },
        ]
    };
    for (user, status, code) in [
        (&users.outsider, 404, "workspace.not_found"),
        (&users.operator, 403, "auth.forbidden"),
        (&users.readonly, 403, "auth.forbidden"),
    ] {
        for call in calls(&mine) {
            let what = format!("{} {}", call.method, call.path);
            let r = stack.call(call.by(user)).await;
            assert_eq!((r.status, r.code()), (status, code), "{what} by {user}");
        }
    }
    // Another workspace's subscription is as missing as none.
    for call in calls(&theirs).into_iter().skip(2) {
        let what = format!("{} {}", call.method, call.path);
        let r = stack.call(call.by(&users.owner)).await;
        assert_eq!((r.status, r.code()), (404, "webhook.not_found"), "{what}");
    }
    let listed = stack
        .call(ApiCall::get(base.clone()).by(&users.manager))
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);

    let gone = stack
        .call(
            ApiCall {
                method: "DELETE",
                ..ApiCall::get(format!("{base}/{mine}"))
            }
            .by(&users.owner),
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let again = stack
        .call(ApiCall::get(format!("{base}/{mine}")).by(&users.owner))
        .await;
    assert_eq!((again.status, again.code()), (404, "webhook.not_found"));
    assert_eq!(stack.audit_entries("webhook.create").await.len(), 2);
    assert_eq!(stack.audit_entries("webhook.delete").await.len(), 1);
}

#[tokio::test]
async fn the_signing_secret_is_answered_once_and_reaches_nothing_but_secrets_manager() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,aws_smithy_runtime=info,aws_sdk_secretsmanager=info,aws_sdk_dynamodb=info,aws_sdk_sqs=info,aws_sdk_eventbridge=info,hyper=info,h2=info,rustls=info,reqwest=info",
        ))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = TestStack::new().await;
    let events = stack.capture_events().await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let (url, rx) = receiver().await;
    let created = register(&stack, &api, &url, json!(["run.failed", "drift.detected"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["webhook"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = created.body["webhook"]["id"].as_str().unwrap().to_owned();
    let (_, key) = secret.split_once('_').unwrap();

    let base = format!("{}/{hook}", hooks_path(&stack));
    let tested = stack
        .call(ApiCall::post(format!("{base}/test"), "").by(&stack.users().owner))
        .await;
    assert_eq!(tested.status, 202, "{}", tested.body);
    fail_a_run(&stack).await;
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::LOCAL);
    host.drain(&deps).await.unwrap();

    // The receiver can verify both deliveries with the secret it was given once.
    let got = rx.hooks();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|h| verified(&secret, h)));
    let types: Vec<String> = got
        .iter()
        .map(|h| {
            serde_json::from_str::<Value>(&h.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(types.contains(&"webhook.test".to_owned()) && types.contains(&"run.failed".to_owned()));

    // Secrets Manager holds it under the subscription's name.
    let record = stack
        .store()
        .webhook(stack.demo.workspace_id, hook.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let stored = stack
        .deps
        .secrets
        .read_webhook_secret(&record.secret_name)
        .await
        .unwrap();
    assert_eq!(stored.expose(), secret);

    // Nowhere else: the table, later answers, the audit log, the bus, the delivery log, the
    // deliveries themselves, the logs.
    let mut seen = vec![format!("{:?}", stack.snapshot().await)];
    for path in [
        hooks_path(&stack),
        base.clone(),
        format!("{base}/deliveries"),
    ] {
        let r = stack
            .call(ApiCall::get(path).by(&stack.users().owner))
            .await;
        assert_eq!(r.status, 200);
        seen.push(r.body.to_string());
    }
    seen.push(json!(stack.audit_entries("webhook.create").await).to_string());
    seen.push(json!(stack.audit_entries("webhook.test").await).to_string());
    let captured = stack.captured(&events).await;
    assert_documented(&captured, "Webhook Test", "webhook-test");
    seen.extend(captured);
    seen.extend(got.iter().map(|h| format!("{h:?}")));
    seen.push(logs.text());
    for text in &seen {
        assert!(
            !text.contains(&secret) && !text.contains(key),
            "the secret leaked: {text}"
        );
    }
}

/// Fails a run of `body`'s type and publishes its `Completed` event.
async fn fail(stack: &TestStack, body: Value) -> String {
    let id = stack.start(body).await;
    stack.finish_with(&id, Outcome::Failed, vec![]).await;
    let run = stack.run(&id).await;
    tenantops_aws::announce_completed(&stack.deps.events, stack.store(), &run).await;
    id
}

#[tokio::test]
async fn missed_slots_and_failed_connection_checks_reach_the_subscriptions_that_name_them() {
    let stack = TestStack::new().await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let (url, rx) = receiver().await;
    let created = register(
        &stack,
        &api,
        &url,
        json!(["schedule.slot_missed", "connection.verification_failed"]),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["webhook"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::LOCAL);

    // A failed connection check: connection.verification_failed (its run.failed is not
    // subscribed); a failed sync: nothing.
    let check = fail(&stack, json!({"type": "provider_connection.verify"})).await;
    fail(&stack, json!({"type": "inventory.sync"})).await;
    host.drain(&deps).await.unwrap();
    let got = rx.hooks();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "connection.verification_failed");
    assert_eq!(body["data"]["run_id"], check.as_str());

    // An hourly schedule whose scheduler was down five hours: five slots missed, announced by
    // the tick that recorded them, once.
    let d = &stack.demo;
    let schedules = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        d.workspace_id, d.tenant_id
    );
    let r = stack
        .call(
            ApiCall::post(
                schedules,
                json!({"cadence": {"kind": "hourly", "minute": 15}, "retention": {"keep_last": 3}})
                    .to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let schedule = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let first: chrono::DateTime<chrono::Utc> = r.body["schedule"]["next_fire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let scheduler = tenantops_scheduler::Deps {
        store: stack.store().clone(),
    };
    let bus = stack.capture_events().await;
    let tick = tenantops_scheduler::ScheduledEvent::at(
        first + chrono::Duration::hours(5) + chrono::Duration::minutes(10),
    );
    for _ in 0..2 {
        let report = tenantops_scheduler::handle_announcing(&tick, &scheduler, &stack.deps.events)
            .await
            .unwrap();
        assert!(report.fired <= 1);
    }
    assert_documented(
        &stack.captured(&bus).await,
        "Schedule SlotMissed",
        "schedule-slot-missed",
    );
    host.drain(&deps).await.unwrap();
    let got = rx.hooks();
    assert_eq!(
        got.len(),
        2,
        "one announcement for the repeated tick: {got:?}"
    );
    assert!(verified(&secret, &got[1]));
    let body: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(body["type"], "schedule.slot_missed");
    assert_eq!(body["data"]["schedule_id"], schedule.as_str());
    assert_eq!(body["data"]["tenant_id"], d.tenant_id.to_string());
    let slots = body["data"]["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 5, "{slots:?}");
    assert_eq!(slots[0], tenantops_core::time::format(first));
    assert_eq!(
        body["data"]["links"]["schedule"],
        format!(
            "/v1/workspaces/{}/tenants/{}/backup-schedules/{schedule}",
            d.workspace_id, d.tenant_id
        )
    );
}

#[tokio::test]
async fn a_drift_check_that_finds_changes_is_announced_with_its_counts_and_report_and_one_that_finds_none_is_not()
 {
    const CONFIGS: &str = "deviceManagement/deviceConfigurations";
    let (stack, worker) = crate::restore::setup(&[("groups", 2), (CONFIGS, 3)]).await;
    crate::restore::backup(&stack, &worker, &["deviceConfigurations"]).await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let (url, rx) = receiver().await;
    let created = register(&stack, &api, &url, json!(["drift.detected"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["webhook"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::LOCAL);

    let check = || json!({"type": "drift.check", "params": {"types": ["deviceConfigurations"]}});
    // Unchanged: a report with no change announces nothing.
    let quiet = stack.start(check()).await;
    worker.drain().await;
    assert_eq!(stack.run(&quiet).await.outcome, Outcome::Succeeded);
    host.drain(&deps).await.unwrap();
    assert!(rx.hooks().is_empty(), "{:?}", rx.hooks());

    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects[0]["description"] = json!("changed behind the backup's back");
    });
    let drifted = stack.start(check()).await;
    worker.drain().await;
    assert_eq!(stack.run(&drifted).await.outcome, Outcome::Succeeded);
    host.drain(&deps).await.unwrap();
    let got = rx.hooks();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(verified(&secret, &got[0]));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "drift.detected");
    assert_eq!(
        body["data"]["counts"],
        json!({"added": 0, "removed": 0, "changed": 1})
    );
    assert_eq!(body["data"]["report_id"], drifted.as_str());
    assert_eq!(
        body["data"]["links"]["report"],
        format!(
            "/v1/workspaces/{}/tenants/{}/drift/{drifted}",
            stack.demo.workspace_id, stack.demo.tenant_id
        )
    );
    // What the link names is there for its reader.
    let report = stack
        .call(
            ApiCall::get(body["data"]["links"]["report"].as_str().unwrap())
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
}

#[tokio::test]
async fn a_workspace_holds_at_most_twenty_subscriptions_however_many_creates_race() {
    let stack = TestStack::new().await;
    let body = json!({ "url": "https://93.184.216.34/hook", "events": ["run.failed"] });
    let creates = (0..25).map(|_| {
        stack.call(ApiCall::post(hooks_path(&stack), body.to_string()).by(&stack.users().owner))
    });
    let replies = futures::future::join_all(creates).await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 20, "{replies:?}");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (422, "request.invalid"), "{}", r.body);
    }
    let listed = stack
        .call(ApiCall::get(hooks_path(&stack)).by(&stack.users().owner))
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 20);
    // A deletion frees a place.
    let id = created[0].body["webhook"]["id"].as_str().unwrap();
    let gone = stack
        .call(
            ApiCall {
                method: "DELETE",
                ..ApiCall::get(format!("{}/{id}", hooks_path(&stack)))
            }
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(gone.status, 204);
    let again = stack
        .call(ApiCall::post(hooks_path(&stack), body.to_string()).by(&stack.users().owner))
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test]
async fn a_redirect_is_never_followed_and_an_error_status_is_retried() {
    let stack = TestStack::new().await;
    let api = stack.with_webhook_urls(UrlPolicy::LOCAL);
    let (url, rx) = receiver().await;
    let mut hooks = Vec::new();
    for path in ["/moved", "/broken"] {
        let created = register(
            &stack,
            &api,
            &url.replace("/hook", path),
            json!(["run.failed"]),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        hooks.push(created.body["webhook"]["id"].as_str().unwrap().to_owned());
    }
    fail_a_run(&stack).await;
    let (deps, host) = stack.notifier(RetrySchedule::default(), UrlPolicy::LOCAL);
    host.drain(&deps).await.unwrap();
    // The redirect's target was never called.
    assert!(rx.hooks().is_empty(), "{:?}", rx.hooks());
    for (hook, (code, error)) in hooks
        .iter()
        .zip([(307, "redirect_not_followed"), (500, "http_status")])
    {
        let log = deliveries(&stack, hook).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["status"], "retrying");
        assert!(log[0]["next_attempt_at"].is_string());
        let attempt = &log[0]["attempts"][0];
        assert_eq!(
            (&attempt["status_code"], &attempt["error"]),
            (&json!(code), &json!(error))
        );
    }
}
