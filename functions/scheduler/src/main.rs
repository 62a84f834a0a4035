//! The scheduler Lambda: build the dependencies once, then serve EventBridge ticks.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use tenantops_scheduler::{Deps, ScheduledEvent, TickReport, config::SchedulerConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let cfg = SchedulerConfig::from_env()?;
    let sdk = tenantops_aws::config::load().await;
    let deps = Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, cfg.table_name),
    };
    let events = tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, cfg.event_bus_name);
    let (deps, events) = (&deps, &events);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ScheduledEvent>| async move {
            // An incomplete tick is an error, so EventBridge's retry runs the same minute again
            // (which fires nothing twice).
            Ok::<TickReport, Error>(
                tenantops_scheduler::handle_announcing(&event.payload, deps, events).await?,
            )
        },
    ))
    .await
}
