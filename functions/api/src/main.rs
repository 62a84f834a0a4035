//! The API Lambda: build the dependencies once, then serve API Gateway events.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tenantops_aws::config::init_lambda_tracing();
    let deps = tenantops_api::Deps::from_env().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<ApiGatewayV2httpResponse, Error>(tenantops_api::handle(event.payload, deps).await)
        },
    ))
    .await
}
