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
use serde_json::Value;
use tenantops_api::Deps;
use tenantops_aws::{Dispatcher, SecretVault, Store};
use tenantops_local::gateway::Gateway;
use tenantops_local::provision::{self, Resources};
use tenantops_local::seed::{self, Demo, DemoUsers};
use tenantops_local::tokens::TokenIssuer;

pub mod faults;
pub mod hosts;
pub mod tenants;

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
    /// S3 client of the snapshot store the workers get; its calls land in `s3_calls`.
    pub s3: aws_sdk_s3::Client,
    pub s3_calls: CallLog,
    /// The snapshot bucket through `s3` (what workers write, for tests to read).
    pub snapshots: tenantops_aws::SnapshotStore,
    /// The relay's event source mapping on this stack's table stream, polled in the
    /// background as Lambda polls it, and settled at once where a test looks (see
    /// [`TestStack::settle`]).
    relay: Arc<tokio::sync::Mutex<Relay>>,
    relay_poller: tokio::task::JoinHandle<()>,
    /// Set while a test holds the relay ([`TestStack::pause_relay`]): calls do not settle.
    relay_paused: std::sync::atomic::AtomicBool,
}

/// The relay held still; see [`TestStack::pause_relay`].
#[derive(Debug)]
pub struct RelayPause<'a> {
    _held: tokio::sync::MutexGuard<'a, Relay>,
    paused: &'a std::sync::atomic::AtomicBool,
}

impl Drop for RelayPause<'_> {
    fn drop(&mut self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The local relay and what it relays with: its own store and dispatcher, on clients whose
/// calls are not logged (what the relay does is not the API's doing).
#[derive(Debug)]
pub struct Relay {
    host: tenantops_local::relay_host::RelayHost,
    deps: tenantops_relay::Deps,
}

impl Relay {
    async fn poll(&mut self) -> anyhow::Result<usize> {
        self.host.poll_once(&self.deps).await
    }

    async fn settle(&mut self) -> anyhow::Result<usize> {
        self.host.settle(&self.deps).await
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        self.relay_poller.abort();
        // The suite shares one in-memory DynamoDB Local: each test's table (with its indexes
        // and stream) is deleted when the test ends, passed or failed, so hundreds of them do
        // not pile up and slow every later test. On a thread of its own with a client of its
        // own: this runtime may be the one ending.
        let table = self.resources.table_name.clone();
        // A table left behind only costs speed.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let sdk = tenantops_aws::config::load().await;
                aws_sdk_dynamodb::Client::new(&sdk)
                    .delete_table()
                    .table_name(table)
                    .send()
                    .await
                    .ok()
            })
        })
        .join();
    }
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
        let s3_calls = CallLog::default();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                // moto serves buckets by path, not by virtual host.
                .force_path_style(true)
                .interceptor(s3_calls.clone())
                .build(),
        );
        let store = Store::new(dynamodb.clone(), &resources.table_name);
        let snapshots = tenantops_aws::SnapshotStore::new(s3.clone(), &resources.snapshot_bucket);
        let secrets = SecretVault::from_sdk(&sdk, format!("{prefix}/"));
        let deps = Arc::new(Deps {
            store,
            secrets,
            events: tenantops_aws::events::LifecycleEvents::from_sdk(
                &sdk,
                &resources.event_bus_name,
            ),
            limits: tenantops_api::Limits::default(),
            platform: tenantops_api::PlatformOperators::defaults(),
            snapshots: snapshots.clone(),
            // As deployed; webhook tests allow loopback receivers explicitly.
            webhook_urls: tenantops_core::webhook::UrlPolicy::PUBLIC,
        });
        let users = DemoUsers::named(&prefix).expect("user names");
        let demo = seed::seed(&deps, users).await.expect("seeding");
        let relay = tenantops_local::relay_host::RelayHost::new(&sdk, &resources.table_name, true)
            .await
            .expect("the relay's stream");
        let relay_deps = tenantops_relay::Deps {
            store: Store::new(aws_sdk_dynamodb::Client::new(&sdk), &resources.table_name),
            dispatcher: Dispatcher::from_sdk(&sdk, &resources.queue_url),
        };
        let relay = Arc::new(tokio::sync::Mutex::new(Relay {
            host: relay,
            deps: relay_deps,
        }));
        let relay_poller = tokio::spawn(poll_relay(relay.clone()));
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
            snapshots,
            s3,
            s3_calls,
            relay,
            relay_poller,
            relay_paused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A dispatcher onto this stack's work queue (the reaper's, a worker's continuation).
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.sqs.clone(), &self.resources.queue_url)
    }

    /// Lets the relay catch up with the table's stream: every start committed before the call
    /// has its audit entry, notification and work message after it. API calls settle after
    /// they answer (and reads before), the queue helpers and the worker harness before they
    /// look; a test that reads the relay's items from the store settles itself.
    pub async fn settle(&self) -> usize {
        self.try_settle().await.expect("relaying the stream")
    }

    /// [`TestStack::settle`], for a test that expects the relay to fail.
    pub async fn try_settle(&self) -> anyhow::Result<usize> {
        // Boxed: the relay's SDK futures would otherwise sit inside every caller's future.
        Box::pin(async { self.relay.lock().await.settle().await }).await
    }

    /// Holds the relay until the guard is dropped: for a test that looks at a start before
    /// the stream is relayed, or a measurement of the API alone. API calls meanwhile do not
    /// settle; an explicit settle waits for the guard.
    pub async fn pause_relay(&self) -> RelayPause<'_> {
        let held = self.relay.lock().await;
        self.relay_paused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        RelayPause {
            _held: held,
            paused: &self.relay_paused,
        }
    }

    /// Settles unless the relay is paused, ignoring a relay that fails (a test's broken
    /// queue): what API calls and the queue helpers do before they look.
    pub(crate) async fn settle_quietly(&self) {
        if !self.relay_paused.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = self.try_settle().await;
        }
    }

    /// Has the relay dispatch to `queue_url` from now on (e.g. a queue that does not exist).
    pub async fn relay_to(&self, queue_url: &str) {
        self.relay.lock().await.deps.dispatcher =
            Dispatcher::new(aws_sdk_sqs::Client::new(&self.sdk), queue_url);
    }

    /// The same API with another store (e.g. through a fault layer).
    pub fn with_store(&self, store: Store) -> Arc<Deps> {
        Arc::new(Deps {
            store,
            ..(*self.deps).clone()
        })
    }

    /// The same API with the manual backup quota set as high as it goes (still counted in
    /// each start's transaction): for measurements that start many manual backups of one
    /// tenant.
    pub fn with_unbounded_manual_backups(&self) -> Arc<Deps> {
        Arc::new(Deps {
            limits: tenantops_api::Limits {
                manual_backup_quota: u32::MAX,
                ..self.deps.limits
            },
            ..(*self.deps).clone()
        })
    }

    /// Receives and deletes every message of the work queue: the dispatch was "lost".
    pub async fn lose_work_messages(&self) -> usize {
        let mut lost = 0;
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.resources.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                return lost;
            }
            for m in msgs {
                self.sqs
                    .delete_message()
                    .queue_url(&self.resources.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                lost += 1;
            }
        }
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
        self.finish_with(run_id, outcome, vec![]).await
    }

    /// Finishes the run with `outcome` and `failures`, as a worker or the reaper does.
    pub async fn finish_with(
        &self,
        run_id: &str,
        outcome: tenantops_core::Outcome,
        failures: Vec<tenantops_core::Failure>,
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
            failures,
        };
        self.store().transition(&run, &finish).await.unwrap();
        run
    }

    pub fn token(&self, user: &tenantops_core::UserId) -> String {
        self.tokens.mint(user.as_str(), 3600).expect("minting")
    }

    /// A platform operator's token (the template's default claim and value) for `user`.
    pub fn platform_token(&self, user: &tenantops_core::UserId) -> String {
        self.tokens
            .mint_platform_operator(user.as_str(), 3600)
            .expect("minting")
    }

    pub fn users(&self) -> &DemoUsers {
        &self.demo.users
    }

    /// Calls the API through the local gateway (JWT check, v2 event, the template's API
    /// timeout) with these deps.
    pub async fn call_with(&self, deps: &Arc<Deps>, req: ApiCall<'_>) -> Reply {
        let gateway = Gateway::from_template(deps.clone(), self.tokens.clone()).unwrap();
        self.call_via(gateway, req).await
    }

    pub async fn call(&self, req: ApiCall<'_>) -> Reply {
        let deps = self.deps.clone();
        self.call_with(&deps, req).await
    }

    /// Every item in the table, keyed by (PK, SK): for "nothing was written" assertions.
    /// A Scan is fine here; it is a test's view of a table it owns.
    pub async fn snapshot(&self) -> BTreeMap<(String, String), String> {
        // What the relay owes for earlier starts is not a later call's doing.
        self.settle_quietly().await;
        self.snapshot_unsettled().await
    }

    /// [`TestStack::snapshot`] as the table stands, the relay left alone.
    pub async fn snapshot_unsettled(&self) -> BTreeMap<(String, String), String> {
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
    /// The demo workspace's audit entries of `action`, newest first, as its owner reads them.
    pub async fn audit_entries(&self, action: &str) -> Vec<serde_json::Value> {
        let r = self
            .call(
                ApiCall::get(format!(
                    "/v1/workspaces/{}/audit?action={action}",
                    self.demo.workspace_id
                ))
                .by(&self.users().owner),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn queued_messages(&self) -> usize {
        self.settle_quietly().await;
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

/// The worker, wired to this stack and to a graph-sim playing the demo tenant.
#[derive(Debug)]
pub struct WorkerHarness {
    pub sim: tenantops_graph_sim::GraphSim,
    pub deps: tenantops_worker::Deps,
    pub entra_tenant_id: String,
    relay: Arc<tokio::sync::Mutex<Relay>>,
}

impl WorkerHarness {
    /// Runs every message queued now, after the relay caught up (and what they hand back
    /// immediately).
    pub async fn drain(&self) -> usize {
        Box::pin(async { self.relay.lock().await.settle().await })
            .await
            .expect("relaying the stream");
        tenantops_local::worker_host::drain(&self.deps)
            .await
            .unwrap()
    }
}

impl TestStack {
    /// The demo tenant's Entra id.
    pub async fn entra_tenant_id(&self) -> String {
        self.store()
            .get_tenant(self.demo.workspace_id, self.demo.tenant_id)
            .await
            .unwrap()
            .unwrap()
            .entra_tenant_id
    }

    /// A worker against a graph-sim serving the demo tenant with `counts` objects per path.
    pub async fn worker(
        &self,
        counts: &[(&str, usize)],
        policy: tenantops_graph::throttle::RetryPolicy,
    ) -> WorkerHarness {
        let entra = self.entra_tenant_id().await;
        let client = tenantops_graph_sim::SimClient::new(
            tenantops_local::seed::DEMO_CLIENT_ID,
            tenantops_local::seed::DEMO_CLIENT_SECRET,
        );
        let config = tenantops_graph_sim::SimConfig::generated(&entra, client, counts);
        self.worker_with(config, policy).await
    }

    pub async fn worker_with(
        &self,
        config: tenantops_graph_sim::SimConfig,
        policy: tenantops_graph::throttle::RetryPolicy,
    ) -> WorkerHarness {
        let sim = tenantops_graph_sim::GraphSim::start(config).await.unwrap();
        let graph = tenantops_graph::GraphClient::new(
            tenantops_graph::GraphConfig {
                graph_base: sim.graph_base_url(),
                login_base: sim.login_base_url(),
            },
            policy,
        )
        .unwrap();
        let deps = tenantops_worker::Deps {
            store: self.deps.store.clone(),
            graph,
            secrets: self.deps.secrets.clone(),
            queue: tenantops_aws::WorkQueue::new(self.sqs.clone(), &self.resources.queue_url),
            events: tenantops_aws::events::LifecycleEvents::from_sdk(
                &self.sdk,
                &self.resources.event_bus_name,
            ),
            lease: tenantops_worker::LEASE,
            deadline_margin: tenantops_worker::config::DEFAULT_DEADLINE_MARGIN,
            // Tests about other things drain a burst of one workspace's runs in one pass; the
            // fairness tests set the deployed kind of limit themselves.
            fairness: tenantops_worker::Fairness::limited_to(64),
            snapshots: tenantops_aws::SnapshotStore::new(
                self.s3.clone(),
                &self.resources.snapshot_bucket,
            ),
        };
        WorkerHarness {
            sim,
            deps,
            entra_tenant_id: self.entra_tenant_id().await,
            relay: self.relay.clone(),
        }
    }

    /// The reaper, wired to this stack (its work queue, dead-letter queue and bus), with the
    /// deployed thresholds.
    pub fn reaper(&self) -> tenantops_reaper::Deps {
        tenantops_reaper::Deps {
            store: self.deps.store.clone(),
            dispatcher: Dispatcher::new(self.sqs.clone(), &self.resources.queue_url),
            dead_letters: tenantops_aws::DeadLetters::new(
                self.sqs.clone(),
                &self.resources.dead_letter_queue_url,
            ),
            events: tenantops_aws::events::LifecycleEvents::from_sdk(
                &self.sdk,
                &self.resources.event_bus_name,
            ),
            thresholds: tenantops_reaper::Thresholds::default(),
        }
    }

    /// Starts a run through the API as the demo owner; returns its id.
    pub async fn start(&self, body: Value) -> String {
        let path = self.start_path(self.demo.workspace_id, self.demo.tenant_id);
        let r = self
            .call(ApiCall::post(path, body.to_string()).by(&self.demo.users.owner))
            .await;
        assert!(
            r.status == 202 || r.status == 200,
            "start: {} {}",
            r.status,
            r.body
        );
        r.run_id()
    }

    pub async fn run(&self, id: &str) -> tenantops_core::Run {
        self.store()
            .get_run(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// A queue that receives every lifecycle event of this stack's bus (moto delivers
    /// EventBridge rules to SQS targets).
    pub async fn capture_events(&self) -> String {
        let name = format!(
            "{}-events-capture",
            self.resources.table_name.trim_end_matches("-table")
        );
        let url = self
            .sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
            .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .cloned()
            .unwrap();
        let events = aws_sdk_eventbridge::Client::new(&self.sdk);
        events
            .put_rule()
            .name(format!("{name}-rule"))
            .event_bus_name(&self.resources.event_bus_name)
            .event_pattern(serde_json::json!({ "source": ["tenantops"] }).to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(format!("{name}-rule"))
            .event_bus_name(&self.resources.event_bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("capture")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        self.sqs_calls.take();
        url
    }

    /// Every message waiting in a capture queue, as text.
    pub async fn captured(&self, queue_url: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                out.push(m.body.unwrap_or_default());
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        self.sqs_calls.take();
        out
    }
}

impl TestStack {
    /// The same API with webhook URLs judged by `urls` (a local receiver needs
    /// [`UrlPolicy::LOCAL`](tenantops_core::webhook::UrlPolicy::LOCAL)).
    pub fn with_webhook_urls(&self, urls: tenantops_core::webhook::UrlPolicy) -> Arc<Deps> {
        Arc::new(Deps {
            webhook_urls: urls,
            ..(*self.deps).clone()
        })
    }

    /// The notifier, wired to this stack's table, secrets and webhook queues, with `retries`
    /// and `urls`, and the host that plays its event-source mapping.
    pub fn notifier(
        &self,
        retries: tenantops_core::webhook::RetrySchedule,
        urls: tenantops_core::webhook::UrlPolicy,
    ) -> (
        tenantops_notifier::Deps,
        tenantops_local::notifier_host::NotifierHost,
    ) {
        let deps = tenantops_notifier::Deps {
            store: self.deps.store.clone(),
            secrets: self.deps.secrets.clone(),
            queue: tenantops_aws::webhook_queue::WebhookQueue::new(
                self.sqs.clone(),
                &self.resources.webhook_queue_url,
                &self.resources.webhook_dead_letter_queue_url,
            ),
            retries,
            urls,
            timeout: tenantops_notifier::DELIVERY_TIMEOUT,
        };
        let host = tenantops_local::notifier_host::NotifierHost::new(&self.sdk, &deps);
        (deps, host)
    }
}

/// Captures log lines (for "this secret never reaches a log" assertions).
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(pub Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

    /// Sends `token` as the bearer token instead of a user's ordinary one.
    pub fn with_token(mut self, token: String) -> Self {
        self.raw_token = Some(token);
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
    /// Every response header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The value of the header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

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

/// How often the background relay polls the stream (Lambda: about four times a second; tests
/// settle explicitly where they look, so this only keeps standing hosts fed).
const RELAY_POLL: std::time::Duration = std::time::Duration::from_millis(50);

async fn poll_relay(relay: Arc<tokio::sync::Mutex<Relay>>) {
    loop {
        if let Err(e) = relay.lock().await.poll().await {
            tracing::warn!(error = %e, "background relay poll failed");
        }
        tokio::time::sleep(RELAY_POLL).await;
    }
}
