//! SDK configuration. Endpoints come from the standard AWS variables, so the same code talks
//! to AWS in Lambda and to the emulators locally (`AWS_ENDPOINT_URL` for moto,
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration from the environment (once per cold start).
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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
