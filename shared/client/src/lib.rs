//! A typed async client of the tenantops API.
//!
//! Every call names its [`Route`] (the router's and the OpenAPI document's key; `tests/it/cli.rs`
//! holds [`ROUTES`] to both), answers a typed value or a typed [`Error`] carrying the API's
//! RFC 9457 [`Problem`]. Operations URLs are never built here: they come from
//! `tenantops_core::links` (the only place that mints them) or from the `links` the API
//! answered, and a followed link must be a path of the route it is followed as.

mod batches;
mod calls;
mod drift;
mod error;
mod routes;
mod system;
mod types;
mod webhooks;

pub use batches::{
    Batch, BatchChild, BatchFailedTenant, BatchLinks, BatchProgress, BatchRequest, BatchStatus,
    BatchTargets, BatchView, ChildOrigin,
};
pub use calls::ScheduleOwner;
pub use drift::{BackupSetDiff, DriftCounts, DriftItem, DriftReport, DriftReportView, ObjectRef};
pub use error::{Error, Problem};
pub use routes::{NOT_COVERED, ROUTES, Route};
pub use types::*;
pub use webhooks::{Delivery, Webhook, WebhookLinks, WebhookResponse};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenantops_core::secret::SecretString;

/// A client of one API (its base URL, e.g. `https://api.example.com/prod`) as one caller.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// The bearer token; `SecretString` keeps it out of every `Debug` and log line.
    token: Option<SecretString>,
}

/// One request: its route, the concrete path, query pairs, a JSON body, extra headers.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub route: Route,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(route: Route, path: impl Into<String>) -> Self {
        Self {
            route,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
        }
    }

    pub(crate) fn query(mut self, pairs: Vec<(&'static str, String)>) -> Self {
        self.query.extend(pairs);
        self
    }

    pub(crate) fn body(mut self, body: impl Serialize) -> Self {
        // Serializing our own request types cannot fail; a failure would send no body, which
        // the API answers with a problem.
        self.body = serde_json::to_value(body).ok();
        self
    }

    pub(crate) fn idempotency_key(mut self, key: Option<&'a str>) -> Self {
        self.idempotency_key = key;
        self
    }
}

impl Client {
    /// A client of the API at `base` (http or https; a trailing `/` is ignored).
    pub fn new(base: &str, token: Option<SecretString>) -> Result<Self, Error> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BaseUrl(base.to_owned()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("tenantops-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Transport {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: base.to_owned(),
            token,
        })
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a call and reads its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let route = call.route;
        let bytes = self.send(call).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Body {
            route: route.key(),
            source,
        })
    }

    /// Sends a call whose success has no body (204).
    pub(crate) async fn empty(&self, call: Call<'_>) -> Result<(), Error> {
        self.send(call).await.map(|_| ())
    }

    async fn send(&self, call: Call<'_>) -> Result<Vec<u8>, Error> {
        if !call.route.matches(&call.path) || !call.path.starts_with('/') {
            return Err(Error::Link {
                link: call.path,
                route: call.route.key(),
            });
        }
        // Links are paths relative to the API's base, which may carry a stage.
        let url = format!("{}{}", self.base, call.path);
        let mut req = self.http.request(call.route.method(), &url);
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Error::Status {
                        status: 0,
                        message: "the token is not a valid header value".into(),
                    }
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(key) = call.idempotency_key
            && let Ok(value) = HeaderValue::from_str(key)
        {
            headers.insert("idempotency-key", value);
        }
        if let Some(body) = &call.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            req = req.body(body.to_string());
        }
        let resp = req
            .headers(headers)
            .send()
            .await
            .map_err(|source| Error::Transport {
                url: url.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| Error::Transport { url, source })?;
        if (200..300).contains(&status) {
            return Ok(bytes.to_vec());
        }
        Err(failure(status, &bytes, retry_after))
    }
}

/// A problem document when the body is one; the status and whatever message there is else.
fn failure(status: u16, body: &[u8], retry_after: Option<u64>) -> Error {
    if let Ok(mut problem) = serde_json::from_slice::<Problem>(body) {
        problem.retry_after = retry_after;
        return Error::Problem(Box::new(problem));
    }
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        });
    Error::Status { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_body_is_a_typed_problem() {
        let body = br#"{"type":"https://tenantops.dev/problems/auth.forbidden","title":"Forbidden","status":403,"detail":"Your role does not allow this.","code":"auth.forbidden","capability":"run.start"}"#;
        let err = failure(403, body, None);
        let p = err.problem().expect("a problem");
        assert_eq!(p.code, "auth.forbidden");
        assert_eq!(p.capability.as_deref(), Some("run.start"));
        assert_eq!(err.status(), Some(403));
    }

    #[test]
    fn a_gateway_message_is_a_status() {
        let err = failure(401, br#"{"message":"Unauthorized"}"#, None);
        assert!(err.problem().is_none());
        assert_eq!(err.to_string(), "the API answered 401: Unauthorized");
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let c = Client::new("http://127.0.0.1:1/", Some(SecretString::new("tok-123")))
            .expect("a client");
        assert!(!format!("{c:?}").contains("tok-123"));
        assert_eq!(c.base(), "http://127.0.0.1:1");
        assert!(Client::new("ftp://x", None).is_err());
    }

    #[tokio::test]
    async fn a_link_outside_its_route_is_not_followed() {
        let c = Client::new("http://127.0.0.1:1", None).expect("a client");
        let err = c.follow_run("/v1/workspaces").await.expect_err("refused");
        assert!(matches!(err, Error::Link { .. }), "{err}");
    }
}
