//! The worker against graph-sim: runs started through the API end with honest outcomes.

use std::time::Duration;

use serde_json::json;
use tenantops_core::{Outcome, RunStatus, Transition};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::{DEMO_COLLECTIONS, Fault};
use tenantops_tests::{LogBuffer, TestStack};

/// Quick retries for tests; long waits still hand back.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

fn demo_counts(n: usize) -> Vec<(&'static str, usize)> {
    DEMO_COLLECTIONS.iter().map(|p| (*p, n)).collect()
}

#[tokio::test]
async fn each_sync_type_and_the_connection_check_complete_against_graph_sim() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&demo_counts(7), policy()).await;
    let inventory = stack.start(json!({"type": "inventory.sync"})).await;
    let groups = stack.start(json!({"type": "directory_groups.sync"})).await;
    let roles = stack
        .start(json!({"type": "directory_role_definitions.sync"}))
        .await;
    let verify = stack
        .start(json!({"type": "provider_connection.verify"}))
        .await;
    worker.drain().await;

    let inv = stack.run(&inventory).await;
    assert_eq!(
        (inv.status, inv.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{:?}",
        inv.failures
    );
    // Every inventory type of the registry, 7 objects each (groups and directory roles have their own syncs).
    let types = tenantops_graph::registry::ObjectType::inventory().count() as u64;
    assert_eq!(inv.counters.total, 7 * types);
    assert_eq!(inv.counters.processed, inv.counters.total);
    let stored = stack
        .store()
        .inventory(
            stack.demo.workspace_id,
            stack.demo.tenant_id,
            "deviceConfigurations",
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 7);
    assert!(
        stored
            .iter()
            .all(|i| !i.name.is_empty() && i.meta.get("id").is_some())
    );

    let g = stack.run(&groups).await;
    assert_eq!(g.outcome, Outcome::Succeeded, "{:?}", g.failures);
    assert_eq!(g.counters.processed, 7);
    assert_eq!(g.result.as_ref().unwrap()["mode"], "full");
    let r = stack.run(&roles).await;
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.failures);
    assert_eq!(
        r.counters.processed, 14,
        "7 Entra and 7 Intune role definitions"
    );
    let v = stack.run(&verify).await;
    assert_eq!(v.outcome, Outcome::Succeeded, "{:?}", v.failures);
    let checks = v.result.as_ref().unwrap()["checks"]
        .as_array()
        .unwrap()
        .clone();
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
    assert!(worker.sim.requests_inside_retry_after().is_empty());

    // Each run left the initiator a notification, and the identity is free again.
    let notes = stack
        .store()
        .notifications(&stack.users().owner, 50)
        .await
        .unwrap();
    assert_eq!(notes.iter().filter(|n| n.status == "completed").count(), 4);
    let again = stack.start(json!({"type": "inventory.sync"})).await;
    assert_ne!(again, inventory);
}

#[tokio::test]
async fn a_second_groups_sync_is_a_delta_and_removals_delete() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[("groups", 12)], policy()).await;
    stack.start(json!({"type": "directory_groups.sync"})).await;
    worker.drain().await;
    let removed_id = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let groups = t.collections.get_mut("groups").unwrap();
        let gone = groups.objects.remove(0);
        gone["id"].as_str().unwrap().to_owned()
    });
    let second = stack.start(json!({"type": "directory_groups.sync"})).await;
    worker.drain().await;
    let run = stack.run(&second).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(run.result.as_ref().unwrap()["mode"], "delta");
    let cached = stack
        .store()
        .directory(tenantops_aws::keys::groups_of(
            stack.demo.workspace_id,
            stack.demo.tenant_id,
        ))
        .await
        .unwrap();
    assert_eq!(cached.len(), 11);
    assert!(cached.iter().all(|g| g.id != removed_id));

    // An expired delta link falls back to a full sync.
    worker.sim.expire_delta_tokens();
    let third = stack.start(json!({"type": "directory_groups.sync"})).await;
    worker.drain().await;
    let run = stack.run(&third).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(run.result.as_ref().unwrap()["mode"], "full");
}

#[tokio::test]
async fn two_thousand_settings_catalog_policies_sync_completely() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(
            &[("deviceManagement/configurationPolicies", 2000)],
            policy(),
        )
        .await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["configurationPolicies"]}}))
        .await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(run.counters.total, 2000);
    assert_eq!(run.counters.processed, run.counters.total);
    let pages = worker
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("configurationPolicies"))
        .count();
    assert!(
        pages >= 2000 / 25,
        "settings-catalog lists page by 25: {pages} pages"
    );
}

#[tokio::test]
async fn throttled_requests_wait_out_retry_after_and_the_run_succeeds() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 30)], policy())
        .await;
    worker.sim.inject(Fault::Throttle {
        path_prefix: "deviceManagement/deviceConfigurations".into(),
        times: 2,
        retry_after_secs: Some(1),
    });
    worker.sim.inject(Fault::Throttle {
        path_prefix: "deviceManagement/deviceConfigurations".into(),
        times: 2,
        retry_after_secs: None,
    });
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(run.counters.processed, 30);
    let throttled = worker
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(throttled, 4);
    assert!(
        worker.sim.requests_inside_retry_after().is_empty(),
        "{:?}",
        worker.sim.requests_inside_retry_after()
    );
}

#[tokio::test]
async fn a_long_retry_after_hands_the_message_back_and_the_run_completes_later() {
    let stack = TestStack::new().await;
    let fast = RetryPolicy {
        handback_after: Duration::from_secs(1),
        ..policy()
    };
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 5)], fast)
        .await;
    worker.sim.inject(Fault::Throttle {
        path_prefix: "deviceManagement/deviceConfigurations".into(),
        times: 1,
        retry_after_secs: Some(3),
    });
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.status, RunStatus::Running, "handed back, not failed");
    assert!(
        run.lease_expires_at
            .is_some_and(|l| l <= chrono::Utc::now()),
        "the lease was given up"
    );
    assert_eq!(
        worker.drain().await,
        0,
        "the message is invisible until the Retry-After has passed"
    );

    tokio::time::sleep(Duration::from_millis(3300)).await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{:?}",
        run.failures
    );
    assert_eq!(run.attempts, 2);
    assert!(worker.sim.requests_inside_retry_after().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_delivered_twice_concurrently_does_the_work_once() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 10)], policy())
        .await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    // A duplicate delivery, as SQS's at-least-once may produce.
    stack.dispatcher().send(id.parse().unwrap()).await.unwrap();
    let (a, b) = tokio::join!(
        tenantops_local::worker_host::poll_once(&worker.deps, Duration::from_secs(0)),
        tenantops_local::worker_host::poll_once(&worker.deps, Duration::from_secs(0)),
    );
    a.unwrap();
    b.unwrap();
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.outcome, Outcome::Succeeded);
    assert_eq!(run.attempts, 1, "claimed once");
    let lists: Vec<_> = worker
        .sim
        .requests()
        .into_iter()
        // Answered first pages: a retry after a failed request is not work done twice, and
        // graph-sim may answer a page empty with a nextLink, which is one listing too.
        .filter(|r| {
            r.path.ends_with("deviceConfigurations")
                && r.status == 200
                && !r.query.contains("skiptoken")
        })
        .collect();
    assert_eq!(lists.len(), 1, "listed once: {lists:?}");
}

#[tokio::test]
async fn a_run_whose_worker_died_is_reclaimed_after_its_lease_and_completes() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 3)], policy())
        .await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    // A worker claims it with a short lease and dies. The lease outlasts the first drain
    // even on a loaded machine (a 500 ms lease once ran out before it).
    let run = stack.run(&id).await;
    let lease = Duration::from_secs(3);
    let lease_ends = tokio::time::Instant::now() + lease;
    let claim = Transition::Claim {
        now: chrono::Utc::now(),
        lease: chrono::Duration::from_std(lease).unwrap(),
    };
    stack.store().transition(&run, &claim).await.unwrap();
    // It got halfway: its counters moved before it died.
    let half = tenantops_core::Counters {
        total: 2,
        processed: 2,
        succeeded: 2,
        ..Default::default()
    };
    stack
        .store()
        .transition(&run, &Transition::Progress { delta: half })
        .await
        .unwrap();
    worker.drain().await;
    assert_eq!(
        stack.run(&id).await.status,
        RunStatus::Running,
        "the live lease keeps others off"
    );

    // SQS redelivers after the visibility timeout; here, once the lease is over.
    tokio::time::sleep_until(lease_ends + Duration::from_millis(100)).await;
    stack.dispatcher().send(id.parse().unwrap()).await.unwrap();
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded)
    );
    assert_eq!(run.attempts, 2);
    assert_eq!(
        run.counters.processed, 3,
        "the dead attempt's counters are not counted twice"
    );
}

#[tokio::test]
async fn one_forbidden_type_makes_the_sync_partially_succeed_and_names_the_type() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(
            &[
                ("deviceManagement/deviceConfigurations", 4),
                ("deviceManagement/deviceCompliancePolicies", 4),
            ],
            policy(),
        )
        .await;
    worker.sim.inject(Fault::Forbidden {
        path_prefix: "deviceManagement/deviceCompliancePolicies".into(),
    });
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations", "deviceCompliancePolicies", "notARegisteredType"]}}))
        .await;
    worker.drain().await;
    let run = stack.run(&id).await;
    assert_eq!(run.outcome, Outcome::PartiallySucceeded);
    let codes: Vec<(String, Option<String>)> = run
        .failures
        .iter()
        .map(|f| (f.code.to_string(), f.object_ref.clone()))
        .collect();
    assert!(
        codes.contains(&(
            "graph.permission_denied".into(),
            Some("deviceCompliancePolicies".into())
        )),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(
            "graph.unsupported_type".into(),
            Some("notARegisteredType".into())
        )),
        "{codes:?}"
    );
    assert!(
        !worker
            .sim
            .requests()
            .iter()
            .any(|r| r.path.contains("notARegisteredType")),
        "no call for an unknown type"
    );
}

#[tokio::test]
async fn planted_secrets_in_graph_and_sts_errors_reach_no_run_log_or_event() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,aws_smithy_runtime=info,aws_sdk_dynamodb=info,aws_sdk_sqs=info,aws_sdk_eventbridge=info,aws_sdk_secretsmanager=info,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info"))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 3)], policy())
        .await;
    let secret = format!("PLANTED-{}", ulid::Ulid::new());
    let bearer = format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{}.c2ln", ulid::Ulid::new());
    let graph_body = json!({"error": {"code": "BadRequest", "message": format!("client_secret={secret} Authorization: Bearer {bearer}"), "innerError": {}}});
    worker.sim.inject(Fault::ErrorBody {
        path_prefix: "deviceManagement/deviceConfigurations".into(),
        times: 10,
        status: 400,
        body: graph_body,
    });
    let sync = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;

    worker.sim.inject(Fault::TokenError {
        tenant_id: worker.entra_tenant_id.clone(),
        status: 401,
        body: json!({"error": "invalid_client", "error_description": format!("AADSTS7000215: Invalid client secret provided: {secret} {bearer}"), "error_codes": [7000215]}),
    });
    // A fresh client so no cached token hides the STS error.
    let worker2 = stack.worker(&[], policy()).await;
    worker2.sim.inject(Fault::TokenError {
        tenant_id: worker2.entra_tenant_id.clone(),
        status: 401,
        body: json!({"error": "invalid_client", "error_description": format!("AADSTS7000215: {secret} {bearer}"), "error_codes": [7000215]}),
    });
    let verify = stack
        .start(json!({"type": "provider_connection.verify"}))
        .await;
    worker2.drain().await;

    let sync_run = stack.run(&sync).await;
    assert_eq!(sync_run.outcome, Outcome::Failed);
    let verify_run = stack.run(&verify).await;
    assert_eq!(
        verify_run.failures[0].code.to_string(),
        "provider.credentials_invalid"
    );

    let runs = serde_json::to_string(&[&sync_run, &verify_run]).unwrap();
    let table: Vec<String> = stack.snapshot().await.into_values().collect();
    let events = stack.captured(&capture).await;
    assert!(
        events.len() >= 4,
        "Started and Completed for both runs: {events:?}"
    );
    let log_text = logs.text();
    assert!(
        log_text.contains("run finished"),
        "the capture sees the worker's logs"
    );
    for (what, text) in [
        ("runs", runs),
        ("table", table.join("\n")),
        ("events", events.join("\n")),
        ("logs", log_text),
    ] {
        assert!(
            !text.contains(&secret),
            "the planted secret reached the {what}"
        );
        assert!(
            !text.contains(&bearer),
            "the planted bearer token reached the {what}"
        );
    }
}

#[tokio::test]
async fn what_workers_learned_is_readable_from_the_table_by_members_only() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(
            &[
                ("deviceManagement/deviceConfigurations", 3),
                ("groups", 4),
                ("roleManagement/directory/roleDefinitions", 2),
            ],
            policy(),
        )
        .await;
    for ty in [
        "inventory.sync",
        "directory_groups.sync",
        "directory_role_definitions.sync",
    ] {
        stack.start(json!({"type": ty, "params": if ty == "inventory.sync" { json!({"types": ["deviceConfigurations"]}) } else { json!({}) }})).await;
    }
    worker.drain().await;
    worker.sim.clear_requests();
    let d = &stack.demo;
    let tenant = format!("/v1/workspaces/{}/tenants/{}", d.workspace_id, d.tenant_id);
    let get = |path: String, who| stack.call(tenantops_tests::ApiCall::get(path).by(who));
    let (owner, readonly, outsider) = (
        &stack.users().owner,
        &stack.users().readonly,
        &stack.users().outsider,
    );

    let inv = get(
        format!("{tenant}/inventory?type=deviceConfigurations&limit=2"),
        readonly,
    )
    .await;
    assert_eq!(inv.status, 200, "{}", inv.body);
    assert_eq!(inv.body["items"].as_array().unwrap().len(), 2);
    let next = inv.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = get(
        format!("{tenant}/inventory?type=deviceConfigurations&limit=2&cursor={next}"),
        readonly,
    )
    .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    let first_name = inv.body["items"][0]["name"].as_str().unwrap().to_owned();

    let all_groups = get(format!("{tenant}/directory/groups"), owner).await;
    let some_group = all_groups.body["items"][0]["display_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix: String = some_group
        .chars()
        .take(3)
        .collect::<String>()
        .to_uppercase();
    let found = get(
        format!(
            "{tenant}/directory/groups?search={}",
            prefix.replace(' ', "%20")
        ),
        owner,
    )
    .await;
    let names: Vec<&str> = found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["display_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&some_group.as_str()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.to_lowercase().starts_with(&prefix.to_lowercase()))
    );

    let roles = get(format!("{tenant}/directory/role-definitions"), owner).await;
    assert_eq!(roles.body["items"].as_array().unwrap().len(), 2);

    let mine = get("/v1/me/notifications".into(), owner).await;
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["status"] == "completed")
    );
    let theirs = get("/v1/me/notifications".into(), outsider).await;
    assert!(theirs.body["items"].as_array().unwrap().is_empty());

    for path in [
        format!("{tenant}/inventory?type=deviceConfigurations"),
        format!("{tenant}/directory/groups"),
        format!("{tenant}/directory/role-definitions"),
    ] {
        assert_eq!(get(path.clone(), outsider).await.status, 404, "{path}");
    }
    let foreign = format!(
        "/v1/workspaces/{}/tenants/{}/inventory?type=deviceConfigurations",
        d.workspace_id, d.other_tenant_id
    );
    assert_eq!(get(foreign, owner).await.status, 404);
    let bad = get(format!("{tenant}/inventory"), owner).await;
    assert_eq!((bad.status, bad.code()), (400, "query.invalid"));
    assert!(!first_name.is_empty());
    assert!(worker.sim.requests().is_empty(), "reads never call Graph");
}

#[tokio::test]
async fn every_new_run_reaches_the_bus_as_queued_through_the_table_stream() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    let again = stack.start(json!({"type": "inventory.sync"})).await;
    assert_eq!(again, id, "a dedupe hit creates no run, so no event");
    let mut pipe = tenantops_local::run_pipe::RunPipe::new(
        &stack.sdk,
        &stack.resources.table_name,
        tenantops_aws::events::LifecycleEvents::from_sdk(
            &stack.sdk,
            &stack.resources.event_bus_name,
        ),
        true,
    )
    .await
    .unwrap();
    assert_eq!(pipe.poll_once().await.unwrap(), 1);
    assert_eq!(pipe.poll_once().await.unwrap(), 0, "each record once");
    let events: Vec<serde_json::Value> = stack
        .captured(&capture)
        .await
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail-type"], "OperationRun Queued");
    assert_eq!(events[0]["detail"]["run_id"], id.as_str());
    assert_eq!(events[0]["detail"]["status"], "queued");
}
