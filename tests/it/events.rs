//! The run lifecycle events a subscriber sees, held to their documented JSON Schemas
//! (`docs/events/*.schema.json`): every event the code publishes validates, and the schemas'
//! closed lists (operation types, the pipe's fields) are the code's.

use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tenantops_core::{OperationType, Transition};
use tenantops_tests::TestStack;

const STAGES: [&str; 3] = ["Queued", "Started", "Completed"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn schema(stage: &str) -> Value {
    let path = repo_root().join(format!(
        "docs/events/operation-run-{}.schema.json",
        stage.to_lowercase()
    ));
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(stage: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema(stage)).unwrap()
}

#[tokio::test]
async fn every_published_event_matches_its_documented_schema() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 3)], policy())
        .await;

    // A run that succeeds (Started, Completed), one the reaper fails (a failure code) and one
    // cancelled while queued (its Completed comes from the API), each Queued through the
    // table stream's pipe.
    let synced = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;
    let stale = stack.start(json!({"type": "directory_groups.sync"})).await;
    let run = stack.run(&stale).await;
    let now = Utc::now();
    stack
        .store()
        .transition_as(
            &run,
            Some("worker-that-dies"),
            &Transition::Claim {
                now,
                lease: Duration::seconds(1),
            },
        )
        .await
        .unwrap();
    // Its message lost and no re-dispatch allowed: the reaper's next sighting fails it.
    stack.lose_work_messages().await;
    let mut reaper = stack.reaper();
    reaper.thresholds.max_redispatches = 0;
    let tick = tenantops_reaper::tick(now + Duration::days(1), &reaper).await;
    assert_eq!(tick.failed_stale, 1, "{tick:?}");
    let cancelled = stack
        .start(json!({"type": "directory_role_definitions.sync"}))
        .await;
    let r = stack
        .call(
            tenantops_tests::ApiCall::post(format!("/v1/operations/{cancelled}/cancel"), "")
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
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
    assert_eq!(pipe.poll_once().await.unwrap(), 3);

    let events: Vec<Value> = stack
        .captured(&capture)
        .await
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let mut seen = Vec::new();
    for event in &events {
        let stage = event["detail-type"]
            .as_str()
            .and_then(|t| t.strip_prefix("OperationRun "))
            .unwrap_or_else(|| panic!("an event of no documented type: {event}"));
        let errors: Vec<String> = validator(stage)
            .iter_errors(event)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{event}\n{errors:#?}");
        seen.push((
            stage.to_owned(),
            event["detail"]["run_id"].as_str().unwrap().to_owned(),
            event["detail"]["outcome"].as_str().unwrap().to_owned(),
        ));
    }
    for (stage, run, outcome) in [
        ("Queued", &synced, "pending"),
        ("Started", &synced, "pending"),
        ("Completed", &synced, "succeeded"),
        ("Queued", &stale, "pending"),
        ("Completed", &stale, "failed"),
        ("Queued", &cancelled, "pending"),
        ("Completed", &cancelled, "cancelled"),
    ] {
        assert!(
            seen.contains(&(stage.to_owned(), run.clone(), outcome.to_owned())),
            "no {stage} event of {run} with outcome {outcome}: {seen:?}"
        );
    }
    let failed = events
        .iter()
        .find(|e| e["detail"]["run_id"] == stale.as_str() && e["detail"]["outcome"] == "failed")
        .unwrap();
    assert_eq!(failed["detail"]["failure_codes"], json!(["run.stale"]));
}

#[test]
fn the_schemas_name_every_operation_type_and_nothing_else() {
    let types: Vec<&str> = OperationType::ALL.iter().map(|t| t.as_str()).collect();
    for stage in STAGES {
        let s = schema(stage);
        let listed: Vec<&str> = s["properties"]["detail"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            listed, types,
            "{stage}: the operation types, in registry order"
        );
        assert_eq!(
            s["properties"]["detail-type"]["const"],
            format!("OperationRun {stage}")
        );
        assert_eq!(
            s["properties"]["source"]["const"],
            tenantops_aws::events::SOURCE
        );
    }
}

/// In AWS the Queued detail is rendered by the template's pipe, not by the code: its input
/// template must have exactly the documented fields.
#[test]
fn the_pipes_queued_detail_has_exactly_the_documented_fields() {
    let text = std::fs::read_to_string(repo_root().join("infra/template.yaml")).unwrap();
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let input =
        template["Resources"]["RunQueuedPipe"]["Properties"]["TargetParameters"]["InputTemplate"]
            .as_str()
            .unwrap();
    // The placeholders are inside strings, so the rendered template parses as JSON as is.
    let rendered: Value = serde_json::from_str(input).unwrap();
    let mut fields: Vec<&String> = rendered.as_object().unwrap().keys().collect();
    fields.sort();
    let queued = schema("Queued");
    let mut documented: Vec<&String> = queued["properties"]["detail"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    documented.sort();
    assert_eq!(fields, documented);
}

fn policy() -> tenantops_graph::throttle::RetryPolicy {
    tenantops_graph::throttle::RetryPolicy {
        max_attempts: 6,
        base: std::time::Duration::from_millis(50),
        cap: std::time::Duration::from_secs(2),
        handback_after: std::time::Duration::from_secs(5),
    }
}
