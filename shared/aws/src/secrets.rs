//! Provider-connection secrets in AWS Secrets Manager. The API writes them (create or
//! rotate) and never reads them; only the worker will. Names are
//! `{prefix}{workspace}/{tenant}/{connection}`, so IAM can scope access by prefix.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use tenantops_core::secret::SecretString;
use tenantops_core::{TenantId, WorkspaceId};

#[derive(Debug, thiserror::Error)]
#[error("Secrets Manager {operation} failed")]
pub struct SecretsError {
    pub operation: &'static str,
    pub code: Option<String>,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

fn secrets_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> SecretsError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    SecretsError {
        operation,
        code: e.code().map(str::to_owned),
        source: Box::new(e),
    }
}

#[derive(Debug, Clone)]
pub struct SecretVault {
    client: Client,
    prefix: String,
}

impl SecretVault {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, prefix: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), prefix)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn secret_name(&self, ws: WorkspaceId, tenant: TenantId, connection_id: &str) -> String {
        format!("{}{ws}/{tenant}/{connection_id}", self.prefix)
    }

    /// Reads a connection's client secret (the worker's side; the API's role cannot).
    pub async fn read(&self, name: &str) -> Result<SecretString, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| secrets_error("GetSecretValue", e))?;
        let value: serde_json::Value = out
            .secret_string()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        value
            .get("client_secret")
            .and_then(serde_json::Value::as_str)
            .map(SecretString::new)
            .ok_or_else(|| SecretsError {
                operation: "GetSecretValue",
                code: Some("MalformedSecret".into()),
                source: "the secret has no client_secret".into(),
            })
    }

    /// Stores `secret` under `name`: creates the secret, or adds a new current version if it
    /// exists (a rotation). The value is `{"client_secret": ...}`.
    pub async fn store(&self, name: &str, secret: &SecretString) -> Result<(), SecretsError> {
        let value = serde_json::json!({ "client_secret": secret.expose() }).to_string();
        let created = self
            .client
            .create_secret()
            .name(name)
            .description("tenantops provider connection (app registration client secret)")
            .secret_string(&value)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceExistsException") => self
                .client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| secrets_error("PutSecretValue", e)),
            Err(e) => Err(secrets_error("CreateSecret", e)),
        }
    }
}
