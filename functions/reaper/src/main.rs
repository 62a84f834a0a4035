//! The reaper Lambda: build the dependencies once, then serve the scheduled ticks.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use tenantops_reaper::{Deps, Tick, config::ReaperConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let cfg = ReaperConfig::from_env()?;
    let sdk = tenantops_aws::config::load().await;
    let deps = Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, cfg.table_name),
        dispatcher: tenantops_aws::Dispatcher::from_sdk(&sdk, cfg.queue_url),
        dead_letters: tenantops_aws::DeadLetters::from_sdk(&sdk, cfg.dead_letter_queue_url),
        events: tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, cfg.event_bus_name),
        thresholds: cfg.thresholds,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            tenantops_reaper::handle(event.payload, deps)
                .await
                .map_err(Error::from)
                .map(|t: Tick| t)
        },
    ))
    .await
}
