//! The worker Lambda: build the dependencies once, then serve SQS batches.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tenantops_worker::{Deps, config::WorkerConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let cfg = WorkerConfig::from_env()?;
    let sdk = tenantops_aws::config::load().await;
    let deps = Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, cfg.table_name),
        graph: tenantops_graph::GraphClient::new(cfg.graph, Default::default())?,
        secrets: tenantops_aws::SecretVault::from_sdk(&sdk, ""),
        queue: tenantops_aws::WorkQueue::from_sdk(&sdk, cfg.queue_url),
        events: tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, cfg.event_bus_name),
        snapshots: tenantops_aws::SnapshotStore::from_sdk(&sdk, cfg.snapshot_bucket),
        lease: tenantops_worker::LEASE,
        deadline_margin: cfg.deadline_margin,
        fairness: tenantops_worker::Fairness::limited_to(cfg.workspace_concurrency),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // The context's deadline: milliseconds since the epoch, as the runtime API sends it.
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_else(chrono::Utc::now);
        Ok::<SqsBatchResponse, Error>(tenantops_worker::handle(event.payload, deadline, deps).await)
    }))
    .await
}
