//! A 1,000-tenant batch (issue 19): the API request that creates it (wall time, DynamoDB
//! calls), then the relay as the stream delivers the batch and its children (the children's
//! starts, then their audit entries and work messages, 100 records an invocation): the time
//! until every child is dispatched, and the DynamoDB and SQS calls per child, counted by SDK
//! interceptors on the relay's own clients.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};
use tenantops_aws::{AuditEntry, Dispatcher, Store, TenantRecord, TenantStatus};
use tenantops_core::TenantId;
use tenantops_local::relay_host::RelayHost;
use tenantops_tests::{ApiCall, CallLog, TestStack};

/// Tenants the batch targets: the most one batch may.
pub const TENANTS: usize = tenantops_core::batch::MAX_TENANTS;

fn by_operation(calls: Vec<String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c).or_insert(0) += 1;
    }
    out
}

/// Adds `n` active tenants to the demo workspace straight through the store (what is
/// measured is the batch, not onboarding).
async fn add_tenants(stack: &TestStack, n: usize) -> anyhow::Result<()> {
    let ws = stack.demo.workspace_id;
    let owner = stack.users().owner.to_string();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let owner = owner.clone();
            async move {
                let now = chrono::Utc::now();
                let tenant = TenantRecord {
                    tenant_id: TenantId::new(),
                    workspace_id: ws,
                    entra_tenant_id: ulid::Ulid::new().to_string().to_lowercase(),
                    display_name: format!("Customer {i}"),
                    status: TenantStatus::Active,
                    created_at: now,
                    tags: Vec::new(),
                };
                let audit = AuditEntry {
                    id: ulid::Ulid::new(),
                    workspace_id: ws,
                    tenant_id: Some(tenant.tenant_id),
                    actor: owner,
                    action: "tenant.create".into(),
                    target: tenant.tenant_id.to_string(),
                    before: None,
                    after: None,
                    at: now,
                };
                stack
                    .store()
                    .create_tenant(&tenant, None, &audit)
                    .await
                    .map_err(|e| anyhow::anyhow!("adding a tenant: {e}"))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn batch_1000() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let ws = stack.demo.workspace_id;
    add_tenants(&stack, TENANTS - 1).await?;
    // The stack's own relay is held: the measured relay below does all of the work.
    let held = stack.pause_relay().await;
    let (dynamodb_log, sqs_log) = (CallLog::default(), CallLog::default());
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
            .interceptor(dynamodb_log.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.sdk)
            .interceptor(sqs_log.clone())
            .build(),
    );
    let table = &stack.resources.table_name;
    let deps = tenantops_relay::Deps {
        store: Store::new(dynamodb, table),
        dispatcher: Dispatcher::new(sqs, &stack.resources.queue_url),
    };
    // As a mapping created now: it reads what comes after this first poll.
    let mut relay = RelayHost::new(&stack.sdk, table, false).await?;
    relay.poll_once(&deps).await?;
    dynamodb_log.take();
    sqs_log.take();

    stack.dynamodb_calls.take();
    let started = Instant::now();
    let r = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{ws}/batches"),
                json!({"type": "backup_schedule.run_now", "tenants": "all"}).to_string(),
            )
            .by(&stack.users().owner)
            .header("Idempotency-Key", "bench-nightly"),
        )
        .await;
    let create = started.elapsed();
    anyhow::ensure!(r.status == 202, "the batch was refused: {}", r.body);
    let create_calls = by_operation(stack.dynamodb_calls.take());
    let view = r.body["links"]["view"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let fan_out = Instant::now();
    let relayed = relay.settle(&deps).await?;
    let dispatched = fan_out.elapsed();
    let relay_dynamodb = by_operation(dynamodb_log.take());
    let relay_sqs = by_operation(sqs_log.take());
    drop(held);

    let v = stack
        .call(ApiCall::get(view).by(&stack.users().owner))
        .await;
    let progress = v.body["batch"]["progress"].clone();
    let queued = progress["queued"].as_u64().unwrap_or(0) as usize;
    anyhow::ensure!(
        queued == TENANTS,
        "every child queued and dispatched: {progress}"
    );
    let per_child =
        |calls: &BTreeMap<String, usize>| calls.values().sum::<usize>() as f64 / TENANTS as f64;
    let total = |calls: &BTreeMap<String, usize>| calls.values().sum::<usize>();
    Ok(json!({
        "tenants": TENANTS,
        "create_dynamodb_calls_total": total(&create_calls),
        "relay_dynamodb_calls_total": total(&relay_dynamodb),
        "relay_sqs_calls_total": total(&relay_sqs),
        "type": "backup_schedule.run_now",
        "create_ms": create.as_secs_f64() * 1000.0,
        "create_dynamodb_calls": create_calls,
        "until_every_child_dispatched_s": dispatched.as_secs_f64(),
        "children_per_s": TENANTS as f64 / dispatched.as_secs_f64(),
        "stream_records_relayed": relayed,
        "relay_dynamodb_calls": relay_dynamodb,
        "relay_dynamodb_calls_per_child": per_child(&relay_dynamodb),
        "relay_sqs_calls": relay_sqs,
        "relay_sqs_calls_per_child": per_child(&relay_sqs),
        "batch_view_after": { "status": v.body["batch"]["status"], "progress": progress },
    }))
}
