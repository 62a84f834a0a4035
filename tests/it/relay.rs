//! The relay: a start's audit entry and notification follow from the table's stream, once,
//! however often the stream delivers the run; the Lambda handler reads the stream event AWS
//! sends and reports what it could not relay.

use aws_lambda_events::dynamodb::Event;
use serde_json::json;
use tenantops_aws::AuditQuery;
use tenantops_aws::starts::START_ACTION;
use tenantops_core::Run;
use tenantops_tests::TestStack;

async fn start_audits(stack: &TestStack) -> Vec<tenantops_aws::AuditEntry> {
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: Some(START_ACTION.into()),
            tenant: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    entries
}

async fn queued_notes(stack: &TestStack, run: &Run) -> usize {
    stack
        .store()
        .notifications(&stack.users().owner, 100)
        .await
        .unwrap()
        .iter()
        .filter(|n| n.run_id == run.id && n.status == "queued")
        .count()
}

/// Messages in the work queue, counted without settling the relay.
async fn waiting(stack: &TestStack) -> usize {
    let out = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.resources.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Starts a run in-process (no gateway, so nothing settles the relay); returns it.
async fn start_unrelayed(stack: &TestStack, body: serde_json::Value) -> Run {
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let (status, reply) = tenantops_local::gateway::invoke(
        &stack.deps,
        "POST",
        &path,
        stack.users().owner.as_str(),
        Some(body),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{reply}");
    let id: tenantops_core::RunId = reply["run"]["id"].as_str().unwrap().parse().unwrap();
    stack.store().get_run(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_starts_audit_entry_notification_and_message_follow_from_the_stream_once() {
    let stack = TestStack::new().await;
    let paused = stack.pause_relay().await;
    let run = start_unrelayed(&stack, json!({"type": "directory_groups.sync"})).await;
    let id = run.id.to_string();
    // Not in the start's transaction: nothing until the relay has read the stream.
    assert!(start_audits(&stack).await.is_empty());
    assert_eq!(queued_notes(&stack, &run).await, 0);
    drop(paused);

    stack.settle().await;
    assert_eq!(stack.queued_messages().await, 1);
    let entries = start_audits(&stack).await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.id, run.id.ulid());
    assert_eq!(entry.actor, stack.users().owner.as_str());
    assert_eq!(entry.target, id);
    assert_eq!(entry.at, run.created_at);
    assert_eq!(
        entry.after.as_ref().unwrap()["type"],
        "directory_groups.sync"
    );
    assert_eq!(queued_notes(&stack, &run).await, 1);

    // A redelivered record (a retried batch) rewrites the same items, and its second
    // message of the same generation starts nothing twice.
    let deps = tenantops_relay::Deps {
        store: stack.store().clone(),
        dispatcher: stack.dispatcher(),
    };
    tenantops_relay::relay(std::slice::from_ref(&run), &deps)
        .await
        .unwrap();
    assert_eq!(start_audits(&stack).await, entries);
    assert_eq!(queued_notes(&stack, &run).await, 1);
    let worker = stack
        .worker(
            &[("groups", 2)],
            tenantops_graph::throttle::RetryPolicy::default(),
        )
        .await;
    worker.drain().await;
    let done = stack.run(&id).await;
    assert_eq!(
        (done.outcome, done.attempts),
        (tenantops_core::Outcome::Succeeded, 1)
    );
}

/// The run's item as a stream record's `NewImage` in the event Lambda delivers.
fn stream_event(images: Vec<serde_json::Value>) -> Event {
    let records: Vec<_> = images
        .into_iter()
        .enumerate()
        .map(|(i, image)| {
            json!({
                "eventID": format!("e{i}"),
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "Keys": {"PK": image["PK"].clone(), "SK": image["SK"].clone()},
                    "NewImage": image,
                    "SequenceNumber": format!("{}", 100 + i),
                    "SizeBytes": 1,
                    "StreamViewType": "NEW_IMAGE",
                },
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

async fn run_image(stack: &TestStack, run: &Run) -> serde_json::Value {
    let key = tenantops_aws::keys::run(run.id);
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.resources.table_name)
        .set_key(Some(key.to_item()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    serde_json::to_value(serde_dynamo::Item::from(item)).unwrap()
}

#[tokio::test]
async fn the_handler_relays_a_stream_batch_and_retries_from_a_record_it_cannot_map() {
    let stack = TestStack::new().await;
    // The stack's own relay stays paused: only the handler relays here.
    let _paused = stack.pause_relay().await;
    let first = start_unrelayed(&stack, json!({"type": "inventory.sync"})).await;
    let second = start_unrelayed(&stack, json!({"type": "directory_groups.sync"})).await;
    let deps = tenantops_relay::Deps {
        store: stack.store().clone(),
        dispatcher: stack.dispatcher(),
    };

    let mut broken = run_image(&stack, &second).await;
    broken["status"] = json!({"S": "no-such-status"});
    let images = vec![run_image(&stack, &first).await, broken];
    let out = tenantops_relay::handle(stream_event(images), &deps).await;
    // The first is relayed; the batch is retried from the record that does not map.
    let failed: Vec<_> = out
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [Some("101".to_owned())]);
    let entries = start_audits(&stack).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, first.id.to_string());
    assert_eq!(waiting(&stack).await, 1, "the first run is dispatched");

    let images = vec![run_image(&stack, &second).await];
    let out = tenantops_relay::handle(stream_event(images), &deps).await;
    assert!(out.batch_item_failures.is_empty());
    assert_eq!(start_audits(&stack).await.len(), 2);
    assert_eq!(queued_notes(&stack, &second).await, 1);
    assert_eq!(waiting(&stack).await, 2);
}
