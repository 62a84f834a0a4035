//! Test support: a fresh, isolated stack per test on the emulators that `cargo xtask test`
//! started (own table, own queues, own users), plus helpers to call the API through the same
//! gateway the local stack serves, and to count AWS calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::Value;
use tenantops_api::Deps;
use tenantops_aws::{Dispatcher, SecretVault, Store};
use tenantops_local::gateway::{self, Gateway};
use tenantops_local::provision::{self, Resources};
use tenantops_local::seed::{self, Demo, DemoUsers};
use tenantops_local::tokens::TokenIssuer;
use tower::ServiceExt;

/// Records the name of every AWS operation a client sends (retries not counted twice).
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Serialization happens once per operation (before the retry loop), after the
    // operation's config, which names it, is in the bag.
    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "unknown".into());
        self.calls.lock().unwrap().push(name);
        Ok(())
    }
}

/// One test's stack.
#[derive(Debug)]
pub struct TestStack {
    pub sdk: aws_config::SdkConfig,
    pub resources: Resources,
    pub demo: Demo,
    pub deps: Arc<Deps>,
    pub tokens: TokenIssuer,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb_calls: CallLog,
    pub sqs_calls: CallLog,
}

fn require_emulators() {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err()
        || std::env::var("AWS_ENDPOINT_URL").is_err()
    {
        panic!("integration tests need the emulators: run them with `cargo xtask test`");
    }
}

impl TestStack {
    pub async fn new() -> TestStack {
        require_emulators();
        let sdk = tenantops_aws::config::load().await;
        let prefix = format!("it-{}", ulid::Ulid::new().to_string().to_lowercase());
        let resources = provision::provision(&sdk, &prefix)
            .await
            .expect("provisioning");
        let dynamodb_calls = CallLog::default();
        let sqs_calls = CallLog::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(dynamodb_calls.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(sqs_calls.clone())
                .build(),
        );
        let store = Store::new(dynamodb.clone(), &resources.table_name);
        let secrets = SecretVault::from_sdk(&sdk, format!("{prefix}/"));
        let deps = Arc::new(Deps {
            store,
            dispatcher: Dispatcher::new(sqs.clone(), &resources.queue_url),
            secrets,
        });
        let users = DemoUsers::named(&prefix).expect("user names");
        let demo = seed::seed(&deps, users).await.expect("seeding");
        dynamodb_calls.take();
        sqs_calls.take();
        TestStack {
            sdk,
            resources,
            demo,
            deps,
            tokens: TokenIssuer::generate(),
            dynamodb,
            sqs,
            dynamodb_calls,
            sqs_calls,
        }
    }

    /// The same stack with another dispatcher (e.g. a queue that does not exist).
    pub fn with_queue_url(&self, queue_url: &str) -> Arc<Deps> {
        Arc::new(Deps {
            store: self.deps.store.clone(),
            dispatcher: Dispatcher::new(self.sqs.clone(), queue_url),
            secrets: self.deps.secrets.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.deps.store
    }

    /// Finishes a run as a worker would (no failures), through the store's transition.
    pub async fn finish(
        &self,
        run_id: &str,
        outcome: tenantops_core::Outcome,
    ) -> tenantops_core::Run {
        let run = self
            .store()
            .get_run(run_id.parse().expect("a run id"))
            .await
            .unwrap()
            .expect("the run exists");
        let finish = tenantops_core::Transition::Finish {
            now: chrono::Utc::now(),
            outcome,
            failures: vec![],
        };
        self.store().transition(&run, &finish).await.unwrap();
        run
    }

    pub fn token(&self, user: &tenantops_core::UserId) -> String {
        self.tokens.mint(user.as_str(), 3600).expect("minting")
    }

    pub fn users(&self) -> &DemoUsers {
        &self.demo.users
    }

    /// Calls the API through the local gateway (JWT check, v2 event) with these deps.
    pub async fn call_with(&self, deps: &Arc<Deps>, req: ApiCall<'_>) -> Reply {
        let app = gateway::router(Gateway {
            deps: deps.clone(),
            tokens: self.tokens.clone(),
        });
        let mut builder = Request::builder().method(req.method).uri(req.path);
        if let Some(user) = req.user {
            builder = builder.header("authorization", format!("Bearer {}", self.token(user)));
        }
        if let Some(token) = req.raw_token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in &req.headers {
            builder = builder.header(*k, v.as_str());
        }
        let body = match req.body {
            Some(b) => {
                if !req
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    builder = builder.header("content-type", "application/json");
                }
                Body::from(b)
            }
            None => Body::empty(),
        };
        let resp = app.oneshot(builder.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub async fn call(&self, req: ApiCall<'_>) -> Reply {
        let deps = self.deps.clone();
        self.call_with(&deps, req).await
    }

    /// Every item in the table, keyed by (PK, SK): for "nothing was written" assertions.
    /// A Scan is fine here; it is a test's view of a table it owns.
    pub async fn snapshot(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.resources.table_name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items.unwrap_or_default() {
                let key = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                let canonical: Value = serde_dynamo::from_item(item.clone()).unwrap();
                out.insert((key("PK"), key("SK")), canonical.to_string());
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        self.dynamodb_calls.take();
        out
    }

    /// Messages waiting in the work queue (approximate, as SQS reports it).
    pub async fn queued_messages(&self) -> usize {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.resources.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        self.sqs_calls.take();
        attrs
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    pub fn start_path(&self, ws: impl std::fmt::Display, tenant: impl std::fmt::Display) -> String {
        format!("/v1/workspaces/{ws}/tenants/{tenant}/operations")
    }
}

/// One API call.
#[derive(Debug, Clone)]
pub struct ApiCall<'a> {
    pub method: &'a str,
    pub path: String,
    pub user: Option<&'a tenantops_core::UserId>,
    pub raw_token: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<(&'a str, String)>,
}

impl<'a> ApiCall<'a> {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            user: None,
            raw_token: None,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn post(path: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            method: "POST",
            body: Some(body.into()),
            ..Self::get(path)
        }
    }

    pub fn by(mut self, user: &'a tenantops_core::UserId) -> Self {
        self.user = Some(user);
        self
    }

    pub fn header(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn run_id(&self) -> String {
        self.body["run"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}
