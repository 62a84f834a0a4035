//! Provider-connection secrets in AWS Secrets Manager. The API writes them (create or
//! rotate) and never reads them; only the worker will. Names are
//! `{prefix}{workspace}/{tenant}/{connection}`, so IAM can scope access by prefix.
//!
//! A rotation never replaces the live secret before the connection's DynamoDB write commits:
//! the new value is *staged* as a version labelled `AWSPENDING` (the live one stays
//! `AWSCURRENT`), the connection record names the staged version in its transaction, and only
//! then is the version *promoted* to `AWSCURRENT`. The worker reads the version its record
//! names, so a refused transaction (a concurrent rotation, a removed role, an archived tenant)
//! leaves every worker on the secret that was live, and a promotion that fails afterwards
//! changes nothing a worker reads.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use tenantops_core::secret::SecretString;
use tenantops_core::webhook::SigningSecret;
use tenantops_core::{TenantId, WebhookId, WorkspaceId};

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

    /// Reads a connection's client secret (the worker's side; the API's role cannot): the
    /// version its record names, or the current one for a record from before versions were
    /// recorded.
    pub async fn read(
        &self,
        name: &str,
        version_id: Option<&str>,
    ) -> Result<SecretString, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .set_version_id(version_id.map(str::to_owned))
            // AWS reads AWSCURRENT when no version is named; naming it keeps moto (whose
            // default read does not follow a moved label) to the same answer.
            .set_version_stage(version_id.is_none().then(|| CURRENT.to_owned()))
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

    /// Stages `secret` under `name` and answers its version id: a new secret's first version
    /// (current at once: no live secret to protect), or a new `AWSPENDING` version of an
    /// existing one, which leaves the live `AWSCURRENT` version as it is. The value is
    /// `{"client_secret": ...}`.
    pub async fn stage(&self, name: &str, secret: &SecretString) -> Result<String, SecretsError> {
        let value = serde_json::json!({ "client_secret": secret.expose() }).to_string();
        let staged = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(&value)
            .version_stages(PENDING)
            .send()
            .await;
        let version = match staged {
            Ok(out) => out.version_id,
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                let created = self
                    .client
                    .create_secret()
                    .name(name)
                    .description("tenantops provider connection (app registration client secret)")
                    .secret_string(&value)
                    .send()
                    .await;
                match created {
                    Ok(out) => out.version_id,
                    // Created meanwhile by a concurrent first connection: stage beside it.
                    Err(e) if e.code() == Some("ResourceExistsException") => {
                        self.client
                            .put_secret_value()
                            .secret_id(name)
                            .secret_string(&value)
                            .version_stages(PENDING)
                            .send()
                            .await
                            .map_err(|e| secrets_error("PutSecretValue", e))?
                            .version_id
                    }
                    Err(e) => return Err(secrets_error("CreateSecret", e)),
                }
            }
            Err(e) => return Err(secrets_error("PutSecretValue", e)),
        };
        version.ok_or_else(|| SecretsError {
            operation: "PutSecretValue",
            code: None,
            source: "Secrets Manager answered no version id".into(),
        })
    }

    /// Makes the staged `version_id` the secret's `AWSCURRENT` version (the one the console
    /// and other readers of the name see), after its connection record committed.
    pub async fn promote(&self, name: &str, version_id: &str) -> Result<(), SecretsError> {
        let described = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| secrets_error("DescribeSecret", e))?;
        let stages = described.version_ids_to_stages.unwrap_or_default();
        let holding = |stage: &str| {
            stages
                .iter()
                .find(|(_, labels)| labels.iter().any(|l| l == stage))
                .map(|(id, _)| id.clone())
        };
        if holding(CURRENT).as_deref() != Some(version_id) {
            self.client
                .update_secret_version_stage()
                .secret_id(name)
                .version_stage(CURRENT)
                .move_to_version_id(version_id)
                .set_remove_from_version_id(holding(CURRENT))
                .send()
                .await
                .map_err(|e| secrets_error("UpdateSecretVersionStage", e))?;
        }
        if holding(PENDING).as_deref() == Some(version_id) {
            self.client
                .update_secret_version_stage()
                .secret_id(name)
                .version_stage(PENDING)
                .remove_from_version_id(version_id)
                .send()
                .await
                .map_err(|e| secrets_error("UpdateSecretVersionStage", e))?;
        }
        Ok(())
    }
}

/// Webhook signing secrets: `{prefix}webhooks/{ws}/{id}`, written once by the API (never
/// read by it), read by the notifier, deleted with their subscription.
impl SecretVault {
    pub fn webhook_secret_name(&self, ws: WorkspaceId, id: WebhookId) -> String {
        format!("{}webhooks/{ws}/{id}", self.prefix)
    }

    /// Stores a new subscription's secret as `{"signing_secret": ...}`.
    pub async fn create_webhook_secret(
        &self,
        name: &str,
        secret: &SigningSecret,
    ) -> Result<(), SecretsError> {
        let value = serde_json::json!({ "signing_secret": secret.expose() }).to_string();
        self.client
            .create_secret()
            .name(name)
            .description("tenantops webhook signing secret")
            .secret_string(value)
            .send()
            .await
            .map_err(|e| secrets_error("CreateSecret", e))?;
        Ok(())
    }

    /// A subscription's signing secret (the notifier's side).
    pub async fn read_webhook_secret(&self, name: &str) -> Result<SigningSecret, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| secrets_error("GetSecretValue", e))?;
        out.secret_string()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| {
                v.get("signing_secret")
                    .and_then(serde_json::Value::as_str)
                    .and_then(SigningSecret::parse)
            })
            .ok_or_else(|| SecretsError {
                operation: "GetSecretValue",
                code: Some("MalformedSecret".into()),
                source: "the secret has no signing_secret".into(),
            })
    }

    /// Deletes a subscription's secret at once (no recovery window: the subscription is gone).
    pub async fn delete_webhook_secret(&self, name: &str) -> Result<(), SecretsError> {
        self.client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| secrets_error("DeleteSecret", e))?;
        Ok(())
    }
}

/// Secrets Manager's label of the live version.
const CURRENT: &str = "AWSCURRENT";
/// Secrets Manager's label of a version staged for rotation.
const PENDING: &str = "AWSPENDING";
