//! `graph-sim`: a Microsoft Graph and Entra token endpoint simulator, for tests (in-process,
//! via [`GraphSim`]), the local demo and benchmarks (the `graph-sim` binary).
//!
//! # Simulated
//!
//! - **Token endpoint** `POST {login_base}/{tenant}/oauth2/v2.0/token` (client credentials,
//!   scope `https://graph.microsoft.com/.default`): tokens live 60–90 minutes; errors carry
//!   real AADSTS bodies (7000215 wrong secret, 7000222 expired secret, 700016 unknown app,
//!   90002 unknown tenant, plus 7000218, 900144, 70003, 1002012, 900561).
//! - **Query options** as Microsoft documents them per endpoint (`options.rs`: each rule with
//!   its reference page): an option an endpoint does not take answers Graph's 400 (`Query
//!   option 'Top' is not allowed ...`, or "not a collection" on one object) before anything
//!   is read; [`documented_query_rule`] names the page a request's rule comes from.
//! - **Graph reads** under `{graph_base}/v1.0` and `/beta`: collections with paging by opaque,
//!   tamper-checked `$skiptoken` nextLinks (occasionally an empty page that still links on),
//!   `$top` (directory: 400 above the maximum; Intune: capped), `$select`, `$expand` of
//!   the navigations each entity has (`expand.rs`: others answer Graph's 400; settings-catalog
//!   lists expanding `settings` page by 2; `definitionValues` expands empty; an administrative
//!   template's `/definitionValues` expands `definition` and `presentationValues($expand=presentation)`
//!   from a catalog of group policy definitions, `group_policy.rs`), `$count` (directory: needs `ConsistencyLevel:
//!   eventual` on every page), the `eq`/`startswith` forms of `$filter`; objects by id and
//!   navigation collections below them (`/assignments`, `/settings` pages of 25,
//!   `/definitionValues/{id}/presentationValues`, `/scheduledActionsForRule`, ...). Settings
//!   catalog lists page by 25, others by 100 (groups `$top` up to 999). Beta-only
//!   collections answer 400 on v1.0. Properties Graph returns only by id (`scriptContent`)
//!   are left out of lists.
//! - **Delta** on directory collections (`groups/delta`): rounds of pages ending in an
//!   `@odata.deltaLink`; later rounds return only changes, removals as `@removed`;
//!   `$deltatoken=latest`; expired or unknown tokens answer 400 `syncStateNotFound`.
//! - **`$batch`**: at most 20 requests; each item is served as its own call (budget, faults,
//!   log) and answered with its own status and headers (including `Retry-After`), in an
//!   order that need not match the request's.
//! - **Writes**: POST (create; see [`SimConfig::idempotent_creates`]), PATCH, DELETE, Intune's
//!   `/assign`, and the in-place rewrites of what hangs below an object (a settings-catalog
//!   policy's PUT, `updateDefinitionValues`, `scheduleActionsForRules`, a policy set's
//!   `update`); recorded and visible to later reads and delta rounds.
//! - **Throttling** by token buckets with Microsoft's documented limits ([`Throttling`]):
//!   429 with `Retry-After`, and for Intune the documented variant without it (half of
//!   Intune throttles, deterministic from the seed). Windows a `Retry-After` opened are
//!   remembered per (tenant, app, budget), and every request sent inside one is flagged
//!   ([`GraphSim::requests_inside_retry_after`]).
//! - **Errors and headers**: Graph error envelopes (`code`, `message`, `innerError` with
//!   `date`, `request-id`, `client-request-id`); every Graph response carries `request-id`
//!   and `client-request-id` (the caller's, echoed); missing, unknown or expired bearer
//!   tokens get 401 `InvalidAuthenticationToken`; missing application permissions get 403.
//! - **Faults** on demand ([`Fault`]): 429s, 503/504s, permanent 403s, arbitrary error bodies,
//!   token endpoint errors.
//! - **Latency** on demand ([`GraphSim::set_delay`]): a fixed delay before every request.
//! - **Admin routes** under `/admin/` (not Graph; see the `admin` module): list, change and
//!   delete a tenant's objects over HTTP, as an administrator would in the portal.
//!
//! # Not simulated
//!
//! TLS, HTTP/2, national clouds, delegated (user) tokens and token signature validation
//! (tokens are opaque lookups), certificate credentials (`client_assertion`), `$orderby`,
//! `$search` and complex `$filter` (refused with 400 rather than ignored), `members@delta`,
//! the per-app-across-all-tenants and global limits, Graph's JSON schema validation of
//! writes, and eventual consistency delays (writes are visible at once). Faults do not apply
//! to the `$batch` envelope itself, only to its items.

mod admin;
pub mod audit;
mod bodies;
mod config;
mod cursor;
mod expand;
mod generate;
mod group_policy;
mod inplace;
mod options;
mod reply;
mod rng;
mod server;
mod sim;
mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Collection, DEMO_COLLECTIONS, SimClient, SimConfig, SimTenant, Throttling};
pub use generate::groups as generated_groups;
pub use options::documented as documented_query_rule;
pub use throttle::Budget;

/// One request the simulator served, in the order served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    pub at: DateTime<Utc>,
    pub method: String,
    /// The URL path as served, e.g. `/graph/v1.0/groups` or
    /// `/login/{tenant}/oauth2/v2.0/token`; a `$batch` item is logged with the path it
    /// addressed (and [`RecordedRequest::batch_item_id`]).
    pub path: String,
    /// The raw query string (no leading `?`).
    pub query: String,
    /// The tenant of the bearer token (Graph) or of the URL (token endpoint).
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub status: u16,
    /// The `Retry-After` the response carried.
    pub retry_after: Option<Duration>,
    /// The `client-request-id` the client sent, if it sent one.
    pub client_request_id: Option<String>,
    /// The throttling budget family of the path, when it has one.
    pub budget: Option<Budget>,
    /// Set for a request served inside a `$batch`: its id there.
    pub batch_item_id: Option<String>,
    /// Sent while a `Retry-After` given to the same (tenant, app) for one of the budgets this
    /// request draws on had not yet elapsed.
    pub inside_retry_after: bool,
}

impl RecordedRequest {
    /// A create, update or delete (the `$batch` envelope and token requests are not).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
            && self.path.starts_with("/graph/")
            && !self.path.ends_with("/$batch")
    }
}

/// A failure to inject. Path prefixes are Graph paths without version (`deviceManagement/`,
/// `groups`); a leading `v1.0/` or `beta/` is ignored; `""` matches everything.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 `TooManyRequests`, the next `times` matching requests; `retry_after_secs: None`
    /// is Intune's variant without `Retry-After`.
    Throttle {
        path_prefix: String,
        times: u32,
        retry_after_secs: Option<u64>,
    },
    /// 503 or 504, the next `times` matching requests.
    Unavailable {
        path_prefix: String,
        times: u32,
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// 403 `Authorization_RequestDenied` for every matching request, until
    /// [`GraphSim::clear_faults`].
    Forbidden { path_prefix: String },
    /// This status and exactly this body, the next `times` matching requests.
    ErrorBody {
        path_prefix: String,
        times: u32,
        status: u16,
        body: Value,
    },
    /// This status and body for every token request to the tenant, until
    /// [`GraphSim::clear_faults`].
    TokenError {
        tenant_id: String,
        body: Value,
        status: u16,
    },
}

/// A running simulator on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct GraphSim {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GraphSim {
    /// Serves `config` on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> anyhow::Result<GraphSim> {
        GraphSim::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `config` on `addr` (port 0: any free port).
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> anyhow::Result<GraphSim> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding graph-sim to {addr}"))?;
        let addr = listener.local_addr()?;
        let mut sim = sim::Sim::new(config);
        sim.graph_base = format!("http://{addr}/graph");
        let shared = Arc::new(server::Shared::new(sim));
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "graph-sim stopped serving");
            }
        });
        tracing::debug!(%addr, "graph-sim listening");
        Ok(GraphSim {
            shared,
            addr,
            shutdown: Some(shutdown),
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/graph`; clients call `{graph_base}/v1.0/...` and `/beta/...`.
    pub fn graph_base_url(&self) -> String {
        format!("http://{}/graph", self.addr)
    }

    /// `http://127.0.0.1:PORT/login`; the token endpoint is
    /// `{login_base}/{tenant}/oauth2/v2.0/token`.
    pub fn login_base_url(&self) -> String {
        format!("http://{}/login", self.addr)
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.sim().log().to_vec()
    }

    /// Creates, updates and deletes (including those inside `$batch`), in order.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared
            .sim()
            .log()
            .iter()
            .filter(|r| r.is_write())
            .cloned()
            .collect()
    }

    /// Requests a client sent for a (tenant, budget) while a `Retry-After` it had been given
    /// for it had not yet elapsed. A well-behaved client makes this empty.
    pub fn requests_inside_retry_after(&self) -> Vec<RecordedRequest> {
        self.shared
            .sim()
            .log()
            .iter()
            .filter(|r| r.inside_retry_after)
            .cloned()
            .collect()
    }

    /// Forgets the request log (e.g. between a warm-up and a measured run).
    pub fn clear_requests(&self) {
        self.shared.sim().clear_log();
    }

    /// Queues a fault; faults apply in the order injected.
    pub fn inject(&self, fault: Fault) {
        self.shared.sim().inject(fault);
    }

    /// Removes every queued and permanent fault.
    pub fn clear_faults(&self) {
        self.shared.sim().clear_faults();
    }

    /// Makes every delta and delta-page token handed out so far answer `syncStateNotFound`.
    pub fn expire_delta_tokens(&self) {
        self.shared.sim().expire_delta_tokens();
    }

    /// Makes every access token handed out so far expired (Graph answers 401).
    pub fn expire_access_tokens(&self) {
        self.shared.sim().expire_access_tokens();
    }

    /// Adds `delay` of latency before every request is served (zero: none), e.g. to make a
    /// handler outlive its deadline.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.set_delay(delay);
    }

    /// Replaces the throttling limits (and refills every bucket).
    pub fn set_throttling(&self, throttling: Throttling) {
        self.shared.sim().set_throttling(throttling);
    }

    /// Changes a tenant between requests (add, change or remove objects; delta rounds see
    /// the changes). An unknown tenant id is created empty first.
    pub fn with_tenant<R>(&self, tenant_id: &str, f: impl FnOnce(&mut SimTenant) -> R) -> R {
        self.shared.sim().with_tenant(tenant_id, f)
    }
}

impl Drop for GraphSim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Open keep-alive connections would hold a graceful shutdown; nobody waits for it.
        self.task.abort();
    }
}
