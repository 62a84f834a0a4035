//! The OpenAPI document (`functions/api/openapi.json`, served at `GET /v1/openapi.json`) held
//! to the code, so that it cannot drift:
//! - it describes exactly the router's routes (`tenantops_api::ROUTES`), and that table is the
//!   router's match: every listed method is served, every other method on those paths is 405,
//!   and the match arms in router.rs name no path the table lacks;
//! - what the handlers answer validates against it: status documented, media type documented,
//!   body valid against the JSON Schema, for a success and a problem of every route.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tenantops_core::{RunId, TenantId, UserId, WorkspaceId};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::DEMO_COLLECTIONS;
use tenantops_tests::{ApiCall, Reply, TestStack};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&repo_file("functions/api/openapi.json")).expect("openapi.json is JSON")
}

/// "METHOD /path" for every operation in the document.
fn documented_routes(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.to_ascii_uppercase().as_str()) {
                out.insert(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    out
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once(' ').expect("route keys are `METHOD /path`")
}

/// A path template with its parameters blanked, so `{ws}` and a match binding `ws` compare.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "*" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_describes_exactly_the_routes_the_router_serves() {
    let doc = document();
    let documented = documented_routes(&doc);
    let served: BTreeSet<String> = tenantops_api::ROUTES
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        served.len(),
        tenantops_api::ROUTES.len(),
        "ROUTES lists a route twice"
    );
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not in openapi.json: {missing:#?}\nin openapi.json but not served: {extra:#?}"
    );

    // Public exactly where API Gateway has no authorizer; a bearer JWT everywhere else.
    assert_eq!(
        doc["openapi"].as_str().unwrap_or_default().get(..4),
        Some("3.1.")
    );
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    for key in tenantops_api::ROUTES {
        let (method, path) = split_key(key);
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        let public = op["security"] == json!([]);
        assert_eq!(
            public,
            tenantops_api::PUBLIC_ROUTES.contains(key),
            "{key}: `security: []` in the document iff it is a public route"
        );
        let responses = op["responses"].as_object().expect("responses");
        if !public {
            assert!(responses.contains_key("401"), "{key}: 401 undocumented");
        }
        // Every path parameter of the template is declared, and no other.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| resolve(&doc, p))
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_template, "{key}: path parameters");
    }
}

/// Every `$ref` resolves, operation ids are unique (links name them), and every link names
/// an operation of the document.
#[test]
fn the_documents_references_and_operation_ids_hold_together() {
    let doc = document();
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        assert!(
            r.starts_with('#') && doc.pointer(&r[1..]).is_some(),
            "dangling $ref {r}"
        );
    }
    let linked: Vec<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|ops| ops.values())
        .filter_map(|op| op["responses"].as_object())
        .flat_map(|responses| responses.values())
        .filter_map(|r| r["links"].as_object())
        .flat_map(|links| links.values())
        .map(|l| l["operationId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!linked.is_empty(), "the document has no links");
    let mut ids = BTreeSet::new();
    for key in tenantops_api::ROUTES {
        let (method, path) = split_key(key);
        let id = doc["paths"][path][method.to_ascii_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} has no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
    }
    for id in &linked {
        assert!(ids.contains(id), "a link names the unknown operation {id}");
    }
}

/// The route table against the match itself: a path pattern in router.rs that ROUTES does
/// not list (or the other way round) fails here, whatever the methods.
/// The fields of a type's params struct, as serde reads them. The match is exhaustive: a new
/// operation type does not compile here until its params are named.
fn param_fields(t: tenantops_core::OperationType) -> &'static [&'static str] {
    use serde_aux::serde_introspection::serde_introspect as fields;
    use tenantops_core::OperationType as T;
    use tenantops_core::params::*;
    match t {
        T::InventorySync => fields::<InventorySyncParams>(),
        T::DirectoryGroupsSync => fields::<DirectoryGroupsSyncParams>(),
        T::DirectoryRoleDefinitionsSync => fields::<DirectoryRoleDefinitionsSyncParams>(),
        T::ProviderConnectionVerify => fields::<ProviderConnectionVerifyParams>(),
        T::BackupScheduleRunNow => fields::<BackupRunNowParams>(),
        T::BackupScheduleRetry => fields::<BackupRetryParams>(),
        T::BackupScheduleScheduled => fields::<BackupScheduledParams>(),
        T::RestorePreview => fields::<RestorePreviewParams>(),
        T::RestoreExecute => fields::<RestoreExecuteParams>(),
        T::DriftCheck => fields::<DriftCheckParams>(),
        T::DriftScheduled => fields::<DriftScheduledParams>(),
    }
}

/// The document's `OperationType` enum is the registry, and `StartRequest`'s `oneOf` has one
/// branch per type the operations route starts, whose params are that type's params struct.
#[test]
fn the_documents_tenant_tag_rule_is_the_codes() {
    use tenantops_core::tag::{MAX_TAG_CHARS, MAX_TAGS, TAG_PATTERN};
    let doc = document();
    let tag = &doc["components"]["schemas"]["TenantTag"];
    assert_eq!(tag["pattern"], TAG_PATTERN);
    assert_eq!(tag["maxLength"], MAX_TAG_CHARS);
    assert_eq!(
        doc["components"]["schemas"]["PatchTenant"]["properties"]["tags"]["maxItems"],
        MAX_TAGS
    );
}

#[test]
fn the_documents_operation_types_are_the_registrys() {
    use tenantops_core::OperationType;
    use tenantops_core::operation::StartSurface;
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let documented: Vec<&str> = schemas["OperationType"]["enum"]
        .as_array()
        .expect("OperationType is an enum")
        .iter()
        .map(|v| v.as_str().expect("names are strings"))
        .collect();
    let registry: Vec<&str> = OperationType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        documented, registry,
        "OperationType's enum, in registry order"
    );

    let mut startable = BTreeMap::new();
    for branch in schemas["StartRequest"]["oneOf"].as_array().expect("oneOf") {
        let name = branch["properties"]["type"]["const"]
            .as_str()
            .expect("each branch names its type");
        let params: BTreeSet<String> = branch["properties"]["params"]["properties"]
            .as_object()
            .expect("each branch describes its params")
            .keys()
            .cloned()
            .collect();
        assert!(
            startable.insert(name.to_owned(), params).is_none(),
            "{name} twice"
        );
    }
    for t in OperationType::ALL {
        let here = startable.remove(t.as_str());
        if t.spec().start_surface != StartSurface::OperationsRoute {
            assert!(here.is_none(), "{t} does not start on the operations route");
            continue;
        }
        let documented = here.unwrap_or_else(|| panic!("{t} has no StartRequest branch"));
        let fields: BTreeSet<String> = param_fields(t).iter().map(|f| f.to_string()).collect();
        assert_eq!(
            documented, fields,
            "{t}: documented params vs its params struct"
        );
    }
    assert!(
        startable.is_empty(),
        "branches for unknown types: {startable:?}"
    );
}

#[test]
fn the_route_table_names_every_path_the_router_matches() {
    let source = repo_file("functions/api/src/router.rs");
    let body = &source[source.find("async fn route(").expect("fn route")..];
    let mut matched = BTreeSet::new();
    // Every slice pattern `[...] =>` whose first element is "v1", however rustfmt wrapped it.
    for (start, _) in body.match_indices('[') {
        let Some(len) = body[start..].find(']') else {
            continue;
        };
        if !body[start + len + 1..].trim_start().starts_with("=>") {
            continue;
        }
        let segments: Vec<String> = body[start + 1..start + len]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(literal) => literal.to_owned(),
                    None => "*".to_owned(),
                },
            )
            .collect();
        if segments.first().map(String::as_str) == Some("v1") {
            matched.insert(format!("/{}", segments.join("/")));
        }
    }
    let listed: BTreeSet<String> = tenantops_api::ROUTES
        .iter()
        .map(|k| shape(split_key(k).1))
        .collect();
    assert!(
        matched.len() > 10,
        "the router.rs parse found too few patterns: {matched:#?}"
    );
    assert_eq!(matched, listed, "router.rs match arms vs ROUTES");
}

/// Validates responses against the document; remembers which statuses each route showed.
struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, jsonschema::Validator>>,
    seen: Mutex<BTreeMap<&'static str, BTreeSet<u16>>>,
    violations: Mutex<Vec<String>>,
}

/// Follows one `$ref` within the document.
fn resolve<'d>(doc: &'d Value, v: &'d Value) -> &'d Value {
    match v["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

impl Contract {
    fn new() -> Self {
        Contract {
            doc: document(),
            validators: Mutex::new(HashMap::new()),
            seen: Mutex::new(BTreeMap::new()),
            violations: Mutex::new(Vec::new()),
        }
    }

    /// What is wrong with `reply` as an answer of `key`, if anything.
    fn violation(&self, key: &str, reply: &Reply) -> Option<String> {
        let (method, path) = split_key(key);
        let op = &self.doc["paths"][path][method.to_ascii_lowercase()];
        let Some(response) = op["responses"].get(reply.status.to_string()) else {
            return Some(format!("status {} is not documented", reply.status));
        };
        let response = resolve(&self.doc, response);
        let Some(content) = response.get("content") else {
            return (!reply.body.is_null())
                .then(|| format!("{} documents no body, got {}", reply.status, reply.body));
        };
        let media = reply
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let Some(schema) = content.get(media).map(|c| &c["schema"]) else {
            return Some(format!(
                "{} is documented as {:?}, answered as {media:?}",
                reply.status,
                content.as_object().map(|c| c.keys().collect::<Vec<_>>())
            ));
        };
        let cache_key = format!("{key} {} {media}", reply.status);
        let mut validators = self.validators.lock().unwrap();
        let validator = validators.entry(cache_key).or_insert_with(|| {
            // The schema with the document's components beside it, so that its
            // `#/components/schemas/...` references resolve.
            let mut root = schema.clone();
            if let Some(obj) = root.as_object_mut() {
                obj.insert("components".into(), self.doc["components"].clone());
            }
            jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("{key} {}: schema does not compile: {e}", reply.status))
        });
        let errors: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        (!errors.is_empty()).then(|| format!("{} body: {errors:#?}\n{}", reply.status, reply.body))
    }

    fn record(&self, key: &'static str, reply: &Reply) {
        assert!(
            tenantops_api::ROUTES.contains(&key),
            "{key} is not in ROUTES"
        );
        self.seen
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .insert(reply.status);
        if let Some(v) = self.violation(key, reply) {
            self.violations.lock().unwrap().push(format!("{key}: {v}"));
        }
    }
}

/// Calls routes by their key and checks every answer against the contract.
struct Client<'s> {
    stack: &'s TestStack,
    contract: Contract,
}

impl<'s> Client<'s> {
    /// The call for `key` with its path parameters filled in order.
    fn req(&self, key: &'static str, args: &[&dyn std::fmt::Display]) -> ApiCall<'s> {
        let (method, template) = split_key(key);
        let mut args = args.iter();
        let path: Vec<String> = template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    args.next()
                        .unwrap_or_else(|| panic!("{key}: too few path arguments"))
                        .to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect();
        assert!(args.next().is_none(), "{key}: too many path arguments");
        ApiCall {
            method,
            ..ApiCall::get(path.join("/"))
        }
    }

    async fn send(&self, key: &'static str, call: ApiCall<'_>) -> Reply {
        let reply = self.stack.call(call).await;
        self.contract.record(key, &reply);
        reply
    }

    /// `send`, asserting the status.
    async fn expect(&self, key: &'static str, call: ApiCall<'_>, status: u16) -> Reply {
        let reply = self.send(key, call).await;
        assert_eq!(reply.status, status, "{key}: {}", reply.body);
        reply
    }
}

fn with_body<'a>(call: ApiCall<'a>, body: Value) -> ApiCall<'a> {
    ApiCall {
        body: Some(body.to_string()),
        ..call
    }
}

fn with_query<'a>(call: ApiCall<'a>, query: &str) -> ApiCall<'a> {
    ApiCall {
        path: format!("{}?{query}", call.path),
        ..call
    }
}

fn fresh_guid() -> String {
    let u = ulid::Ulid::new().0;
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[tokio::test]
async fn the_document_is_served_without_a_token_exactly_as_checked_in() {
    let stack = TestStack::new().await;
    let reply = stack.call(ApiCall::get("/v1/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body, document());
}

/// Every method ROUTES lists reaches its handler (never `route.not_found` or
/// `method.not_allowed`); every other method on the same paths is a 405. Ids are fresh, so
/// nothing is found and nothing changes. Every answer is checked against the document too.
#[tokio::test]
async fn every_listed_route_is_served_and_other_methods_on_its_path_are_405() {
    let stack = TestStack::new().await;
    let contract = Contract::new();
    let owner = &stack.users().owner;
    let paths: BTreeSet<&str> = tenantops_api::ROUTES
        .iter()
        .map(|k| split_key(k).1)
        .collect();
    for path in paths {
        let concrete: Vec<String> = path
            .split('/')
            .map(|s| match s {
                "{user}" => "someone-else".to_owned(),
                s if s.starts_with('{') => ulid::Ulid::new().to_string(),
                s => s.to_owned(),
            })
            .collect();
        let concrete = concrete.join("/");
        for method in METHODS {
            let key = format!("{method} {path}");
            let call = ApiCall {
                method,
                ..ApiCall::get(concrete.clone())
            };
            // The system plane exists for platform operators only.
            let call = if path.starts_with("/v1/system/") {
                call.with_token(stack.platform_token(&stack.users().platform))
            } else {
                call.by(owner)
            };
            let reply = stack.call(call).await;
            match tenantops_api::ROUTES.iter().find(|k| **k == key) {
                Some(listed) => {
                    assert!(
                        !["route.not_found", "method.not_allowed"].contains(&reply.code()),
                        "{key} is listed but not served: {} {}",
                        reply.status,
                        reply.body
                    );
                    contract.record(listed, &reply);
                }
                None => {
                    assert_eq!(
                        (reply.status, reply.code()),
                        (405, "method.not_allowed"),
                        "{key} is not listed but answered {}",
                        reply.body
                    );
                    // RFC 9110: a 405 names the methods the path does have, exactly those
                    // ROUTES lists for it.
                    let listed: Vec<&str> = METHODS
                        .iter()
                        .copied()
                        .filter(|m| tenantops_api::ROUTES.contains(&format!("{m} {path}").as_str()))
                        .collect();
                    let mut allow: Vec<&str> = reply
                        .header("allow")
                        .unwrap_or_else(|| panic!("{key}: a 405 without Allow"))
                        .split(", ")
                        .collect();
                    allow.sort_unstable();
                    let mut want = listed.clone();
                    want.sort_unstable();
                    assert_eq!(allow, want, "{key}: Allow");
                }
            }
        }
    }
    let violations = contract.violations.into_inner().unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

/// A walk through every route, successes and problems, each answer validated against the
/// document; at the end every route must have shown a success and (unless it is public) a
/// client error.
#[tokio::test]
async fn every_route_answers_as_the_document_says() {
    let stack = TestStack::new().await;
    let c = Client {
        stack: &stack,
        contract: Contract::new(),
    };
    let users = stack.users();
    let (owner, readonly, outsider) = (&users.owner, &users.readonly, &users.outsider);
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let nobody_ws = WorkspaceId::new();
    let nobody_tenant = TenantId::new();

    // Public routes.
    c.expect("GET /v1/health", c.req("GET /v1/health", &[]), 200)
        .await;
    let doc = c
        .expect(
            "GET /v1/openapi.json",
            c.req("GET /v1/openapi.json", &[]),
            200,
        )
        .await;
    assert_eq!(doc.body, c.contract.doc);

    // Workspaces and members.
    const CREATE_WS: &str = "POST /v1/workspaces";
    let created = c
        .expect(
            CREATE_WS,
            with_body(c.req(CREATE_WS, &[]), json!({"name": "Northwind MSP"})).by(owner),
            201,
        )
        .await;
    let new_ws: WorkspaceId = created.body["workspace"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    c.expect(
        CREATE_WS,
        with_body(c.req(CREATE_WS, &[]), json!({"name": ""})).by(owner),
        422,
    )
    .await;
    // An array of the fields in order is not an object (serde alone would take it).
    c.expect(
        CREATE_WS,
        with_body(c.req(CREATE_WS, &[]), json!(["Northwind MSP"])).by(owner),
        422,
    )
    .await;
    let mut malformed = c.req(CREATE_WS, &[]).by(owner);
    malformed.body = Some("{\"name\":".into());
    c.expect(CREATE_WS, malformed, 400).await;
    let mut text = with_body(c.req(CREATE_WS, &[]), json!({"name": "x"})).by(owner);
    text.headers.push(("content-type", "text/plain".into()));
    c.expect(CREATE_WS, text, 415).await;
    let mut huge = c.req(CREATE_WS, &[]).by(owner);
    huge.body = Some(format!(
        "{{\"name\": \"{}\"}}",
        "x".repeat(tenantops_api::MAX_BODY_BYTES)
    ));
    c.expect(CREATE_WS, huge, 413).await;

    const LIST_WS: &str = "GET /v1/workspaces";
    c.expect(LIST_WS, c.req(LIST_WS, &[]).by(owner), 200).await;
    c.expect(LIST_WS, c.req(LIST_WS, &[]), 401).await;

    const MEMBERS: &str = "GET /v1/workspaces/{ws}/members";
    c.expect(MEMBERS, c.req(MEMBERS, &[&new_ws]).by(owner), 200)
        .await;
    c.expect(MEMBERS, c.req(MEMBERS, &[&new_ws]).by(outsider), 404)
        .await;

    const PUT_MEMBER: &str = "PUT /v1/workspaces/{ws}/members/{user}";
    let member: UserId = "openapi-operator".parse().unwrap();
    let put = |role: &str| {
        with_body(
            c.req(PUT_MEMBER, &[&new_ws, &member]),
            json!({"role": role}),
        )
    };
    c.expect(PUT_MEMBER, put("operator").by(owner), 201).await;
    c.expect(PUT_MEMBER, put("operator").by(owner), 200).await;
    c.expect(PUT_MEMBER, put("manager").by(owner), 200).await;
    c.expect(PUT_MEMBER, put("boss").by(owner), 422).await;
    c.expect(PUT_MEMBER, put("readonly").by(outsider), 404)
        .await;
    c.expect(
        PUT_MEMBER,
        with_body(
            c.req(PUT_MEMBER, &[&ws, &member]),
            json!({"role": "readonly"}),
        )
        .by(readonly),
        403,
    )
    .await;

    const DELETE_MEMBER: &str = "DELETE /v1/workspaces/{ws}/members/{user}";
    let delete = || c.req(DELETE_MEMBER, &[&new_ws, &member]).by(owner);
    c.expect(DELETE_MEMBER, delete(), 204).await;
    c.expect(DELETE_MEMBER, delete(), 404).await;
    c.expect(
        DELETE_MEMBER,
        c.req(DELETE_MEMBER, &[&new_ws, owner]).by(owner),
        409,
    )
    .await;

    // Tenants and their provider connection.
    const CREATE_TENANT: &str = "POST /v1/workspaces/{ws}/tenants";
    let entra = fresh_guid();
    let new_tenant = c
        .expect(
            CREATE_TENANT,
            with_body(
                c.req(CREATE_TENANT, &[&new_ws]),
                json!({"entra_tenant_id": entra, "display_name": "Northwind Traders"}),
            )
            .by(owner),
            201,
        )
        .await;
    let new_tenant: TenantId = new_tenant.body["tenant"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    c.expect(
        CREATE_TENANT,
        with_body(
            c.req(CREATE_TENANT, &[&new_ws]),
            json!({"entra_tenant_id": entra, "display_name": "Again"}),
        )
        .by(owner),
        409,
    )
    .await;
    c.expect(
        CREATE_TENANT,
        with_body(
            c.req(CREATE_TENANT, &[&new_ws]),
            json!({"entra_tenant_id": "not-a-guid", "display_name": "X"}),
        )
        .by(owner),
        422,
    )
    .await;
    c.expect(
        CREATE_TENANT,
        with_body(
            c.req(CREATE_TENANT, &[&ws]),
            json!({"entra_tenant_id": fresh_guid(), "display_name": "X"}),
        )
        .by(readonly),
        403,
    )
    .await;

    const LIST_TENANTS: &str = "GET /v1/workspaces/{ws}/tenants";
    c.expect(LIST_TENANTS, c.req(LIST_TENANTS, &[&ws]).by(owner), 200)
        .await;
    c.expect(
        LIST_TENANTS,
        c.req(LIST_TENANTS, &[&nobody_ws]).by(owner),
        404,
    )
    .await;

    const TENANT: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}";
    c.expect(TENANT, c.req(TENANT, &[&ws, &tenant]).by(readonly), 200)
        .await;
    c.expect(TENANT, c.req(TENANT, &[&ws, &nobody_tenant]).by(owner), 404)
        .await;

    const RENAME: &str = "PATCH /v1/workspaces/{ws}/tenants/{tenant}";
    let rename = |name: Value| {
        with_body(
            c.req(RENAME, &[&new_ws, &new_tenant]),
            json!({ "display_name": name }),
        )
    };
    c.expect(RENAME, rename(json!("Northwind Traders EU")).by(owner), 200)
        .await;
    c.expect(RENAME, rename(json!(5)).by(owner), 422).await;

    const PUT_CONNECTION: &str = "PUT /v1/workspaces/{ws}/tenants/{tenant}/provider-connection";
    let connection = |secret: Option<&str>| {
        let mut body = json!({"client_id": fresh_guid()});
        if let Some(s) = secret {
            body["client_secret"] = json!(s);
            body["secret_expires_at"] = json!("2030-01-01T00:00:00Z");
        }
        with_body(c.req(PUT_CONNECTION, &[&new_ws, &new_tenant]), body)
    };
    const CONNECTION: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/provider-connection";
    c.expect(
        CONNECTION,
        c.req(CONNECTION, &[&new_ws, &new_tenant]).by(owner),
        404,
    )
    .await;
    c.expect(PUT_CONNECTION, connection(Some("s3cret")).by(owner), 201)
        .await;
    c.expect(PUT_CONNECTION, connection(Some("rotated")).by(owner), 200)
        .await;
    c.expect(PUT_CONNECTION, connection(None).by(owner), 422)
        .await;
    c.expect(
        CONNECTION,
        c.req(CONNECTION, &[&new_ws, &new_tenant]).by(owner),
        200,
    )
    .await;

    const ONBOARDING: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/onboarding";
    c.expect(
        ONBOARDING,
        c.req(ONBOARDING, &[&new_ws, &new_tenant]).by(owner),
        200,
    )
    .await;
    c.expect(
        ONBOARDING,
        c.req(ONBOARDING, &[&ws, &tenant]).by(outsider),
        404,
    )
    .await;

    // Runs, then the worker fills the caches the read routes serve.
    let worker = stack
        .worker(
            &DEMO_COLLECTIONS.iter().map(|p| (*p, 3)).collect::<Vec<_>>(),
            policy(),
        )
        .await;
    const START: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/operations";
    let start = |body: Value| with_body(c.req(START, &[&ws, &tenant]), body);
    let run = c
        .expect(
            START,
            start(json!({"type": "inventory.sync"})).by(owner),
            202,
        )
        .await
        .run_id();
    c.expect(
        START,
        start(json!({"type": "inventory.sync"})).by(owner),
        200,
    )
    .await;
    let mut queued = None;
    for t in [
        "directory_groups.sync",
        "directory_role_definitions.sync",
        "provider_connection.verify",
    ] {
        let started = c
            .expect(START, start(json!({ "type": t })).by(owner), 202)
            .await;
        queued = Some(started.run_id());
    }
    let queued = queued.unwrap();
    const CANCEL: &str = "POST /v1/operations/{run}/cancel";
    c.expect(CANCEL, c.req(CANCEL, &[&queued]).by(readonly), 403)
        .await;
    c.expect(CANCEL, c.req(CANCEL, &[&queued]).by(outsider), 404)
        .await;
    let cancelled = c
        .expect(CANCEL, c.req(CANCEL, &[&queued]).by(owner), 200)
        .await;
    assert_eq!(
        cancelled.body["run"]["outcome"], "cancelled",
        "{}",
        cancelled.body
    );
    // A running run (claimed as a worker would) gets a cancel request: 202.
    let running = c
        .expect(
            START,
            start(json!({ "type": "provider_connection.verify" })).by(owner),
            202,
        )
        .await
        .run_id();
    let claimed = stack.run(&running).await;
    let claim = tenantops_core::Transition::Claim {
        now: chrono::Utc::now(),
        lease: chrono::Duration::minutes(5),
    };
    stack
        .store()
        .transition_as(&claimed, Some("openapi-worker"), &claim)
        .await
        .unwrap();
    let requested = c
        .expect(CANCEL, c.req(CANCEL, &[&running]).by(owner), 202)
        .await;
    assert!(requested.body["run"]["cancel_requested_at"].is_string());
    // Finished as its worker would at its checkpoint, so the queue's message finds it done.
    stack
        .finish(&running, tenantops_core::Outcome::Cancelled)
        .await;
    c.expect(START, start(json!({"type": "nope"})).by(owner), 422)
        .await;
    c.expect(
        START,
        start(json!({"type": "inventory.sync"})).by(readonly),
        403,
    )
    .await;
    c.expect(
        START,
        start(json!({"type": "backup_schedule.run_now"}))
            .by(owner)
            .header("idempotency-key", "bad key with spaces"),
        400,
    )
    .await;

    const RUN: &str = "GET /v1/operations/{run}";
    c.expect(RUN, c.req(RUN, &[&run]).by(owner), 200).await;
    worker.drain().await;
    let done = c.expect(RUN, c.req(RUN, &[&run]).by(owner), 200).await;
    assert_eq!(done.body["run"]["status"], "completed", "{}", done.body);
    c.expect(CANCEL, c.req(CANCEL, &[&run]).by(owner), 409)
        .await;
    c.expect(RUN, c.req(RUN, &[&RunId::new()]).by(owner), 404)
        .await;
    c.expect(RUN, c.req(RUN, &[&run]).by(outsider), 404).await;

    const RUNS: &str = "GET /v1/workspaces/{ws}/operations";
    let listed = c
        .expect(
            RUNS,
            with_query(c.req(RUNS, &[&ws]), "limit=2").by(owner),
            200,
        )
        .await;
    assert!(listed.body["next_cursor"].is_string(), "{}", listed.body);
    c.expect(
        RUNS,
        with_query(c.req(RUNS, &[&ws]), "status=done").by(owner),
        400,
    )
    .await;

    const INVENTORY: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/inventory";
    let inventory = c
        .expect(
            INVENTORY,
            with_query(
                c.req(INVENTORY, &[&ws, &tenant]),
                "type=deviceConfigurations&limit=2",
            )
            .by(owner),
            200,
        )
        .await;
    assert_eq!(inventory.body["items"].as_array().map(Vec::len), Some(2));
    c.expect(INVENTORY, c.req(INVENTORY, &[&ws, &tenant]).by(owner), 400)
        .await;

    const GROUPS: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/groups";
    let groups = c
        .expect(GROUPS, c.req(GROUPS, &[&ws, &tenant]).by(owner), 200)
        .await;
    assert!(
        !groups.body["items"].as_array().unwrap().is_empty(),
        "{}",
        groups.body
    );
    c.expect(
        GROUPS,
        with_query(
            c.req(GROUPS, &[&ws, &tenant]),
            &format!("search={}", "a".repeat(300)),
        )
        .by(owner),
        400,
    )
    .await;

    const ROLES: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/role-definitions";
    c.expect(ROLES, c.req(ROLES, &[&ws, &tenant]).by(owner), 200)
        .await;
    c.expect(
        ROLES,
        with_query(c.req(ROLES, &[&ws, &tenant]), "limit=5").by(owner),
        400,
    )
    .await;

    const NOTES: &str = "GET /v1/me/notifications";
    let notes = c.expect(NOTES, c.req(NOTES, &[]).by(owner), 200).await;
    assert!(!notes.body["items"].as_array().unwrap().is_empty());
    c.expect(
        NOTES,
        with_query(c.req(NOTES, &[]), "limit=0").by(owner),
        400,
    )
    .await;

    const AUDIT: &str = "GET /v1/workspaces/{ws}/audit";
    let audit = c.expect(AUDIT, c.req(AUDIT, &[&ws]).by(owner), 200).await;
    assert!(!audit.body["items"].as_array().unwrap().is_empty());
    c.expect(
        AUDIT,
        with_query(c.req(AUDIT, &[&ws]), "action=Not-An-Action").by(owner),
        400,
    )
    .await;

    // Workspace settings (owners only).
    const SETTINGS: &str = "PATCH /v1/workspaces/{ws}";
    let settings = |on: bool| {
        with_body(
            c.req(SETTINGS, &[&ws]),
            json!({"settings": {"restore_high_risk": on}}),
        )
    };
    c.expect(SETTINGS, settings(true).by(owner), 200).await;
    c.expect(SETTINGS, settings(true).by(readonly), 403).await;
    const WORKSPACE: &str = "GET /v1/workspaces/{ws}";
    c.expect(WORKSPACE, c.req(WORKSPACE, &[&ws]).by(readonly), 200)
        .await;
    c.expect(WORKSPACE, c.req(WORKSPACE, &[&ws]).by(outsider), 404)
        .await;

    // The system plane (platform operators only).
    let platform = stack.platform_token(&users.platform);
    const SYSTEM_RUNS: &str = "GET /v1/system/operations";
    const SYSTEM_RUN: &str = "GET /v1/system/operations/{run}";
    const SYSTEM_WORKSPACES: &str = "GET /v1/system/workspaces";
    const SYSTEM_WORKSPACE: &str = "GET /v1/system/workspaces/{ws}";
    let listed = c
        .expect(
            SYSTEM_RUNS,
            with_query(c.req(SYSTEM_RUNS, &[]), "limit=1&problem=failed")
                .with_token(platform.clone()),
            200,
        )
        .await;
    assert!(listed.body["items"].is_array(), "{}", listed.body);
    c.expect(
        SYSTEM_RUNS,
        c.req(SYSTEM_RUNS, &[]).with_token(platform.clone()),
        200,
    )
    .await;
    c.expect(
        SYSTEM_RUNS,
        with_query(c.req(SYSTEM_RUNS, &[]), "problem=odd").with_token(platform.clone()),
        400,
    )
    .await;
    c.expect(SYSTEM_RUNS, c.req(SYSTEM_RUNS, &[]).by(owner), 404)
        .await;
    c.expect(
        SYSTEM_RUN,
        c.req(SYSTEM_RUN, &[&run]).with_token(platform.clone()),
        200,
    )
    .await;
    c.expect(
        SYSTEM_RUN,
        c.req(SYSTEM_RUN, &[&RunId::new()])
            .with_token(platform.clone()),
        404,
    )
    .await;
    c.expect(
        SYSTEM_WORKSPACES,
        c.req(SYSTEM_WORKSPACES, &[]).with_token(platform.clone()),
        200,
    )
    .await;
    c.expect(
        SYSTEM_WORKSPACES,
        with_query(c.req(SYSTEM_WORKSPACES, &[]), "limit=500").with_token(platform.clone()),
        400,
    )
    .await;
    c.expect(
        SYSTEM_WORKSPACE,
        c.req(SYSTEM_WORKSPACE, &[&ws]).with_token(platform.clone()),
        200,
    )
    .await;
    c.expect(
        SYSTEM_WORKSPACE,
        c.req(SYSTEM_WORKSPACE, &[&WorkspaceId::new()])
            .with_token(platform),
        404,
    )
    .await;

    // Backup schedules, their manual backups, the sets they write.
    const SCHEDULES: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules";
    const CREATE_SCHEDULE: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules";
    const SCHEDULE: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}";
    const CHANGE_SCHEDULE: &str =
        "PATCH /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}";
    const DELETE_SCHEDULE: &str =
        "DELETE /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}";
    const RUN_NOW: &str =
        "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/run-now";
    const RETRY: &str =
        "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/retry";
    let create_schedule = |cadence: Value| {
        with_body(
            c.req(CREATE_SCHEDULE, &[&ws, &tenant]),
            json!({"name": "Nightly", "cadence": cadence, "timezone": "Europe/Berlin", "retention": {"keep_last": 5}}),
        )
        .by(owner)
    };
    let schedule = c
        .expect(
            CREATE_SCHEDULE,
            create_schedule(json!({"kind": "daily", "at": "02:00"})),
            201,
        )
        .await;
    let schedule = schedule.body["schedule"]["id"].as_str().unwrap().to_owned();
    c.expect(
        CREATE_SCHEDULE,
        create_schedule(json!({"kind": "hourly", "minute": 99})),
        400,
    )
    .await;
    let nobody_schedule = ulid::Ulid::new();
    c.expect(
        SCHEDULES,
        c.req(SCHEDULES, &[&ws, &tenant]).by(readonly),
        200,
    )
    .await;
    c.expect(
        SCHEDULES,
        with_query(c.req(SCHEDULES, &[&ws, &tenant]), "limit=0").by(owner),
        400,
    )
    .await;
    c.expect(
        SCHEDULE,
        c.req(SCHEDULE, &[&ws, &tenant, &schedule]).by(owner),
        200,
    )
    .await;
    c.expect(
        SCHEDULE,
        c.req(SCHEDULE, &[&ws, &tenant, &nobody_schedule]).by(owner),
        404,
    )
    .await;
    let change = |body: Value| with_body(c.req(CHANGE_SCHEDULE, &[&ws, &tenant, &schedule]), body);
    c.expect(
        CHANGE_SCHEDULE,
        change(json!({"cadence": {"kind": "weekly", "weekday": "sunday", "at": "03:30"}}))
            .by(owner),
        200,
    )
    .await;
    c.expect(
        CHANGE_SCHEDULE,
        change(json!({"enabled": "no"})).by(owner),
        400,
    )
    .await;
    let run_now = |id: &dyn std::fmt::Display| {
        with_body(c.req(RUN_NOW, &[&ws, &tenant, id]), json!({})).by(owner)
    };
    let backup = c.expect(RUN_NOW, run_now(&schedule), 202).await.run_id();
    let failed = c.expect(RUN_NOW, run_now(&schedule), 202).await.run_id();
    c.expect(RUN_NOW, run_now(&nobody_schedule), 404).await;
    // One backup fails (as a worker would record it); the worker finishes the other.
    stack.finish(&failed, tenantops_core::Outcome::Failed).await;
    worker.drain().await;
    let retry = |run: &str| {
        with_body(
            c.req(RETRY, &[&ws, &tenant, &schedule]),
            json!({ "run_id": run }),
        )
        .by(owner)
    };
    c.expect(RETRY, retry(&failed), 202).await;
    c.expect(RETRY, retry(&RunId::new().to_string()), 409).await;
    let doomed = c
        .expect(
            CREATE_SCHEDULE,
            create_schedule(json!({"kind": "cron", "expr": "0 4 * * 1"})),
            201,
        )
        .await;
    let doomed = doomed.body["schedule"]["id"].as_str().unwrap().to_owned();
    let delete = || c.req(DELETE_SCHEDULE, &[&ws, &tenant, &doomed]).by(owner);
    c.expect(DELETE_SCHEDULE, delete(), 204).await;
    c.expect(DELETE_SCHEDULE, delete(), 404).await;

    const BACKUPS: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/backups";
    const BACKUP_SET: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}";
    let sets = c
        .expect(BACKUPS, c.req(BACKUPS, &[&ws, &tenant]).by(owner), 200)
        .await;
    let set = stack.run(&backup).await.result.unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sets.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == set.as_str()),
        "{}",
        sets.body
    );
    c.expect(
        BACKUPS,
        with_query(c.req(BACKUPS, &[&ws, &tenant]), "cursor=forged").by(owner),
        400,
    )
    .await;
    c.expect(
        BACKUP_SET,
        with_query(c.req(BACKUP_SET, &[&ws, &tenant, &set]), "limit=2").by(owner),
        200,
    )
    .await;
    c.expect(
        BACKUP_SET,
        c.req(BACKUP_SET, &[&ws, &tenant, &ulid::Ulid::new()])
            .by(owner),
        404,
    )
    .await;

    // Drift: a check against the latest complete set, its reports, and a two-set diff.
    const DIFF: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}/diff/{other}";
    const DRIFT: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/drift";
    const REPORT: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}";
    c.expect(
        DIFF,
        with_query(c.req(DIFF, &[&ws, &tenant, &set, &set]), "limit=5").by(owner),
        200,
    )
    .await;
    c.expect(
        DIFF,
        c.req(DIFF, &[&ws, &tenant, &set, &ulid::Ulid::new()])
            .by(owner),
        404,
    )
    .await;
    // A setting changed in the tenant since the backup, for the report to name.
    let changed = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t
            .collections
            .get_mut("deviceManagement/deviceConfigurations")
            .unwrap();
        c.objects[0]["description"] = json!("drifted");
        c.objects[0]["id"].as_str().unwrap().to_owned()
    });
    let check = c
        .expect(
            START,
            with_body(
                c.req(START, &[&ws, &tenant]),
                json!({"type": "drift.check"}),
            )
            .by(owner),
            202,
        )
        .await
        .run_id();
    worker.drain().await;
    c.expect(DRIFT, c.req(DRIFT, &[&ws, &tenant]).by(owner), 200)
        .await;
    c.expect(
        DRIFT,
        with_query(c.req(DRIFT, &[&ws, &tenant]), "limit=0").by(owner),
        400,
    )
    .await;
    c.expect(
        REPORT,
        with_query(c.req(REPORT, &[&ws, &tenant, &check]), "limit=1").by(owner),
        200,
    )
    .await;
    c.expect(
        REPORT,
        c.req(REPORT, &[&ws, &tenant, &ulid::Ulid::new()]).by(owner),
        404,
    )
    .await;
    const REVERT: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/revert";
    let revert = |items: Value| {
        with_body(
            c.req(REVERT, &[&ws, &tenant, &check]),
            json!({ "items": items }),
        )
        .by(owner)
    };
    c.expect(
        REVERT,
        revert(json!([{"object_type": "x", "object_id": "y"}])),
        409,
    )
    .await;
    c.expect(REVERT, revert(json!("all")), 422).await;
    c.expect(
        REVERT,
        revert(json!([{"object_type": "deviceConfigurations", "object_id": changed}])),
        202,
    )
    .await;
    // The revert's preview ends before the restores below start theirs.
    worker.drain().await;
    const ACCEPT: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/accept";
    c.expect(
        ACCEPT,
        c.req(ACCEPT, &[&ws, &tenant, &check]).by(owner),
        202,
    )
    .await;
    c.expect(
        ACCEPT,
        c.req(ACCEPT, &[&ws, &tenant, &check]).by(owner),
        409,
    )
    .await;

    // Workspace schedules: created, listed, viewed, changed, refused, deleted.
    const WS_SCHEDULES: &str = "GET /v1/workspaces/{ws}/backup-schedules";
    const WS_CREATE: &str = "POST /v1/workspaces/{ws}/backup-schedules";
    const WS_SCHEDULE: &str = "GET /v1/workspaces/{ws}/backup-schedules/{schedule}";
    const WS_PATCH: &str = "PATCH /v1/workspaces/{ws}/backup-schedules/{schedule}";
    const WS_DELETE: &str = "DELETE /v1/workspaces/{ws}/backup-schedules/{schedule}";
    let created = c
        .expect(
            WS_CREATE,
            with_body(
                c.req(WS_CREATE, &[&ws]),
                json!({"cadence": {"kind": "daily", "at": "01:00"}, "retention": {"keep_last": 3}, "tenants": {"tag": "gold"}}),
            )
            .by(owner),
            201,
        )
        .await;
    let ws_schedule = created.body["schedule"]["id"].as_str().unwrap().to_owned();
    c.expect(
        WS_CREATE,
        with_body(
            c.req(WS_CREATE, &[&ws]),
            json!({"cadence": {"kind": "daily", "at": "01:00"}, "retention": {"keep_last": 3}, "tenants": "some"}),
        )
        .by(owner),
        400,
    )
    .await;
    c.expect(WS_SCHEDULES, c.req(WS_SCHEDULES, &[&ws]).by(owner), 200)
        .await;
    c.expect(
        WS_SCHEDULES,
        with_query(c.req(WS_SCHEDULES, &[&ws]), "limit=0").by(owner),
        400,
    )
    .await;
    c.expect(
        WS_SCHEDULE,
        c.req(WS_SCHEDULE, &[&ws, &ws_schedule]).by(owner),
        200,
    )
    .await;
    c.expect(
        WS_SCHEDULE,
        c.req(WS_SCHEDULE, &[&ws, &ulid::Ulid::new()]).by(owner),
        404,
    )
    .await;
    c.expect(
        WS_PATCH,
        with_body(
            c.req(WS_PATCH, &[&ws, &ws_schedule]),
            json!({"tenants": "all", "enabled": false}),
        )
        .by(owner),
        200,
    )
    .await;
    c.expect(
        WS_PATCH,
        with_body(
            c.req(WS_PATCH, &[&ws, &ws_schedule]),
            json!({"tenants": []}),
        )
        .by(owner),
        400,
    )
    .await;
    c.expect(
        WS_DELETE,
        c.req(WS_DELETE, &[&ws, &ws_schedule])
            .by(&stack.users().readonly),
        403,
    )
    .await;
    c.expect(
        WS_DELETE,
        c.req(WS_DELETE, &[&ws, &ws_schedule]).by(owner),
        204,
    )
    .await;

    // Batches: a directory sync of every tenant (started by the relay), viewed, refused,
    // cancelled.
    const BATCHES: &str = "POST /v1/workspaces/{ws}/batches";
    const BATCH: &str = "GET /v1/workspaces/{ws}/batches/{batch}";
    const BATCH_CANCEL: &str = "POST /v1/workspaces/{ws}/batches/{batch}/cancel";
    let batch = c
        .expect(
            BATCHES,
            with_body(
                c.req(BATCHES, &[&ws]),
                json!({"type": "directory_groups.sync", "tenants": "all"}),
            )
            .by(owner),
            202,
        )
        .await;
    let batch = batch.body["batch"]["id"].as_str().unwrap().to_owned();
    c.expect(
        BATCHES,
        with_body(
            c.req(BATCHES, &[&ws]),
            json!({"type": "restore.execute", "tenants": "all"}),
        )
        .by(owner),
        422,
    )
    .await;
    c.expect(BATCH, c.req(BATCH, &[&ws, &batch]).by(owner), 200)
        .await;
    c.expect(
        BATCH,
        c.req(BATCH, &[&ws, &ulid::Ulid::new()]).by(owner),
        404,
    )
    .await;
    c.expect(
        BATCH_CANCEL,
        c.req(BATCH_CANCEL, &[&ws, &batch]).by(owner),
        200,
    )
    .await;
    const BATCH_RETRY: &str = "POST /v1/workspaces/{ws}/batches/{batch}/retry";
    c.expect(
        BATCH_RETRY,
        c.req(BATCH_RETRY, &[&ws, &batch]).by(owner),
        409,
    )
    .await;
    // A check of a connection the tenant lacks: its child is refused, and retried.
    let refused = c
        .expect(
            BATCHES,
            with_body(
                c.req(BATCHES, &[&ws]),
                json!({"type": "provider_connection.verify", "params": {"connection_id": "missing"}, "tenants": [tenant.to_string()]}),
            )
            .by(owner),
            202,
        )
        .await;
    let refused = refused.body["batch"]["id"].as_str().unwrap().to_owned();
    c.expect(
        BATCH_RETRY,
        c.req(BATCH_RETRY, &[&ws, &refused]).by(owner),
        202,
    )
    .await;
    c.expect(
        BATCH_CANCEL,
        c.req(BATCH_CANCEL, &[&ws, &batch])
            .by(&stack.users().readonly),
        403,
    )
    .await;
    worker.drain().await;

    // Restores: preview, view, execute.
    const PREVIEW: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/restores";
    const RESTORE: &str = "GET /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}";
    const EXECUTE: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}/execute";
    let entries = c
        .expect(
            BACKUP_SET,
            c.req(BACKUP_SET, &[&ws, &tenant, &set]).by(owner),
            200,
        )
        .await;
    let first = &entries.body["items"][0];
    let preview = c
        .expect(
            PREVIEW,
            with_body(
                c.req(PREVIEW, &[&ws, &tenant]),
                json!({
                    "backup_set_id": set,
                    "items": [{"object_type": first["object_type"], "object_id": first["object_id"]}],
                    "mapping": {"drop": first["assignments"]["group_ids"].as_array().unwrap().iter().chain(first["assignments"]["filter_ids"].as_array().unwrap()).collect::<Vec<_>>()},
                }),
            )
            .by(owner),
            202,
        )
        .await;
    c.expect(
        PREVIEW,
        with_body(
            c.req(PREVIEW, &[&ws, &tenant]),
            json!({"backup_set_id": ulid::Ulid::new().to_string()}),
        )
        .by(owner),
        404,
    )
    .await;
    let restore = preview.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = preview.body["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let execute = |token: &str| {
        with_body(
            c.req(EXECUTE, &[&ws, &tenant, &restore]),
            json!({ "confirmation_token": token }),
        )
        .by(owner)
    };
    // Confirmed while its run is still computing it.
    c.expect(EXECUTE, execute(&token), 409).await;
    c.expect(
        RESTORE,
        c.req(RESTORE, &[&ws, &tenant, &restore]).by(owner),
        200,
    )
    .await;
    worker.drain().await;
    c.expect(
        RESTORE,
        with_query(c.req(RESTORE, &[&ws, &tenant, &restore]), "limit=1").by(owner),
        200,
    )
    .await;
    c.expect(
        RESTORE,
        with_query(c.req(RESTORE, &[&ws, &tenant, &restore]), "cursor=forged").by(owner),
        400,
    )
    .await;
    c.expect(
        RESTORE,
        c.req(RESTORE, &[&ws, &tenant, &ulid::Ulid::new()])
            .by(owner),
        404,
    )
    .await;
    c.expect(EXECUTE, execute("not-the-token"), 409).await;
    c.expect(EXECUTE, execute(&token), 202).await;

    // A restore batch: the set previewed in place, confirmed only once its previews are done.
    const BATCH_EXECUTE: &str = "POST /v1/workspaces/{ws}/batches/{batch}/execute";
    let restores = c
        .expect(
            BATCHES,
            with_body(
                c.req(BATCHES, &[&ws]),
                json!({"type": "restore.preview", "params": {"source_tenant_id": tenant, "backup_set_id": set}, "tenants": [tenant]}),
            )
            .by(owner),
            202,
        )
        .await;
    let restores_id = restores.body["batch"]["id"].as_str().unwrap().to_owned();
    let confirm = |token: &str| {
        with_body(
            c.req(BATCH_EXECUTE, &[&ws, &restores_id]),
            json!({ "confirmation_token": token }),
        )
        .by(owner)
    };
    let batch_token = restores.body["confirmation_token"].as_str().unwrap();
    c.expect(BATCH_EXECUTE, confirm(batch_token), 409).await;
    c.expect(BATCH, c.req(BATCH, &[&ws, &restores_id]).by(owner), 200)
        .await;
    worker.drain().await;
    c.expect(BATCH_EXECUTE, confirm("not-the-token"), 409).await;
    c.expect(BATCH_EXECUTE, confirm(batch_token), 202).await;
    c.expect(BATCH_EXECUTE, confirm(batch_token), 200).await;
    // Webhooks (a public address literal: nothing resolves, nothing is delivered here).
    const HOOKS: &str = "GET /v1/workspaces/{ws}/webhooks";
    const HOOK_CREATE: &str = "POST /v1/workspaces/{ws}/webhooks";
    const HOOK: &str = "GET /v1/workspaces/{ws}/webhooks/{webhook}";
    const HOOK_DELETE: &str = "DELETE /v1/workspaces/{ws}/webhooks/{webhook}";
    const HOOK_DELIVERIES: &str = "GET /v1/workspaces/{ws}/webhooks/{webhook}/deliveries";
    const HOOK_TEST: &str = "POST /v1/workspaces/{ws}/webhooks/{webhook}/test";
    let hook_body = json!({"url": "https://93.184.216.34/hook", "events": ["run.failed"]});
    let created = c
        .expect(
            HOOK_CREATE,
            with_body(c.req(HOOK_CREATE, &[&ws]), hook_body.clone()).by(owner),
            201,
        )
        .await;
    let hook = created.body["webhook"]["id"].as_str().unwrap().to_owned();
    c.expect(
        HOOK_CREATE,
        with_body(
            c.req(HOOK_CREATE, &[&ws]),
            json!({"url": "http://169.254.169.254/", "events": ["run.failed"]}),
        )
        .by(owner),
        422,
    )
    .await;
    c.expect(
        HOOK_CREATE,
        with_body(c.req(HOOK_CREATE, &[&ws]), hook_body.clone()).by(readonly),
        403,
    )
    .await;
    c.expect(HOOKS, c.req(HOOKS, &[&ws]).by(owner), 200).await;
    c.expect(HOOKS, c.req(HOOKS, &[&ws]).by(outsider), 404)
        .await;
    c.expect(HOOK, c.req(HOOK, &[&ws, &hook]).by(owner), 200)
        .await;
    c.expect(HOOK, c.req(HOOK, &[&ws, &hook]).by(readonly), 403)
        .await;
    c.expect(HOOK_TEST, c.req(HOOK_TEST, &[&ws, &hook]).by(owner), 202)
        .await;
    c.expect(
        HOOK_TEST,
        c.req(HOOK_TEST, &[&ws, &ulid::Ulid::new()]).by(owner),
        404,
    )
    .await;
    c.expect(
        HOOK_DELIVERIES,
        with_query(c.req(HOOK_DELIVERIES, &[&ws, &hook]), "limit=10").by(owner),
        200,
    )
    .await;
    c.expect(
        HOOK_DELIVERIES,
        with_query(c.req(HOOK_DELIVERIES, &[&ws, &hook]), "cursor=forged").by(owner),
        400,
    )
    .await;
    c.expect(
        HOOK_DELETE,
        c.req(HOOK_DELETE, &[&ws, &hook]).by(owner),
        204,
    )
    .await;
    c.expect(
        HOOK_DELETE,
        c.req(HOOK_DELETE, &[&ws, &hook]).by(owner),
        404,
    )
    .await;

    const ARCHIVE: &str = "POST /v1/workspaces/{ws}/tenants/{tenant}/archive";
    c.expect(
        ARCHIVE,
        c.req(ARCHIVE, &[&new_ws, &new_tenant]).by(owner),
        200,
    )
    .await;
    c.expect(
        ARCHIVE,
        c.req(ARCHIVE, &[&ws, &nobody_tenant]).by(owner),
        404,
    )
    .await;
    c.expect(
        START,
        with_body(
            c.req(START, &[&new_ws, &new_tenant]),
            json!({"type": "inventory.sync"}),
        )
        .by(owner),
        409,
    )
    .await;

    let violations = c.contract.violations.into_inner().unwrap();
    assert!(
        violations.is_empty(),
        "answers the document does not describe:\n{}",
        violations.join("\n\n")
    );
    let seen = c.contract.seen.into_inner().unwrap();
    for key in tenantops_api::ROUTES {
        let statuses = seen.get(key).cloned().unwrap_or_default();
        assert!(
            statuses.iter().any(|s| (200..300).contains(s)),
            "{key}: no success exercised ({statuses:?})"
        );
        assert!(
            tenantops_api::PUBLIC_ROUTES.contains(key)
                || statuses.iter().any(|s| (400..500).contains(s)),
            "{key}: no client error exercised ({statuses:?})"
        );
    }
}
