//! The relay Lambda: build the dependencies once, then serve the table stream's batches.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tenantops_relay::{Deps, config::RelayConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let cfg = RelayConfig::from_env()?;
    let sdk = tenantops_aws::config::load().await;
    let deps = Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, cfg.table_name),
        dispatcher: tenantops_aws::Dispatcher::from_sdk(&sdk, cfg.queue_url),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, Error>(tenantops_relay::handle(event.payload, deps).await)
    }))
    .await
}
