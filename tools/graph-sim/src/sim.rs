//! The simulated service: state, and one synchronous function per kind of request. The HTTP
//! layer (`server.rs`) only moves bytes in and out; everything observable happens here, under
//! one lock, so the request log's order is the order requests were served.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::config::{Collection, SimConfig, SimTenant, Throttling};
use crate::cursor::{self, TokenKind};
use crate::expand::{self, Expansion};
use crate::group_policy;
use crate::inplace;
use crate::reply::{Reply, RequestIds, graph_error, sts_error};
use crate::rng::{Rng, fnv1a, mix, unit};
use crate::throttle::{Buckets, Budget};
use crate::{Fault, RecordedRequest};

/// `$batch` accepts at most this many requests.
pub(crate) const BATCH_LIMIT: usize = 20;

/// The scope the client-credentials grant must ask for.
const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

#[derive(Debug)]
struct Grant {
    tenant_id: String,
    client_id: String,
    expires: Instant,
}

/// Who is calling Graph, from the bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub tenant_id: String,
    pub client_id: String,
}

#[derive(Debug)]
struct ActiveFault {
    fault: Fault,
    /// `None`: applies forever.
    remaining: Option<u32>,
}

/// A tenant and what the simulator remembers about it.
#[derive(Debug)]
struct TenantState {
    tenant: SimTenant,
    /// Per collection, the append-only log of (sequence, object id) changes that delta
    /// rounds read; append-only so a round's pages stay stable while it is being read.
    changes: BTreeMap<String, Vec<(u64, String)>>,
    seq: u64,
    /// (collection, client-request-id) → id of the object that create made.
    creates: HashMap<(String, String), String>,
}

impl TenantState {
    fn new(tenant: SimTenant) -> TenantState {
        let mut state = TenantState {
            tenant,
            changes: BTreeMap::new(),
            seq: 0,
            creates: HashMap::new(),
        };
        let ids: Vec<(String, Vec<String>)> = state
            .tenant
            .collections
            .iter()
            .map(|(path, c)| {
                (
                    path.clone(),
                    c.objects.iter().filter_map(object_id).collect(),
                )
            })
            .collect();
        for (path, ids) in ids {
            for id in ids {
                state.note_change(&path, id);
            }
        }
        state
    }

    fn note_change(&mut self, path: &str, id: String) {
        self.seq += 1;
        let seq = self.seq;
        self.changes
            .entry(path.to_owned())
            .or_default()
            .push((seq, id));
    }

    /// Records what `with_tenant`'s closure changed, by comparing objects before and after.
    fn note_differences(&mut self, before: &BTreeMap<String, HashMap<String, Value>>) {
        let mut changed: Vec<(String, String)> = Vec::new();
        for (path, collection) in &self.tenant.collections {
            let old = before.get(path);
            let mut seen = HashSet::new();
            for object in &collection.objects {
                let Some(id) = object_id(object) else {
                    continue;
                };
                if old.and_then(|o| o.get(&id)) != Some(object) {
                    changed.push((path.clone(), id.clone()));
                }
                seen.insert(id);
            }
            for id in old.into_iter().flat_map(|o| o.keys()) {
                if !seen.contains(id) {
                    changed.push((path.clone(), id.clone()));
                }
            }
        }
        for (path, old) in before {
            if !self.tenant.collections.contains_key(path) {
                changed.extend(old.keys().map(|id| (path.clone(), id.clone())));
            }
        }
        for (path, id) in changed {
            self.note_change(&path, id);
        }
    }
}

fn object_id(object: &Value) -> Option<String> {
    object.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// One Graph call, from HTTP or from inside a `$batch`.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub version: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub consistency_eventual: bool,
    pub body: Option<Value>,
    pub ids: RequestIds,
}

/// Query options, decoded.
#[derive(Debug, Default)]
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: &str) -> Query {
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// An option by name; Graph accepts them with or without the `$`.
    fn get(&self, name: &str) -> Option<&str> {
        let bare = name.trim_start_matches('$');
        self.pairs
            .iter()
            .find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(bare))
            .map(|(_, v)| v.as_str())
    }

    /// The options to carry into a nextLink: all but the paging tokens.
    fn carried(&self) -> String {
        self.pairs
            .iter()
            .filter(|(k, _)| {
                let k = k.trim_start_matches('$').to_ascii_lowercase();
                k != "skiptoken" && k != "deltatoken"
            })
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn select(&self) -> Option<Vec<String>> {
        self.get("$select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }

    /// Navigation names in `$expand` (options in parentheses are accepted and ignored).
    fn expand(&self) -> Vec<String> {
        let Some(raw) = self.get("$expand") else {
            return Vec::new();
        };
        let mut names = Vec::new();
        let mut depth = 0usize;
        let mut current = String::new();
        for c in raw.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => names.push(std::mem::take(&mut current)),
                _ if depth == 0 => current.push(c),
                _ => {}
            }
        }
        names.push(current);
        names
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The resource-unit adjustment the directory applies for query options.
    fn directory_adjustment(&self) -> i64 {
        let mut cost = 0;
        if self.get("$select").is_some() {
            cost -= 1;
        }
        if self.get("$expand").is_some() {
            cost += 1;
        }
        if let Some(top) = self.get("$top").and_then(|t| t.parse::<u64>().ok())
            && top < 20
        {
            cost -= 1;
        }
        cost
    }
}

/// Which objects a list reads.
#[derive(Debug)]
enum Items {
    /// The collection itself.
    Collection,
    /// A navigation below one object, by its `sub_resources` key.
    Sub(String),
    /// A navigation the type has but this object does not use.
    Empty,
}

/// Percent-encodes a query component, keeping the characters OData links show literally.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$,'()*:@/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error family a path belongs to: the directory prefixes its codes with `Request_`.
fn directory(path: &str) -> bool {
    Budget::of_path(path) == Budget::Directory
}

/// The simulator's whole state.
#[derive(Debug)]
pub(crate) struct Sim {
    seed: u64,
    /// Key for the checksums in skip and delta tokens.
    token_key: u64,
    idempotent_creates: bool,
    empty_page_ratio: f64,
    throttling: Throttling,
    tenants: BTreeMap<String, TenantState>,
    grants: HashMap<String, Grant>,
    buckets: Buckets,
    /// (tenant, client, budget) → until when a `Retry-After` we gave forbids sending.
    windows: HashMap<(String, String, Budget), Instant>,
    faults: Vec<ActiveFault>,
    token_faults: Vec<(String, Value, u16)>,
    log: Vec<RecordedRequest>,
    delta_epoch: u64,
    /// Counts events that need a fresh deterministic choice (ids, throttles, lifetimes).
    events: u64,
    pub(crate) graph_base: String,
}

impl Sim {
    pub(crate) fn new(config: SimConfig) -> Sim {
        let tenants = config
            .tenants
            .into_iter()
            .map(|mut t| {
                t.tenant_id = t.tenant_id.to_lowercase();
                (t.tenant_id.clone(), TenantState::new(t))
            })
            .collect();
        Sim {
            seed: config.seed,
            token_key: mix(config.seed, fnv1a("skiptoken")) ^ (ulid::Ulid::new().random() as u64),
            idempotent_creates: config.idempotent_creates,
            empty_page_ratio: config.empty_page_ratio,
            throttling: config.throttling,
            tenants,
            grants: HashMap::new(),
            buckets: Buckets::default(),
            windows: HashMap::new(),
            faults: Vec::new(),
            token_faults: Vec::new(),
            log: Vec::new(),
            delta_epoch: 0,
            events: 0,
            graph_base: String::new(),
        }
    }

    fn next_rng(&mut self, label: &str) -> Rng {
        self.events += 1;
        Rng::derive(mix(self.seed, self.events), label)
    }

    pub(crate) fn new_ids(&mut self, client_request_id: Option<&str>) -> RequestIds {
        let request_id = self.next_rng("request-id").guid();
        RequestIds {
            client_request_id: client_request_id
                .map(str::to_owned)
                .unwrap_or_else(|| request_id.clone()),
            request_id,
        }
    }

    // ----- test-facing controls -------------------------------------------------------------

    pub(crate) fn log(&self) -> &[RecordedRequest] {
        &self.log
    }

    pub(crate) fn clear_log(&mut self) {
        self.log.clear();
    }

    pub(crate) fn record(&mut self, request: RecordedRequest) {
        self.log.push(request);
    }

    pub(crate) fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::TokenError {
                tenant_id,
                body,
                status,
            } => self
                .token_faults
                .push((tenant_id.to_lowercase(), body, status)),
            Fault::Forbidden { .. } => self.faults.push(ActiveFault {
                fault,
                remaining: None,
            }),
            Fault::Throttle { times, .. }
            | Fault::Unavailable { times, .. }
            | Fault::ErrorBody { times, .. } => {
                if times > 0 {
                    self.faults.push(ActiveFault {
                        fault,
                        remaining: Some(times),
                    });
                }
            }
        }
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
        self.token_faults.clear();
    }

    pub(crate) fn expire_delta_tokens(&mut self) {
        self.delta_epoch += 1;
    }

    pub(crate) fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for grant in self.grants.values_mut() {
            grant.expires = now;
        }
    }

    pub(crate) fn set_throttling(&mut self, throttling: Throttling) {
        self.throttling = throttling;
        self.buckets = Buckets::default();
    }

    pub(crate) fn has_tenant(&self, tenant_id: &str) -> bool {
        self.tenants.contains_key(&tenant_id.to_lowercase())
    }

    pub(crate) fn with_tenant<R>(
        &mut self,
        tenant_id: &str,
        f: impl FnOnce(&mut SimTenant) -> R,
    ) -> R {
        let tenant_id = tenant_id.to_lowercase();
        let state = self.tenants.entry(tenant_id.clone()).or_insert_with(|| {
            TenantState::new(SimTenant {
                tenant_id: tenant_id.clone(),
                ..SimTenant::default()
            })
        });
        let before: BTreeMap<String, HashMap<String, Value>> = state
            .tenant
            .collections
            .iter()
            .map(|(path, c)| {
                let objects = c
                    .objects
                    .iter()
                    .filter_map(|o| object_id(o).map(|id| (id, o.clone())))
                    .collect();
                (path.clone(), objects)
            })
            .collect();
        let result = f(&mut state.tenant);
        state.note_differences(&before);
        result
    }

    // ----- the token endpoint ---------------------------------------------------------------

    /// `POST {login}/{tenant}/oauth2/v2.0/token` with a form body. Returns the reply and the
    /// client id the form named (for the log).
    pub(crate) fn token(
        &mut self,
        method: &str,
        tenant_segment: &str,
        form: &[u8],
        ids: &RequestIds,
    ) -> (Reply, Option<String>) {
        let form: HashMap<String, String> = form_urlencoded::parse(form)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let client_id = form.get("client_id").cloned();
        let reply = self.token_reply(method, tenant_segment, &form, ids);
        (reply, client_id)
    }

    fn token_reply(
        &mut self,
        method: &str,
        tenant_segment: &str,
        form: &HashMap<String, String>,
        ids: &RequestIds,
    ) -> Reply {
        let tenant_id = tenant_segment.to_lowercase();
        if method != "POST" {
            return sts_error(
                400,
                "invalid_request",
                900_561,
                "The endpoint only accepts POST requests. Received a GET request.",
                ids,
            );
        }
        if let Some((_, body, status)) = self.token_faults.iter().find(|(t, _, _)| *t == tenant_id)
        {
            return Reply::json(*status, body.clone());
        }
        let Some(tenant) = self.tenants.get(&tenant_id) else {
            return sts_error(
                400,
                "invalid_request",
                90_002,
                &format!(
                    "Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
                ids,
            );
        };
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return sts_error(
                400,
                "unsupported_grant_type",
                70_003,
                "The app requested an unsupported grant type.",
                ids,
            );
        }
        let Some(client_id) = form.get("client_id") else {
            return sts_error(
                400,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
                ids,
            );
        };
        if form.get("scope").map(String::as_str) != Some(GRAPH_DEFAULT_SCOPE) {
            return sts_error(
                400,
                "invalid_scope",
                1_002_012,
                &format!(
                    "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                    form.get("scope").map(String::as_str).unwrap_or_default()
                ),
                ids,
            );
        }
        let Some(client) = tenant
            .tenant
            .clients
            .iter()
            .find(|c| c.client_id == *client_id)
        else {
            return sts_error(
                400,
                "unauthorized_client",
                700_016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
                ids,
            );
        };
        let Some(secret) = form.get("client_secret") else {
            return sts_error(
                401,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ids,
            );
        };
        if *secret != client.client_secret {
            return sts_error(
                401,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
                ids,
            );
        }
        if client.expired {
            return sts_error(
                401,
                "invalid_client",
                7_000_222,
                &format!(
                    "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
                ),
                ids,
            );
        }
        let client_id = client_id.clone();
        // Entra varies app-token lifetimes between 60 and 90 minutes.
        let lifetime = 3600 + self.next_rng("token-lifetime").below(1801);
        let token = access_token(&tenant_id, &client_id, lifetime);
        self.grants.insert(
            token.clone(),
            Grant {
                tenant_id,
                client_id,
                expires: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        Reply::json(
            200,
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }),
        )
    }

    /// The caller behind an `Authorization` header, or Graph's 401.
    pub(crate) fn authenticate(
        &self,
        authorization: Option<&str>,
        ids: &RequestIds,
    ) -> Result<Caller, Reply> {
        let unauthorized = |message: &str| {
            graph_error(401, "InvalidAuthenticationToken", message, ids).with_header(
                "WWW-Authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            )
        };
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(unauthorized("Access token is empty."));
        };
        let Some(grant) = self.grants.get(token) else {
            return Err(unauthorized(
                "IDX14100: JWT is not well formed, there are no dots (.).",
            ));
        };
        if grant.expires <= Instant::now() {
            return Err(unauthorized(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        Ok(Caller {
            tenant_id: grant.tenant_id.clone(),
            client_id: grant.client_id.clone(),
        })
    }

    // ----- Graph ----------------------------------------------------------------------------

    /// Serves one Graph call for an authenticated caller and logs it.
    pub(crate) fn graph(
        &mut self,
        caller: &Caller,
        call: Call<'_>,
        sent_client_request_id: Option<String>,
        batch_item_id: Option<String>,
    ) -> Reply {
        let now = Instant::now();
        let write = call.method != "GET";
        let query = Query::parse(call.query);
        let family = Budget::of_path(call.path);
        let draws = Budget::draws(call.path, write, query.directory_adjustment());
        let inside = std::iter::once(family)
            .chain(draws.iter().map(|(b, _)| *b))
            .any(|budget| {
                self.windows
                    .get(&(caller.tenant_id.clone(), caller.client_id.clone(), budget))
                    .is_some_and(|until| now < *until)
            });

        let (reply, budget) = self.graph_reply(caller, &call, &query, &draws, now);

        if matches!(reply.status, 429 | 503 | 504)
            && let Some(secs) = reply.retry_after_secs()
        {
            self.windows.insert(
                (caller.tenant_id.clone(), caller.client_id.clone(), budget),
                now + Duration::from_secs(secs),
            );
        }
        self.log.push(RecordedRequest {
            at: Utc::now(),
            method: call.method.to_owned(),
            path: format!("/graph/{}/{}", call.version, call.path),
            query: call.query.to_owned(),
            tenant_id: Some(caller.tenant_id.clone()),
            client_id: Some(caller.client_id.clone()),
            status: reply.status,
            retry_after: reply.retry_after_secs().map(Duration::from_secs),
            client_request_id: sent_client_request_id,
            budget: (family != Budget::Other).then_some(family),
            batch_item_id,
            inside_retry_after: inside,
        });
        reply
    }

    /// The reply and the budget a `Retry-After` in it applies to.
    fn graph_reply(
        &mut self,
        caller: &Caller,
        call: &Call<'_>,
        query: &Query,
        draws: &[(Budget, f64)],
        now: Instant,
    ) -> (Reply, Budget) {
        let family = Budget::of_path(call.path);
        if let Some(reply) = self.injected_fault(call) {
            return (reply, family);
        }
        if let Some(reply) = self.permission_denied(caller, call) {
            return (reply, family);
        }
        let limits = self.throttling.clone();
        if let Err(over) =
            self.buckets
                .take(&limits, &caller.tenant_id, &caller.client_id, draws, now)
        {
            return (
                self.throttled(call, over.budget, over.retry_after_secs),
                over.budget,
            );
        }
        let mut reply = self.route(caller, call, query);
        if family == Budget::Directory {
            let units = draws.first().map(|(_, cost)| *cost).unwrap_or(1.0);
            reply = reply.with_header("x-ms-resource-unit", format!("{units}"));
        }
        (reply, family)
    }

    fn injected_fault(&mut self, call: &Call<'_>) -> Option<Reply> {
        let index = self
            .faults
            .iter()
            .position(|f| fault_matches(&f.fault, call.path))?;
        let active = self.faults.get_mut(index)?;
        let fault = active.fault.clone();
        if let Some(remaining) = active.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.faults.remove(index);
            }
        }
        let ids = &call.ids;
        Some(match fault {
            Fault::Throttle {
                retry_after_secs, ..
            } => {
                let reply = graph_error(429, "TooManyRequests", "Too many requests.", ids);
                match retry_after_secs {
                    Some(secs) => reply.with_header("Retry-After", secs.to_string()),
                    None => reply,
                }
            }
            Fault::Unavailable {
                status,
                retry_after_secs,
                ..
            } => {
                let (code, message) = if status == 504 {
                    (
                        "GatewayTimeout",
                        "The gateway did not receive a timely response.",
                    )
                } else {
                    (
                        "serviceNotAvailable",
                        "The service is temporarily unavailable.",
                    )
                };
                let reply = graph_error(status, code, message, ids);
                match retry_after_secs {
                    Some(secs) => reply.with_header("Retry-After", secs.to_string()),
                    None => reply,
                }
            }
            Fault::Forbidden { .. } => graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                ids,
            ),
            Fault::ErrorBody { status, body, .. } => Reply::json(status, body),
            Fault::TokenError { .. } => return None,
        })
    }

    fn permission_denied(&self, caller: &Caller, call: &Call<'_>) -> Option<Reply> {
        let client = self
            .tenants
            .get(&caller.tenant_id)?
            .tenant
            .clients
            .iter()
            .find(|c| c.client_id == caller.client_id)?;
        if client.granted.is_empty() {
            return None;
        }
        let write = call.method != "GET";
        let accepted = accepted_permissions(call.path, write);
        if accepted.is_empty() || accepted.iter().any(|p| client.granted.contains(*p)) {
            return None;
        }
        Some(match Budget::of_path(call.path) {
            Budget::Intune => graph_error(
                403,
                "Forbidden",
                &format!(
                    "Application is not authorized to perform this operation. Application must have one of the following scopes: {} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {} - Url: https://fef.msub02.manage.microsoft.com/{}",
                    accepted.join(", "),
                    call.ids.request_id,
                    call.path
                ),
                &call.ids,
            ),
            _ => graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                &call.ids,
            ),
        })
    }

    fn throttled(&mut self, call: &Call<'_>, budget: Budget, retry_after_secs: u64) -> Reply {
        let intune = matches!(budget, Budget::Intune | Budget::IntuneWrites);
        // Intune documents a 429 that carries no Retry-After; half of its throttles do so.
        let without_retry_after = intune && self.next_rng("intune-429").chance(0.5);
        let message = if intune {
            format!(
                "{{\r\n  \"_version\": 3,\r\n  \"Message\": \"An error has occurred - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {} - Url: https://fef.msub02.manage.microsoft.com/{} - CustomApiErrorPhrase: TooManyRequests\",\r\n  \"CustomApiErrorPhrase\": \"TooManyRequests\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{{}}\"\r\n}}",
                call.ids.request_id, call.path
            )
        } else {
            format!("Too many requests. Please retry after {retry_after_secs} seconds.")
        };
        let reply = graph_error(429, "TooManyRequests", &message, &call.ids);
        if without_retry_after {
            reply
        } else {
            reply.with_header("Retry-After", retry_after_secs.to_string())
        }
    }

    // ----- routing within a tenant ----------------------------------------------------------

    fn route(&mut self, caller: &Caller, call: &Call<'_>, query: &Query) -> Reply {
        let ids = &call.ids;
        let dir = directory(call.path);
        let not_found_code = if dir {
            "Request_ResourceNotFound"
        } else {
            "ResourceNotFound"
        };
        let Some(state) = self.tenants.get(&caller.tenant_id) else {
            return graph_error(401, "InvalidAuthenticationToken", "Tenant is gone.", ids);
        };
        // Intune's audit log has its own filter rule (audit.rs).
        if call.method == "GET" && call.path == crate::audit::PATH {
            return crate::audit::list(&state.tenant, call.query, ids);
        }
        let Some((key, rest)) = resolve(&state.tenant, call.path) else {
            let segment = call.path.rsplit('/').next().unwrap_or_default();
            return graph_error(
                404,
                "ResourceNotFound",
                &format!("Resource not found for the segment '{segment}'."),
                ids,
            );
        };
        let Some(collection) = state.tenant.collections.get(&key) else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", ids);
        };
        if collection.beta_only && call.version == "v1.0" {
            let leaf = key.rsplit('/').next().unwrap_or_default();
            return graph_error(
                400,
                "BadRequest",
                &format!("Resource not found for the segment '{leaf}'."),
                ids,
            );
        }
        // Graph validates the query options before anything else (options.rs).
        if let Err(message) = crate::options::check(call.method, call.path, call.query) {
            return graph_error(400, "BadRequest", &message, ids);
        }
        let rest: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let method = call.method;
        if let Some(write) = inplace::Write::of(method, &key, &rest) {
            return self.in_place(caller, call, &key, &rest, write);
        }
        match (method, rest.as_slice()) {
            ("GET", []) => {
                let (page_size, max_top) = (collection.page_size, collection.max_top);
                let item_only = collection.item_only_fields.clone();
                self.list(
                    caller,
                    call,
                    query,
                    &key,
                    &key,
                    Items::Collection,
                    page_size,
                    max_top,
                    &item_only,
                )
            }
            ("GET", ["delta"]) if dir => self.delta(caller, call, query, &key),
            ("GET", [id]) => {
                let Some(object) = collection
                    .objects
                    .iter()
                    .find(|o| o.get("id").and_then(Value::as_str) == Some(*id))
                else {
                    return graph_error(404, not_found_code, &not_found_message(dir, id), ids);
                };
                let object =
                    match shape_with(object, collection, &key, &query.select(), &query.expand()) {
                        Ok(o) => o,
                        Err(message) => return graph_error(400, "BadRequest", &message, ids),
                    };
                let mut object = object;
                if let Some(map) = object.as_object_mut() {
                    map.insert(
                        "@odata.context".into(),
                        json!(format!(
                            "{}/{}/$metadata#{}/$entity",
                            self.graph_base, call.version, key
                        )),
                    );
                }
                Reply::json(200, object)
            }
            ("GET", [id, nav @ ..]) => {
                if !collection
                    .objects
                    .iter()
                    .any(|o| o.get("id").and_then(Value::as_str) == Some(*id))
                {
                    return graph_error(404, not_found_code, &not_found_message(dir, id), ids);
                }
                let sub_key = std::iter::once(*id)
                    .chain(nav.iter().copied())
                    .collect::<Vec<_>>()
                    .join("/");
                if collection.sub_resources.contains_key(&sub_key) {
                    let page = collection.sub_page_size;
                    let full = format!("{key}/{sub_key}");
                    let items = Items::Sub(sub_key);
                    return self.list(caller, call, query, &key, &full, items, page, 999, &[]);
                }
                if let Some((last, parent)) = nav.split_last()
                    && !parent.is_empty()
                {
                    let parent_key = std::iter::once(*id)
                        .chain(parent.iter().copied())
                        .collect::<Vec<_>>()
                        .join("/");
                    if let Some(item) =
                        collection.sub_resources.get(&parent_key).and_then(|items| {
                            items
                                .iter()
                                .find(|o| o.get("id").and_then(Value::as_str) == Some(*last))
                        })
                    {
                        return Reply::json(200, group_policy::hide_binds(item));
                    }
                    if collection.sub_resources.contains_key(&parent_key) {
                        return graph_error(
                            404,
                            not_found_code,
                            &not_found_message(dir, last),
                            ids,
                        );
                    }
                }
                if let [name] = nav
                    && supports_navigation(&key, collection, name)
                {
                    let full = format!("{key}/{sub_key}");
                    return self.list(caller, call, query, &key, &full, Items::Empty, 25, 999, &[]);
                }
                graph_error(
                    400,
                    "BadRequest",
                    &format!(
                        "Resource not found for the segment '{}'.",
                        nav.first().copied().unwrap_or_default()
                    ),
                    ids,
                )
            }
            ("POST", []) => self.create(caller, call, &key),
            ("POST", [id, "assign"]) => self.assign(caller, call, &key, id),
            ("POST", [id, nav @ ..]) => self.create_sub(caller, call, &key, id, nav),
            ("PATCH", [id]) => self.update(caller, call, &key, id),
            ("DELETE", [id]) => self.delete(caller, call, &key, id),
            ("DELETE", [id, nav @ .., last]) => self.delete_sub(caller, call, &key, id, nav, last),
            _ => graph_error(
                405,
                if dir {
                    "Request_BadRequest"
                } else {
                    "BadRequest"
                },
                &format!("The HTTP method '{method}' is not allowed on this resource."),
                ids,
            ),
        }
    }

    /// One page of a list: `$top`, `$skiptoken`, `$select`, `$expand`, `$count`, simple
    /// `$filter`, occasional empty pages.
    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        caller: &Caller,
        call: &Call<'_>,
        query: &Query,
        collection_key: &str,
        key: &str,
        items: Items,
        page_size: usize,
        max_top: usize,
        item_only: &[String],
    ) -> Reply {
        let nonce = self.next_rng("nonce").next_u64();
        let ids = &call.ids;
        let dir = directory(call.path);
        let bad = if dir {
            "Request_BadRequest"
        } else {
            "BadRequest"
        };
        let tenant = self.tenants.get(&caller.tenant_id).map(|t| &t.tenant);
        let collection = tenant.and_then(|t| t.collections.get(collection_key));
        // An administrative template's values expand their bindings (group_policy.rs).
        let nested = group_policy::Nested::of(collection_key, key);
        let nested_expand = match &nested {
            Some(n) => match n.check(query.get("$expand")) {
                Ok(e) => e,
                Err(message) => return graph_error(400, bad, &message, ids),
            },
            None => Vec::new(),
        };
        let catalog = nested.as_ref().and(tenant).map(group_policy::catalog_of);
        let sub_path = match &items {
            Items::Sub(sub_key) => sub_key.clone(),
            _ => String::new(),
        };
        let all: &[Value] = match (&items, collection) {
            (Items::Collection, Some(c)) => &c.objects,
            (Items::Sub(sub_key), Some(c)) => c
                .sub_resources
                .get(sub_key)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            _ => &[],
        };
        let whole_collection = matches!(items, Items::Collection);
        // Graph parses `$expand` before it reads: a refused name is refused on every page.
        if let (true, Some(c)) = (whole_collection, collection)
            && let Err(message) = expand::check(collection_key, c, &query.expand())
        {
            return graph_error(400, bad, &message, ids);
        }
        let page = match query.get("$top") {
            None => page_size.max(1),
            Some(raw) => match raw.parse::<usize>() {
                Ok(top) if top >= 1 && top <= max_top => top,
                Ok(top) if top > max_top && !dir => max_top,
                _ => {
                    return graph_error(
                        400,
                        bad,
                        &format!(
                            "Invalid page size specified: '{raw}'. Must be between 1 and {max_top} inclusive."
                        ),
                        ids,
                    );
                }
            },
        };
        let page = match expand::page_cap(collection_key, &query.expand()) {
            Some(cap) if whole_collection => page.min(cap),
            _ => page,
        };
        let advanced = query.get("$count").is_some() || query.get("$search").is_some();
        if dir && advanced && !call.consistency_eventual {
            return graph_error(
                400,
                bad,
                "$count and $search on directory objects need the ConsistencyLevel: eventual header.",
                ids,
            );
        }
        if query.get("$orderby").is_some() || query.get("$search").is_some() {
            return graph_error(
                400,
                "BadRequest",
                "graph-sim does not implement $orderby or $search.",
                ids,
            );
        }
        let items: Vec<&Value> = match query.get("$filter") {
            None => all.iter().collect(),
            Some(filter) => match Filter::parse(filter) {
                Some(f) => all.iter().filter(|o| f.matches(o)).collect(),
                None => {
                    return graph_error(
                        400,
                        bad,
                        &format!(
                            "graph-sim supports only \"p eq 'v'\", \"p eq true|false\" and \"startswith(p,'v')\" filters, not: {filter}"
                        ),
                        ids,
                    );
                }
            },
        };
        let path_hash = fnv1a(&format!("{}/{}", caller.tenant_id, key));
        let (offset, just_emptied) = match query.get("$skiptoken") {
            None => (0usize, false),
            Some(token) => match cursor::open(self.token_key, TokenKind::Page, token, 4) {
                Some(f) if f.first() == Some(&path_hash) => (
                    f.get(1).copied().unwrap_or_default() as usize,
                    f.get(2).copied().unwrap_or_default() == 1,
                ),
                _ => {
                    return graph_error(
                        400,
                        bad,
                        &format!("Invalid or expired $skiptoken: '{token}'."),
                        ids,
                    );
                }
            },
        };
        let empty = !just_emptied
            && offset < items.len()
            && unit(mix(mix(self.seed, path_hash), offset as u64)) < self.empty_page_ratio;
        let select = query.select();
        let expand = query.expand();
        let (values, next_offset) = if empty {
            (Vec::new(), offset)
        } else {
            let end = (offset + page).min(items.len());
            let mut values = Vec::with_capacity(end.saturating_sub(offset));
            for object in items.get(offset..end).unwrap_or_default() {
                let shaped = match (whole_collection, collection, &nested, &catalog) {
                    (true, Some(c), ..) => shape_with(object, c, collection_key, &select, &expand),
                    (false, Some(c), Some(n), Some(catalog)) => {
                        let expanded = n.shape(catalog, c, &sub_path, object, &nested_expand);
                        let select = select.clone().map(|mut fields| {
                            fields.extend(nested_expand.iter().map(|(name, _)| name.clone()));
                            fields
                        });
                        Ok(select_fields(&expanded, &select))
                    }
                    _ => Ok(select_fields(object, &select)),
                };
                match shaped {
                    Ok(mut o) => {
                        if let Some(map) = o.as_object_mut() {
                            for field in item_only {
                                map.remove(field);
                            }
                        }
                        values.push(o)
                    }
                    Err(message) => return graph_error(400, bad, &message, ids),
                }
            }
            (values, end)
        };
        let mut body = Map::new();
        let context = match &select {
            Some(fields) => format!("{key}({})", fields.join(",")),
            None => key.to_owned(),
        };
        body.insert(
            "@odata.context".into(),
            json!(format!(
                "{}/{}/$metadata#{context}",
                self.graph_base, call.version
            )),
        );
        if query
            .get("$count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
        {
            body.insert("@odata.count".into(), json!(items.len()));
        }
        if next_offset < items.len() {
            let token = cursor::seal(
                self.token_key,
                TokenKind::Page,
                &[path_hash, next_offset as u64, u64::from(empty), nonce],
            );
            body.insert(
                "@odata.nextLink".into(),
                json!(self.link(call.version, call.path, query, "$skiptoken", &token)),
            );
        }
        body.insert("value".into(), Value::Array(values));
        Reply::json(200, Value::Object(body))
    }

    fn link(&self, version: &str, path: &str, query: &Query, name: &str, token: &str) -> String {
        let carried = query.carried();
        let sep = if carried.is_empty() { "" } else { "&" };
        format!(
            "{}/{version}/{path}?{carried}{sep}{name}={token}",
            self.graph_base
        )
    }

    /// `GET {collection}/delta`: rounds of pages ending in a deltaLink; later rounds return
    /// only what changed, removals as `@removed`.
    fn delta(&mut self, caller: &Caller, call: &Call<'_>, query: &Query, key: &str) -> Reply {
        let ids = &call.ids;
        let path_hash = fnv1a(&format!("{}/{}/delta", caller.tenant_id, key));
        let sync_state_not_found = || {
            graph_error(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. Delta tokens may have expired; do a full synchronization.",
                ids,
            )
        };
        let Some(state) = self.tenants.get(&caller.tenant_id) else {
            return sync_state_not_found();
        };
        let current = state.seq;
        let (since, upto, offset) = if let Some(token) = query.get("$deltatoken") {
            if token.eq_ignore_ascii_case("latest") {
                (current, current, 0)
            } else {
                match cursor::open(self.token_key, TokenKind::DeltaLink, token, 4) {
                    Some(f)
                        if f.first() == Some(&path_hash) && f.get(2) == Some(&self.delta_epoch) =>
                    {
                        (f.get(1).copied().unwrap_or_default(), current, 0)
                    }
                    _ => return sync_state_not_found(),
                }
            }
        } else if let Some(token) = query.get("$skiptoken") {
            match cursor::open(self.token_key, TokenKind::DeltaPage, token, 7) {
                Some(f) if f.first() == Some(&path_hash) => {
                    if f.get(4) != Some(&self.delta_epoch) {
                        return sync_state_not_found();
                    }
                    (
                        f.get(1).copied().unwrap_or_default(),
                        f.get(2).copied().unwrap_or_default(),
                        f.get(3).copied().unwrap_or_default() as usize,
                    )
                }
                _ => {
                    return graph_error(
                        400,
                        "Request_BadRequest",
                        &format!("Invalid or expired $skiptoken: '{token}'."),
                        ids,
                    );
                }
            }
        } else {
            (0, current, 0)
        };
        let Some(collection) = state.tenant.collections.get(key) else {
            return sync_state_not_found();
        };
        // The changes of this round, each object once, at its last change in the round.
        let log = state
            .changes
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut last_at: HashMap<&str, usize> = HashMap::new();
        let window: Vec<&(u64, String)> = log
            .iter()
            .filter(|(s, _)| *s > since && *s <= upto)
            .collect();
        for (i, (_, id)) in window.iter().enumerate() {
            last_at.insert(id.as_str(), i);
        }
        let entries: Vec<&str> = window
            .iter()
            .enumerate()
            .filter(|(i, (_, id))| last_at.get(id.as_str()) == Some(i))
            .map(|(_, (_, id))| id.as_str())
            .collect();
        let page = collection.page_size.max(1);
        let end = (offset + page).min(entries.len());
        let select = query.select();
        let by_id: HashMap<&str, &Value> = collection
            .objects
            .iter()
            .filter_map(|o| o.get("id").and_then(Value::as_str).map(|id| (id, o)))
            .collect();
        let odata_type = format!(
            "#microsoft.graph.{}",
            crate::generate::singular(key.rsplit('/').next().unwrap_or(key))
        );
        let mut values = Vec::new();
        for id in entries.get(offset..end).unwrap_or_default() {
            match by_id.get(id) {
                Some(object) => values.push(select_fields(object, &select)),
                None if since > 0 => values.push(json!({
                    "@odata.type": odata_type,
                    "id": id,
                    "@removed": { "reason": "changed" }
                })),
                None => {}
            }
        }
        let more = end < entries.len();
        let epoch = self.delta_epoch;
        let nonce = self.next_rng("nonce").next_u64();
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            json!(format!(
                "{}/{}/$metadata#{key}",
                self.graph_base, call.version
            )),
        );
        if more {
            let token = cursor::seal(
                self.token_key,
                TokenKind::DeltaPage,
                &[path_hash, since, upto, end as u64, epoch, 0, nonce],
            );
            body.insert(
                "@odata.nextLink".into(),
                json!(self.link(call.version, call.path, query, "$skiptoken", &token)),
            );
        } else {
            let token = cursor::seal(
                self.token_key,
                TokenKind::DeltaLink,
                &[path_hash, upto, epoch, nonce],
            );
            body.insert(
                "@odata.deltaLink".into(),
                json!(self.link(call.version, call.path, query, "$deltatoken", &token)),
            );
        }
        body.insert("value".into(), Value::Array(values));
        Reply::json(200, Value::Object(body))
    }

    // ----- writes ---------------------------------------------------------------------------

    fn create(&mut self, caller: &Caller, call: &Call<'_>, key: &str) -> Reply {
        let ids = call.ids.clone();
        let Some(Value::Object(mut fields)) = call.body.clone() else {
            return graph_error(
                400,
                "BadRequest",
                "Empty Payload. JSON content expected.",
                &ids,
            );
        };
        if let Err(message) = crate::bodies::check_create(key, &fields) {
            return graph_error(400, "BadRequest", &message, &ids);
        }
        let idempotent = self.idempotent_creates;
        let client_request_id = ids.client_request_id.clone();
        // Inline definition values take their ids from the same stream.
        let mut value_ids = self.next_rng("object-id");
        let new_id = value_ids.guid();
        let context = format!(
            "{}/{}/$metadata#{key}/$entity",
            self.graph_base, call.version
        );
        let Some(state) = self.tenants.get_mut(&caller.tenant_id) else {
            return graph_error(401, "InvalidAuthenticationToken", "Tenant is gone.", &ids);
        };
        let replay_key = (key.to_owned(), client_request_id);
        if idempotent
            && let Some(existing) = state.creates.get(&replay_key)
            && let Some(object) = state.tenant.collections.get(key).and_then(|c| {
                c.objects
                    .iter()
                    .find(|o| o.get("id").and_then(Value::as_str) == Some(existing.as_str()))
            })
        {
            let mut object = object.clone();
            if let Some(map) = object.as_object_mut() {
                map.insert("@odata.context".into(), json!(context));
            }
            return Reply::json(201, object);
        }
        let now = intune_now();
        let id = if key == "deviceManagement/roleScopeTags" {
            state
                .tenant
                .collections
                .get(key)
                .map(|c| c.objects.len())
                .unwrap_or_default()
                .to_string()
        } else {
            new_id
        };
        fields.insert("id".into(), json!(id));
        fields.insert("createdDateTime".into(), json!(now));
        fields.insert("lastModifiedDateTime".into(), json!(now));
        if key.starts_with("deviceManagement/") && !fields.contains_key("version") {
            fields.insert("version".into(), json!(1));
        }
        // Assignments are not created by a POST of the object (Intune ignores them); settings
        // and scheduled actions are stored as the object's navigations.
        fields.remove("assignments");
        // A template's values sent inline bind their definitions as every value write does.
        let inline_values = match fields.remove("definitionValues") {
            Some(Value::Array(values)) if key == group_policy::TEMPLATES => {
                let catalog = group_policy::catalog_of(&state.tenant);
                let added = group_policy::Write::Added;
                if let Err(message) = values
                    .iter()
                    .try_for_each(|v| group_policy::check_value(&catalog, v, added))
                {
                    return graph_error(400, "BadRequest", &message, &ids);
                }
                values
            }
            Some(other) => {
                fields.insert("definitionValues".into(), other);
                Vec::new()
            }
            None => Vec::new(),
        };
        let Some(collection) = state.tenant.collections.get_mut(key) else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", &ids);
        };
        for value in &inline_values {
            let value_id = value_ids.guid();
            group_policy::store_value(collection, &id, value, &value_id, &mut || value_ids.guid());
        }
        for nav in ["settings", "scheduledActionsForRule", "definitionValues"] {
            if let Some(Value::Array(items)) = fields.remove(nav) {
                if nav == "settings" && fields.contains_key("settingCount") {
                    fields.insert("settingCount".into(), json!(items.len()));
                }
                let items = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut item)| {
                        if let Some(map) = item.as_object_mut()
                            && !map.contains_key("id")
                        {
                            map.insert("id".into(), json!(i.to_string()));
                        }
                        item
                    })
                    .collect();
                collection
                    .sub_resources
                    .insert(format!("{id}/{nav}"), items);
            }
        }
        let object = Value::Object(fields);
        collection.objects.push(object.clone());
        if idempotent {
            state.creates.insert(replay_key, id.clone());
        }
        state.note_change(key, id);
        let mut object = object;
        if let Some(map) = object.as_object_mut() {
            map.insert("@odata.context".into(), json!(context));
        }
        Reply::json(201, object)
    }

    fn create_sub(
        &mut self,
        caller: &Caller,
        call: &Call<'_>,
        key: &str,
        id: &str,
        nav: &[&str],
    ) -> Reply {
        let ids = call.ids.clone();
        let Some(Value::Object(mut fields)) = call.body.clone() else {
            return graph_error(
                400,
                "BadRequest",
                "Empty Payload. JSON content expected.",
                &ids,
            );
        };
        let mut rng = self.next_rng("object-id");
        let new_id = rng.guid();
        // An administrative template's values and their options bind what they configure.
        if key == group_policy::TEMPLATES
            && matches!(
                nav,
                ["definitionValues"] | ["definitionValues", _, "presentationValues"]
            )
        {
            let Some(state) = self.tenants.get_mut(&caller.tenant_id) else {
                return graph_error(401, "InvalidAuthenticationToken", "Tenant is gone.", &ids);
            };
            let body = Value::Object(fields);
            let created = match nav {
                [_, value, _] => group_policy::create_presentation_value(
                    &mut state.tenant,
                    id,
                    value,
                    &body,
                    &mut || rng.guid(),
                ),
                _ => group_policy::create_value(&mut state.tenant, id, &body, &mut || rng.guid()),
            };
            return match created {
                Ok(value) => Reply::json(201, value),
                Err((404, message)) => graph_error(404, "ResourceNotFound", &message, &ids),
                Err((status, message)) => graph_error(status, "BadRequest", &message, &ids),
            };
        }
        let Some(collection) = self
            .tenants
            .get_mut(&caller.tenant_id)
            .and_then(|s| s.tenant.collections.get_mut(key))
        else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", &ids);
        };
        if !collection
            .objects
            .iter()
            .any(|o| o.get("id").and_then(Value::as_str) == Some(id))
        {
            return graph_error(404, "ResourceNotFound", &not_found_message(false, id), &ids);
        }
        fields.entry("id").or_insert_with(|| json!(new_id));
        let sub_key = std::iter::once(id)
            .chain(nav.iter().copied())
            .collect::<Vec<_>>()
            .join("/");
        let object = Value::Object(fields);
        collection
            .sub_resources
            .entry(sub_key)
            .or_default()
            .push(object.clone());
        Reply::json(201, object)
    }

    /// Intune's `POST {collection}/{id}/assign`: replaces the object's assignments.
    fn assign(&mut self, caller: &Caller, call: &Call<'_>, key: &str, id: &str) -> Reply {
        let ids = call.ids.clone();
        let assignments = call
            .body
            .as_ref()
            .and_then(|b| {
                b.get("assignments")
                    .or_else(|| b.get("appProtectionPolicyAssignments"))
            })
            .and_then(Value::as_array)
            .cloned();
        let Some(assignments) = assignments else {
            return graph_error(
                400,
                "BadRequest",
                "The 'assignments' parameter is required.",
                &ids,
            );
        };
        let Some(collection) = self
            .tenants
            .get_mut(&caller.tenant_id)
            .and_then(|s| s.tenant.collections.get_mut(key))
        else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", &ids);
        };
        if !collection
            .objects
            .iter()
            .any(|o| o.get("id").and_then(Value::as_str) == Some(id))
        {
            return graph_error(404, "ResourceNotFound", &not_found_message(false, id), &ids);
        }
        let stored: Vec<Value> = assignments
            .into_iter()
            .map(|mut a| {
                let group = a
                    .pointer("/target/groupId")
                    .and_then(Value::as_str)
                    .unwrap_or("adadadad-808e-44e2-905a-0b7873a8a531")
                    .to_owned();
                if let Some(map) = a.as_object_mut() {
                    map.insert("id".into(), json!(format!("{id}_{group}")));
                }
                a
            })
            .collect();
        collection
            .sub_resources
            .insert(format!("{id}/assignments"), stored.clone());
        Reply::json(200, json!({ "value": stored }))
    }

    /// A write that rewrites what hangs below an object (`inplace.rs`).
    fn in_place(
        &mut self,
        caller: &Caller,
        call: &Call<'_>,
        key: &str,
        rest: &[&str],
        write: inplace::Write,
    ) -> Reply {
        let mut rng = self.next_rng("object-id");
        let Some(state) = self.tenants.get_mut(&caller.tenant_id) else {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Tenant is gone.",
                &call.ids,
            );
        };
        let catalog = if write == inplace::Write::UpdateDefinitionValues {
            group_policy::catalog_of(&state.tenant)
        } else {
            Collection::default()
        };
        let Some(collection) = state.tenant.collections.get_mut(key) else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", &call.ids);
        };
        let reply = inplace::apply(
            collection,
            &catalog,
            write,
            rest,
            call.body.as_ref(),
            &mut || rng.guid(),
            &call.ids,
        );
        if reply.status < 300
            && let Some(id) = rest.first()
        {
            state.note_change(key, (*id).to_owned());
        }
        reply
    }

    fn update(&mut self, caller: &Caller, call: &Call<'_>, key: &str, id: &str) -> Reply {
        let ids = call.ids.clone();
        let dir = directory(key);
        let Some(Value::Object(fields)) = call.body.clone() else {
            return graph_error(
                400,
                "BadRequest",
                "Empty Payload. JSON content expected.",
                &ids,
            );
        };
        let Some(state) = self.tenants.get_mut(&caller.tenant_id) else {
            return graph_error(401, "InvalidAuthenticationToken", "Tenant is gone.", &ids);
        };
        let Some(object) = state
            .tenant
            .collections
            .get_mut(key)
            .and_then(|c| {
                c.objects
                    .iter_mut()
                    .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
            })
            .and_then(Value::as_object_mut)
        else {
            return graph_error(
                404,
                if dir {
                    "Request_ResourceNotFound"
                } else {
                    "ResourceNotFound"
                },
                &not_found_message(dir, id),
                &ids,
            );
        };
        for (name, value) in fields {
            if name != "id" && name != "createdDateTime" {
                object.insert(name, value);
            }
        }
        if object.contains_key("lastModifiedDateTime") {
            object.insert("lastModifiedDateTime".into(), json!(intune_now()));
        }
        if let Some(version) = object.get("version").and_then(Value::as_u64) {
            object.insert("version".into(), json!(version + 1));
        }
        state.note_change(key, id.to_owned());
        Reply::no_content()
    }

    fn delete(&mut self, caller: &Caller, call: &Call<'_>, key: &str, id: &str) -> Reply {
        let ids = call.ids.clone();
        let dir = directory(key);
        let Some(state) = self.tenants.get_mut(&caller.tenant_id) else {
            return graph_error(401, "InvalidAuthenticationToken", "Tenant is gone.", &ids);
        };
        let Some(collection) = state.tenant.collections.get_mut(key) else {
            return graph_error(404, "ResourceNotFound", "Resource not found.", &ids);
        };
        let before = collection.objects.len();
        collection
            .objects
            .retain(|o| o.get("id").and_then(Value::as_str) != Some(id));
        if collection.objects.len() == before {
            return graph_error(
                404,
                if dir {
                    "Request_ResourceNotFound"
                } else {
                    "ResourceNotFound"
                },
                &not_found_message(dir, id),
                &ids,
            );
        }
        let prefix = format!("{id}/");
        collection
            .sub_resources
            .retain(|k, _| !k.starts_with(&prefix));
        state.note_change(key, id.to_owned());
        Reply::no_content()
    }

    fn delete_sub(
        &mut self,
        caller: &Caller,
        call: &Call<'_>,
        key: &str,
        id: &str,
        nav: &[&str],
        last: &str,
    ) -> Reply {
        let ids = call.ids.clone();
        let sub_key = std::iter::once(id)
            .chain(nav.iter().copied())
            .collect::<Vec<_>>()
            .join("/");
        let removed = self
            .tenants
            .get_mut(&caller.tenant_id)
            .and_then(|s| s.tenant.collections.get_mut(key))
            .and_then(|c| c.sub_resources.get_mut(&sub_key))
            .map(|items| {
                let before = items.len();
                items.retain(|o| o.get("id").and_then(Value::as_str) != Some(last));
                before != items.len()
            })
            .unwrap_or(false);
        if removed {
            Reply::no_content()
        } else {
            graph_error(
                404,
                "ResourceNotFound",
                &not_found_message(false, last),
                &ids,
            )
        }
    }

    // ----- $batch ---------------------------------------------------------------------------

    /// `POST /{version}/$batch`: validates the envelope, then serves each item as its own
    /// Graph call (each draws on its budget and is logged), answering in an order of its own,
    /// as Graph may.
    pub(crate) fn batch(
        &mut self,
        caller: &Caller,
        version: &str,
        body: &[u8],
        ids: &RequestIds,
    ) -> Reply {
        let bad = |message: &str| graph_error(400, "BadRequest", message, ids);
        let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
            return bad("Invalid batch payload format.");
        };
        let Some(requests) = envelope.get("requests").and_then(Value::as_array) else {
            return bad("Invalid batch payload format.");
        };
        if requests.is_empty() {
            return bad("Invalid batch payload format.");
        }
        if requests.len() > BATCH_LIMIT {
            return bad(&format!(
                "The number of requests in the batch exceeds the limit of {BATCH_LIMIT}."
            ));
        }
        let mut seen = HashSet::new();
        for request in requests {
            let (Some(id), Some(_), Some(_)) = (
                request.get("id").and_then(Value::as_str),
                request.get("method").and_then(Value::as_str),
                request.get("url").and_then(Value::as_str),
            ) else {
                return bad("Invalid batch payload format: each request needs id, method and url.");
            };
            if !seen.insert(id.to_owned()) {
                return bad("The batch contains duplicate request ids.");
            }
        }
        let mut responses = Vec::with_capacity(requests.len());
        for request in requests {
            let item_id = request
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let method = request
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_uppercase();
            let url = request
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let headers = request.get("headers").and_then(Value::as_object);
            let header = |name: &str| {
                headers.and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                        .map(str::to_owned)
                })
            };
            let sent_client_request_id = header("client-request-id");
            let item_ids = self.new_ids(sent_client_request_id.as_deref());
            let reply = if url.starts_with("http://") || url.starts_with("https://") {
                graph_error(
                    400,
                    "BadRequest",
                    "Invalid request URL: batch requests use URLs relative to the version.",
                    &item_ids,
                )
            } else {
                let url = url.trim_start_matches('/');
                let (path, query) = url.split_once('?').unwrap_or((url, ""));
                let call = Call {
                    method: &method,
                    version,
                    path,
                    query,
                    consistency_eventual: header("ConsistencyLevel")
                        .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
                    body: request.get("body").cloned(),
                    ids: item_ids.clone(),
                };
                self.graph(caller, call, sent_client_request_id, Some(item_id.clone()))
            };
            let mut headers = Map::new();
            if reply.body.is_some() {
                headers.insert("Content-Type".into(), json!(crate::reply::GRAPH_JSON));
            }
            headers.insert("Cache-Control".into(), json!("no-cache"));
            for (name, value) in &reply.headers {
                headers.insert(name.clone(), json!(value));
            }
            let mut item = Map::new();
            item.insert("id".into(), json!(item_id));
            item.insert("status".into(), json!(reply.status));
            item.insert("headers".into(), Value::Object(headers));
            if let Some(body) = reply.body {
                item.insert("body".into(), body);
            }
            responses.push(Value::Object(item));
        }
        // Graph does not promise the request order; neither do we (deterministically).
        let mut rng = self.next_rng("batch-order");
        for i in (1..responses.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            responses.swap(i, j);
        }
        Reply::json(200, json!({ "responses": responses }))
    }
}

/// The longest collection path that `path` lies in, and the rest of `path` below it.
fn resolve(tenant: &SimTenant, path: &str) -> Option<(String, String)> {
    tenant
        .collections
        .keys()
        .filter(|key| path == key.as_str() || path.starts_with(&format!("{key}/")))
        .max_by_key(|key| key.len())
        .map(|key| {
            (
                key.clone(),
                path[key.len()..].trim_start_matches('/').to_owned(),
            )
        })
}

fn fault_matches(fault: &Fault, path: &str) -> bool {
    let prefix = match fault {
        Fault::Throttle { path_prefix, .. }
        | Fault::Unavailable { path_prefix, .. }
        | Fault::Forbidden { path_prefix }
        | Fault::ErrorBody { path_prefix, .. } => path_prefix,
        Fault::TokenError { .. } => return false,
    };
    let prefix = prefix.trim_start_matches('/');
    let prefix = prefix
        .strip_prefix("v1.0/")
        .or_else(|| prefix.strip_prefix("beta/"))
        .unwrap_or(prefix);
    path.starts_with(prefix)
}

/// The application permissions any one of which allows the call (empty: none needed).
fn accepted_permissions(path: &str, write: bool) -> Vec<&'static str> {
    let leaf_of = |p: &str| p.split('/').nth(1).unwrap_or_default().to_owned();
    let first = path.split('/').next().unwrap_or_default();
    let pair = |read: &'static str, read_write: &'static str| {
        if write {
            vec![read_write]
        } else {
            vec![read, read_write]
        }
    };
    match first {
        "deviceManagement" => match leaf_of(path).as_str() {
            "roleDefinitions" | "roleScopeTags" | "roleAssignments" => pair(
                "DeviceManagementRBAC.Read.All",
                "DeviceManagementRBAC.ReadWrite.All",
            ),
            // https://learn.microsoft.com/en-us/graph/api/intune-auditing-auditevent-list
            "auditEvents" => pair(
                "DeviceManagementApps.Read.All",
                "DeviceManagementApps.ReadWrite.All",
            ),
            "deviceEnrollmentConfigurations"
            | "windowsAutopilotDeploymentProfiles"
            | "termsAndConditions"
            | "notificationMessageTemplates" => pair(
                "DeviceManagementServiceConfig.Read.All",
                "DeviceManagementServiceConfig.ReadWrite.All",
            ),
            "deviceManagementScripts"
            | "deviceShellScripts"
            | "deviceCustomAttributeShellScripts"
            | "deviceHealthScripts"
            | "deviceComplianceScripts" => {
                let mut p = pair(
                    "DeviceManagementConfiguration.Read.All",
                    "DeviceManagementConfiguration.ReadWrite.All",
                );
                p.extend(pair(
                    "DeviceManagementScripts.Read.All",
                    "DeviceManagementScripts.ReadWrite.All",
                ));
                p
            }
            _ => pair(
                "DeviceManagementConfiguration.Read.All",
                "DeviceManagementConfiguration.ReadWrite.All",
            ),
        },
        "deviceAppManagement" => pair(
            "DeviceManagementApps.Read.All",
            "DeviceManagementApps.ReadWrite.All",
        ),
        "identity" => {
            if write {
                vec!["Policy.ReadWrite.ConditionalAccess"]
            } else {
                vec!["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]
            }
        }
        "groups" => {
            if write {
                vec!["Group.ReadWrite.All", "Directory.ReadWrite.All"]
            } else {
                vec![
                    "Group.Read.All",
                    "Group.ReadWrite.All",
                    "Directory.Read.All",
                    "Directory.ReadWrite.All",
                ]
            }
        }
        "roleManagement" => {
            if write {
                vec!["RoleManagement.ReadWrite.Directory"]
            } else {
                vec![
                    "RoleManagement.Read.Directory",
                    "RoleManagement.Read.All",
                    "RoleManagement.ReadWrite.Directory",
                    "Directory.Read.All",
                ]
            }
        }
        "users" => {
            if write {
                vec!["User.ReadWrite.All", "Directory.ReadWrite.All"]
            } else {
                vec![
                    "User.Read.All",
                    "User.ReadWrite.All",
                    "Directory.Read.All",
                    "Directory.ReadWrite.All",
                ]
            }
        }
        _ => Vec::new(),
    }
}

fn not_found_message(directory: bool, id: &str) -> String {
    if directory {
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        )
    } else {
        format!("No entity with id '{id}' was found.")
    }
}

/// Whether objects of this collection have the navigation `name` (even if empty here).
fn supports_navigation(key: &str, collection: &Collection, name: &str) -> bool {
    expand::has_navigation(key, collection, name)
}

/// The object with its `$select` and `$expand` applied, as `expand.rs` rules.
fn shape_with(
    object: &Value,
    collection: &Collection,
    key: &str,
    select: &Option<Vec<String>>,
    expand: &[String],
) -> Result<Value, String> {
    let mut shaped = select_fields(object, select);
    let id = object.get("id").and_then(Value::as_str).unwrap_or_default();
    for name in expand {
        let nav_key = format!("{id}/{name}");
        let items = match expand::expansion(key, collection, name)? {
            Expansion::Inline => collection
                .sub_resources
                .get(&nav_key)
                .cloned()
                .unwrap_or_default(),
            Expansion::Empty => Vec::new(),
        };
        if let Some(map) = shaped.as_object_mut() {
            map.insert(name.clone(), Value::Array(items));
        }
    }
    Ok(shaped)
}

/// Only the selected properties, plus `id` and `@odata.type` (Graph keeps the type
/// annotation on polymorphic collections).
fn select_fields(object: &Value, select: &Option<Vec<String>>) -> Value {
    // A navigation a write bound is stored as its bind; Graph answers it only expanded.
    let object = &group_policy::hide_binds(object);
    let (Some(fields), Some(map)) = (select, object.as_object()) else {
        return object.clone();
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| {
            k.as_str() == "id" || k.as_str() == "@odata.type" || fields.iter().any(|f| f == *k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// The minimal `$filter` forms tenantops uses; anything else is refused loudly rather than
/// ignored (an ignored filter would return wrong data silently).
#[derive(Debug)]
enum Filter {
    Eq(String, Value),
    StartsWith(String, String),
}

impl Filter {
    fn parse(raw: &str) -> Option<Filter> {
        let raw = raw.trim();
        if let Some(inner) = raw
            .strip_prefix("startswith(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let (property, literal) = inner.split_once(',')?;
            return Some(Filter::StartsWith(
                property.trim().to_owned(),
                string_literal(literal.trim())?,
            ));
        }
        let (property, literal) = raw.split_once(" eq ")?;
        let literal = literal.trim();
        let value = match literal {
            "true" => json!(true),
            "false" => json!(false),
            "null" => Value::Null,
            _ => json!(string_literal(literal)?),
        };
        Some(Filter::Eq(property.trim().to_owned(), value))
    }

    fn matches(&self, object: &Value) -> bool {
        match self {
            Filter::Eq(property, value) => {
                let actual = object.get(property).unwrap_or(&Value::Null);
                match (actual, value) {
                    (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                    (a, b) => a == b,
                }
            }
            Filter::StartsWith(property, prefix) => object
                .get(property)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase())),
        }
    }
}

fn string_literal(s: &str) -> Option<String> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .map(|s| s.replace("''", "'"))
}

pub(crate) fn intune_now() -> String {
    format!("{}0Z", Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// A JWT-shaped bearer token. Clients must treat it as opaque; its random signature part
/// makes it unguessable, and the simulator only ever looks it up.
fn access_token(tenant_id: &str, client_id: &str, lifetime: u64) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"graph-sim"}"#);
    let now = Utc::now().timestamp();
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime as i64,
        "appid": client_id,
        "tid": tenant_id,
        "roles": [],
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = format!("{}{}", ulid::Ulid::new(), ulid::Ulid::new());
    let signature = URL_SAFE_NO_PAD.encode(signature);
    format!("{header}.{claims}.{signature}")
}
