//! The one Microsoft Graph client.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantops_core::secret::SecretString;
use tokio::sync::Mutex;

use crate::error::{GraphError, token_reason};
use crate::registry::{ApiVersion, Budget, ObjectType};
use crate::sanitize::sanitize;
use crate::throttle::{BucketKey, Budgets, RetryPolicy, parse_retry_after};

/// Environment variables the Graph client reads (base URLs are configuration, so that tests
/// and the local stack point at graph-sim).
pub const GRAPH_BASE_URL: &str = "TENANTOPS_GRAPH_BASE_URL";
pub const LOGIN_BASE_URL: &str = "TENANTOPS_LOGIN_BASE_URL";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// `$batch` takes at most this many requests.
pub const BATCH_LIMIT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    pub graph_base: String,
    pub login_base: String,
}

impl GraphConfig {
    pub fn from_env() -> Self {
        let get = |k: &str, default: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            graph_base: get(GRAPH_BASE_URL, "https://graph.microsoft.com"),
            login_base: get(LOGIN_BASE_URL, "https://login.microsoftonline.com"),
        }
    }
}

/// An app registration's credentials for one customer tenant.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The Entra tenant id (GUID).
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The connection's version: every rotation raises it. Tokens are cached per version,
    /// so a rotated secret is used at once by every warm worker, never a token of the old.
    pub secret_version: u32,
}

impl Credentials {
    fn token_key(&self) -> TokenKey {
        (
            self.tenant_id.clone(),
            self.client_id.clone(),
            self.secret_version,
        )
    }

    fn bucket(&self, budget: Budget) -> BucketKey {
        (self.tenant_id.clone(), self.client_id.clone(), budget)
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

/// One page of a paged read.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

#[derive(Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    config: GraphConfig,
    policy: RetryPolicy,
    budgets: Budgets,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

/// (Entra tenant, client id, connection version): whose token a cached token is.
type TokenKey = (String, String, u32);

impl GraphClient {
    pub fn new(config: GraphConfig, policy: RetryPolicy) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|_| GraphError::Unavailable)?;
        Ok(Self {
            http,
            config,
            policy,
            budgets: Budgets::default(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// A client-credentials token for `creds`, from the cache until shortly before expiry.
    pub async fn token(&self, creds: &Credentials) -> Result<SecretString, GraphError> {
        let key = creds.token_key();
        let mut tokens = self.tokens.lock().await;
        // Tokens of an earlier version of this connection are never used again.
        tokens.retain(|(tenant, client, version), _| {
            !(tenant == &key.0 && client == &key.1 && *version != key.2)
        });
        if let Some(t) = tokens.get(&key).filter(|t| t.renew_at > Instant::now()) {
            return Ok(t.token.clone());
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.config.login_base, creds.tenant_id
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose()),
            ("scope", GRAPH_SCOPE),
        ];
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport("token", &e))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|_| GraphError::BadResponse)?;
        if !status.is_success() {
            let reason = token_reason(&body);
            tracing::warn!(status = status.as_u16(), reason = %reason, "token request refused");
            return Err(GraphError::Token { reason });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or(GraphError::BadResponse)?;
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3599);
        let lifetime = Duration::from_secs(expires_in).saturating_sub(TOKEN_MARGIN);
        let cached = CachedToken {
            token: SecretString::new(token),
            renew_at: Instant::now() + lifetime,
        };
        tokens.insert(key, cached.clone());
        Ok(cached.token)
    }

    /// A token fetched now, never from the cache (a connection check must prove the secret
    /// works today, not that it did within the hour).
    pub async fn fresh_token(&self, creds: &Credentials) -> Result<SecretString, GraphError> {
        self.forget_token(creds).await;
        self.token(creds).await
    }

    async fn forget_token(&self, creds: &Credentials) {
        self.tokens.lock().await.remove(&creds.token_key());
    }

    /// Resolves a relative path (`v1.0/...`) or a nextLink; links must point at the
    /// configured Graph, so a token is never sent anywhere else.
    fn url(&self, path_or_link: &str) -> Result<String, GraphError> {
        if path_or_link.starts_with("http://") || path_or_link.starts_with("https://") {
            if path_or_link.starts_with(&format!("{}/", self.config.graph_base)) {
                Ok(path_or_link.to_owned())
            } else {
                Err(GraphError::BadResponse)
            }
        } else {
            Ok(format!(
                "{}/{}",
                self.config.graph_base,
                path_or_link.trim_start_matches('/')
            ))
        }
    }

    /// Sends one request inside the bucket's budget, honouring Retry-After and backing off,
    /// and returns the JSON body of the first success.
    pub async fn request(
        &self,
        creds: &Credentials,
        budget: Budget,
        method: Method,
        path_or_link: &str,
        body: Option<&Value>,
        eventual_consistency: bool,
    ) -> Result<Value, GraphError> {
        self.send(
            creds,
            budget,
            method,
            path_or_link,
            body,
            eventual_consistency,
            true,
        )
        .await
    }

    /// A write that must not be repeated blindly (a create: Graph does not dedupe them).
    /// Only answers that prove the request was not processed (429, 401 before the token is
    /// renewed) are retried; a transport failure or a 5xx leaves the outcome unknown and is
    /// returned at once as [`GraphError::Unavailable`], for the caller to look before it
    /// writes again.
    pub async fn write_once(
        &self,
        creds: &Credentials,
        budget: Budget,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        self.send(creds, budget, method, path, body, false, false)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        creds: &Credentials,
        budget: Budget,
        method: Method,
        path_or_link: &str,
        body: Option<&Value>,
        eventual_consistency: bool,
        retry_unknown: bool,
    ) -> Result<Value, GraphError> {
        let url = self.url(path_or_link)?;
        let bucket = creds.bucket(budget);
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            if let Some(wait) = self.wait_for(&bucket)? {
                tokio::time::sleep(wait).await;
            }
            self.budgets.acquire(&bucket).await;
            let token = self.token(creds).await?;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.expose())
                .header("client-request-id", ulid::Ulid::new().to_string());
            if eventual_consistency {
                // Needed again on every page of an advanced query, not only the first.
                req = req.header("ConsistencyLevel", "eventual");
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let err = transport("graph", &e);
                    attempt += 1;
                    if !retry_unknown || attempt >= self.policy.max_attempts {
                        return Err(err);
                    }
                    tokio::time::sleep(self.policy.backoff(attempt)).await;
                    continue;
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|e| transport("graph body", &e))?;
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_str(&text).map_err(|_| GraphError::BadResponse);
            }
            let code = graph_error_code(&text);
            tracing::debug!(
                status = status.as_u16(),
                graph_code = code.as_deref().unwrap_or(""),
                request_id = headers
                    .get("request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
                "graph request failed"
            );
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    refreshed = true;
                    self.forget_token(creds).await;
                }
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT if !retry_unknown => {
                    return Err(GraphError::Unavailable);
                }
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => {
                    attempt += 1;
                    self.throttled(&bucket, &headers, attempt)?;
                }
                StatusCode::FORBIDDEN => return Err(GraphError::PermissionDenied),
                StatusCode::NOT_FOUND => return Err(GraphError::NotFound),
                StatusCode::BAD_REQUEST if code.as_deref() == Some("syncStateNotFound") => {
                    return Err(GraphError::SyncStateNotFound);
                }
                s if s.is_server_error() => {
                    attempt += 1;
                    if !retry_unknown || attempt >= self.policy.max_attempts {
                        return Err(GraphError::Unavailable);
                    }
                    tokio::time::sleep(self.policy.backoff(attempt)).await;
                }
                s if s.is_client_error() && s != StatusCode::UNAUTHORIZED => {
                    return Err(GraphError::rejected(s.as_u16(), code.as_deref()));
                }
                _ => return Err(GraphError::BadResponse),
            }
        }
    }

    /// The wait an earlier Retry-After imposes on the bucket, or a handback if it is long.
    fn wait_for(&self, bucket: &BucketKey) -> Result<Option<Duration>, GraphError> {
        match self.budgets.blocked_for(bucket) {
            Some(d) if d > self.policy.handback_after => {
                Err(GraphError::Throttled { retry_after: d })
            }
            other => Ok(other),
        }
    }

    /// Records a throttle for the whole bucket; errors when retries are spent or the wait is
    /// too long to sleep through.
    fn throttled(
        &self,
        bucket: &BucketKey,
        headers: &HeaderMap,
        attempt: u32,
    ) -> Result<(), GraphError> {
        let wait = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
            .unwrap_or_else(|| self.policy.backoff(attempt));
        self.budgets.block(bucket.clone(), wait);
        if wait > self.policy.handback_after || attempt >= self.policy.max_attempts {
            return Err(GraphError::Throttled {
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
        Ok(())
    }

    /// One page of a paged read: `first` is a relative path or the previous page's link.
    pub async fn page(
        &self,
        creds: &Credentials,
        budget: Budget,
        path_or_link: &str,
        eventual_consistency: bool,
    ) -> Result<Page, GraphError> {
        let body = self
            .request(
                creds,
                budget,
                Method::GET,
                path_or_link,
                None,
                eventual_consistency,
            )
            .await?;
        let items = match body.get("value") {
            Some(Value::Array(a)) => a.clone(),
            _ => return Err(GraphError::BadResponse),
        };
        let link = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Page {
            items,
            next_link: link("@odata.nextLink"),
            delta_link: link("@odata.deltaLink"),
        })
    }

    /// Every item of a collection: follows `@odata.nextLink` to the end, through empty pages.
    pub async fn list_all(
        &self,
        creds: &Credentials,
        budget: Budget,
        path: &str,
        eventual_consistency: bool,
    ) -> Result<Vec<Value>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(link) = next {
            let page = self
                .page(creds, budget, &link, eventual_consistency)
                .await?;
            items.extend(page.items);
            next = page.next_link;
        }
        Ok(items)
    }

    /// Every object of a registry type, with the registry's `$select` and expansions.
    pub async fn list_type(
        &self,
        creds: &Credentials,
        ty: &ObjectType,
    ) -> Result<Vec<Value>, GraphError> {
        self.list_all(creds, ty.budget, &ty.list_path(), false)
            .await
    }

    /// GETs up to any number of paths through `$batch` (20 per batch), retrying throttled
    /// items after their Retry-After. Results are in the order of `paths`.
    pub async fn batch_get(
        &self,
        creds: &Credentials,
        version: ApiVersion,
        budget: Budget,
        paths: &[String],
    ) -> Result<Vec<Result<Value, GraphError>>, GraphError> {
        let mut results: Vec<Option<Result<Value, GraphError>>> =
            (0..paths.len()).map(|_| None).collect();
        for chunk_start in (0..paths.len()).step_by(BATCH_LIMIT) {
            let mut pending: Vec<usize> =
                (chunk_start..(chunk_start + BATCH_LIMIT).min(paths.len())).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let requests: Vec<Value> = pending
                    .iter()
                    .map(|i| json!({ "id": i.to_string(), "method": "GET", "url": format!("/{}", paths[*i].trim_start_matches('/')) }))
                    .collect();
                let body = json!({ "requests": requests });
                let reply = self
                    .request(
                        creds,
                        budget,
                        Method::POST,
                        &format!("{}/$batch", version.as_str()),
                        Some(&body),
                        false,
                    )
                    .await?;
                let responses = reply
                    .get("responses")
                    .and_then(Value::as_array)
                    .ok_or(GraphError::BadResponse)?;
                let mut retry = Vec::new();
                let mut wait = Duration::ZERO;
                for r in responses {
                    let Some(i) = r
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
                    match status {
                        200..=299 => {
                            results[i] = Some(Ok(r.get("body").cloned().unwrap_or(Value::Null)))
                        }
                        429 | 503 | 504 => {
                            let after = r
                                .pointer("/headers/Retry-After")
                                .or_else(|| r.pointer("/headers/retry-after"))
                                .and_then(Value::as_str)
                                .and_then(|v| parse_retry_after(v, SystemTime::now()));
                            wait =
                                wait.max(after.unwrap_or_else(|| self.policy.backoff(attempt + 1)));
                            retry.push(i);
                        }
                        403 => results[i] = Some(Err(GraphError::PermissionDenied)),
                        404 => results[i] = Some(Err(GraphError::NotFound)),
                        400..=499 if status != 401 => {
                            let code = r.pointer("/body/error/code").and_then(Value::as_str);
                            let status = u16::try_from(status).unwrap_or(400);
                            results[i] = Some(Err(GraphError::rejected(status, code)));
                        }
                        _ => results[i] = Some(Err(GraphError::Unavailable)),
                    }
                }
                pending.retain(|i| results[*i].is_none() && retry.contains(i));
                if !pending.is_empty() {
                    attempt += 1;
                    let bucket = creds.bucket(budget);
                    self.budgets.block(bucket, wait);
                    if wait > self.policy.handback_after || attempt >= self.policy.max_attempts {
                        return Err(GraphError::Throttled {
                            retry_after: wait.max(Duration::from_secs(1)),
                        });
                    }
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(GraphError::BadResponse)))
            .collect())
    }
}

/// The Graph error `code` of an error body, if it has one.
fn graph_error_code(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .pointer("/error/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A transport failure, logged sanitized (URLs may carry query secrets).
fn transport(what: &str, e: &reqwest::Error) -> GraphError {
    tracing::warn!(error = %sanitize(&e.to_string()), what, "graph transport failure");
    GraphError::Unavailable
}
