//! The notifier Lambda: build the dependencies once, then serve the webhook queue's batches.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tenantops_core::webhook::UrlPolicy;
use tenantops_notifier::{Deps, config::NotifierConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let cfg = NotifierConfig::from_env()?;
    let sdk = tenantops_aws::config::load().await;
    let deps = Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, cfg.table_name),
        // Read by the names the subscriptions record; the notifier builds none.
        secrets: tenantops_aws::SecretVault::from_sdk(&sdk, ""),
        queue: tenantops_aws::webhook_queue::WebhookQueue::from_sdk(
            &sdk,
            cfg.queue_url,
            cfg.dead_letter_queue_url,
        ),
        retries: cfg.retries,
        // Deployed, nothing loosens it: public addresses only.
        urls: UrlPolicy::PUBLIC,
        timeout: tenantops_notifier::DELIVERY_TIMEOUT,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(tenantops_notifier::handle(event.payload, deps).await)
    }))
    .await
}
