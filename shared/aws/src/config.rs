//! SDK configuration. Endpoints come from the standard AWS variables, so the same code talks
//! to AWS in Lambda and to the emulators locally (`AWS_ENDPOINT_URL` for moto,
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration from the environment (once per cold start).
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// JSON logs for CloudWatch, one line per event with the current span (run id, tenant, type)
/// attached; the level comes from Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`),
/// info by default. No timestamp: CloudWatch stamps every line. Every function's `main`
/// calls this first.
pub fn init_lambda_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(true)
        .without_time()
        .init();
}

/// Reads a required environment variable.
pub fn required_env(name: &'static str) -> Result<String, MissingEnv> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingEnv(name))
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub &'static str);
