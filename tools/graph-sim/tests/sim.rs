//! graph-sim over real HTTP on loopback, as a Graph client sees it.

use std::collections::{BTreeSet, HashSet};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tenantops_graph_sim::{Fault, GraphSim, SimClient, SimConfig, Throttling};

const TENANT: &str = "0b6a4c2e-7f1d-4e3a-9c5b-2d8e6f4a1b3c";
const CLIENT_ID: &str = "6f1c7a52-2d2b-4f0e-9a51-3f0d6c1e9b10";
const SECRET: &str = "s3cr3t-value";

struct Response {
    status: u16,
    headers: hyper::HeaderMap,
    body: Value,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Response {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let payload = match body {
            Some((content_type, text)) => {
                request = request.header("content-type", content_type);
                Bytes::from(text)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(payload)).expect("request");
        let response = self.client.request(request).await.expect("response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("json body")
        };
        Response {
            status,
            headers,
            body,
        }
    }

    async fn token_response(
        &self,
        sim: &GraphSim,
        tenant: &str,
        client_id: &str,
        secret: &str,
    ) -> Response {
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        );
        self.send(
            "POST",
            &format!("{}/{tenant}/oauth2/v2.0/token", sim.login_base_url()),
            &[],
            Some(("application/x-www-form-urlencoded", form)),
        )
        .await
    }

    async fn token(&self, sim: &GraphSim) -> String {
        let response = self.token_response(sim, TENANT, CLIENT_ID, SECRET).await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    async fn get(&self, token: &str, url: &str) -> Response {
        self.send(
            "GET",
            url,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
    }

    /// Follows nextLinks to the end; returns every value and the number of pages.
    async fn all(&self, token: &str, url: &str) -> (Vec<Value>, usize, usize) {
        let mut next = Some(url.to_owned());
        let (mut values, mut pages, mut empty) = (Vec::new(), 0, 0);
        while let Some(url) = next {
            let response = self.get(token, &url).await;
            assert_eq!(response.status, 200, "{}", response.body);
            let page = response.body["value"].as_array().expect("value").clone();
            if page.is_empty() {
                empty += 1;
            }
            values.extend(page);
            pages += 1;
            next = response.body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        (values, pages, empty)
    }
}

fn client() -> SimClient {
    SimClient::new(CLIENT_ID, SECRET)
}

async fn sim_with(counts: &[(&str, usize)]) -> GraphSim {
    GraphSim::start(SimConfig::generated(TENANT, client(), counts))
        .await
        .expect("start")
}

#[tokio::test]
async fn the_token_endpoint_grants_and_refuses_like_entra() {
    let mut config = SimConfig::generated(TENANT, client(), &[]);
    config.tenants[0].clients.push(SimClient {
        expired: true,
        ..SimClient::new("11111111-1111-4111-8111-111111111111", "old")
    });
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();

    let ok = http.token_response(&sim, TENANT, CLIENT_ID, SECRET).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["token_type"], "Bearer");
    let lifetime = ok.body["expires_in"].as_u64().expect("expires_in");
    assert!((3600..=5400).contains(&lifetime), "{lifetime}");
    assert_eq!(ok.body["ext_expires_in"], ok.body["expires_in"]);

    let cases = [
        (TENANT, CLIENT_ID, "wrong", 401, "invalid_client", 7_000_215),
        (
            TENANT,
            "11111111-1111-4111-8111-111111111111",
            "old",
            401,
            "invalid_client",
            7_000_222,
        ),
        (
            TENANT,
            "22222222-2222-4222-8222-222222222222",
            SECRET,
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            "99999999-9999-4999-8999-999999999999",
            CLIENT_ID,
            SECRET,
            400,
            "invalid_request",
            90_002,
        ),
    ];
    for (tenant, client_id, secret, status, error, code) in cases {
        let response = http.token_response(&sim, tenant, client_id, secret).await;
        assert_eq!(response.status, status, "{}", response.body);
        assert_eq!(response.body["error"], error);
        assert_eq!(response.body["error_codes"], json!([code]));
        let description = response.body["error_description"].as_str().expect("desc");
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(response.body[field].is_string(), "{field}");
        }
        assert!(!response.body.to_string().contains(secret) || secret == SECRET);
    }

    // A planted token error wins over everything for that tenant.
    sim.inject(Fault::TokenError {
        tenant_id: TENANT.into(),
        body: json!({"error": "temporarily_unavailable"}),
        status: 503,
    });
    let planted = http.token_response(&sim, TENANT, CLIENT_ID, SECRET).await;
    assert_eq!(planted.status, 503);
    assert_eq!(planted.body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn graph_requires_a_valid_bearer_and_answers_with_graph_errors_and_ids() {
    let sim = sim_with(&[("groups", 3)]).await;
    let http = Http::new();
    let url = format!("{}/v1.0/groups", sim.graph_base_url());

    let anonymous = http
        .send("GET", &url, &[("client-request-id", "my-id-1")], None)
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.body["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert_eq!(anonymous.header("client-request-id"), Some("my-id-1"));
    assert_eq!(
        anonymous.body["error"]["innerError"]["client-request-id"],
        "my-id-1"
    );
    assert!(anonymous.header("request-id").is_some());

    let token = http.token(&sim).await;
    let missing = http
        .get(
            &token,
            &format!("{}/v1.0/deviceManagement/nothingHere", sim.graph_base_url()),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "ResourceNotFound");
    assert!(missing.body["error"]["innerError"]["date"].is_string());
    assert!(missing.body["error"]["innerError"]["request-id"].is_string());

    sim.expire_access_tokens();
    let expired = http.get(&token, &url).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn paging_follows_next_links_to_exactly_every_object_through_empty_pages() {
    let mut config = SimConfig::generated(
        TENANT,
        client(),
        &[
            ("deviceManagement/configurationPolicies", 1000),
            ("groups", 450),
        ],
    );
    config.empty_page_ratio = 0.2;
    config.throttling.enabled = false;
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;

    let url = format!(
        "{}/beta/deviceManagement/configurationPolicies",
        sim.graph_base_url()
    );
    let (values, pages, empty) = http.all(&token, &url).await;
    let ids: HashSet<&str> = values.iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(values.len(), 1000);
    assert_eq!(ids.len(), 1000, "no duplicates");
    assert!(empty > 0, "some empty pages with a nextLink");
    assert_eq!(pages, 1000 / 25 + empty, "settings catalog pages of 25");

    // The settings of a policy page by 25 too.
    let policy = &values[0];
    let count = policy["settingCount"].as_u64().expect("settingCount") as usize;
    let settings_url = format!("{url}/{}/settings", policy["id"].as_str().expect("id"));
    let (settings, _, _) = http.all(&token, &settings_url).await;
    assert_eq!(settings.len(), count);

    // Groups: default pages of 100.
    let groups_url = format!("{}/v1.0/groups", sim.graph_base_url());
    let first = http.get(&token, &groups_url).await;
    let first_len = first.body["value"].as_array().map(Vec::len).unwrap_or(0);
    assert!(first_len == 100 || first_len == 0);
    let (groups, _, _) = http.all(&token, &groups_url).await;
    assert_eq!(groups.len(), 450);
}

#[tokio::test]
async fn top_select_and_expand_are_honoured_within_limits() {
    let mut config = SimConfig::generated(
        TENANT,
        client(),
        &[
            ("groups", 30),
            ("deviceManagement/deviceConfigurations", 30),
        ],
    );
    config.empty_page_ratio = 0.0;
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;
    let base = sim.graph_base_url();

    let page = http
        .get(
            &token,
            &format!("{base}/v1.0/groups?$top=7&$select=displayName"),
        )
        .await;
    assert_eq!(page.status, 200);
    let values = page.body["value"].as_array().expect("value");
    assert_eq!(values.len(), 7);
    let keys: BTreeSet<&str> = values[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["displayName", "id"]));
    let next = page.body["@odata.nextLink"].as_str().expect("nextLink");
    assert!(next.contains("$skiptoken="));
    assert!(next.contains("$top=7"));

    let too_big = http
        .get(&token, &format!("{base}/v1.0/groups?$top=1000"))
        .await;
    assert_eq!(too_big.status, 400);
    let max = http
        .get(&token, &format!("{base}/v1.0/groups?$top=999"))
        .await;
    assert_eq!(max.body["value"].as_array().map(Vec::len), Some(30));

    let expanded = http
        .get(
            &token,
            &format!("{base}/v1.0/deviceManagement/deviceConfigurations?$expand=assignments"),
        )
        .await;
    assert!(
        expanded.body["value"]
            .as_array()
            .expect("value")
            .iter()
            .all(|v| v["assignments"].is_array())
    );

    // Beta-only collections are refused on v1.0, as Graph does.
    let sim2 = sim_with(&[("deviceManagement/configurationPolicies", 1)]).await;
    let token2 = http.token(&sim2).await;
    let wrong_version = http
        .get(
            &token2,
            &format!(
                "{}/v1.0/deviceManagement/configurationPolicies",
                sim2.graph_base_url()
            ),
        )
        .await;
    assert_eq!(wrong_version.status, 400);
}

#[tokio::test]
async fn a_tampered_skiptoken_is_refused() {
    let mut config = SimConfig::generated(TENANT, client(), &[("groups", 250)]);
    config.empty_page_ratio = 0.0;
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;
    let page = http
        .get(&token, &format!("{}/v1.0/groups", sim.graph_base_url()))
        .await;
    let next = page.body["@odata.nextLink"].as_str().expect("nextLink");
    let (head, skiptoken) = next.split_once("$skiptoken=").expect("token");
    let mut forged: Vec<char> = skiptoken.chars().collect();
    forged[3] = if forged[3] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let refused = http
        .get(&token, &format!("{head}$skiptoken={forged}"))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let offset = http.get(&token, &format!("{head}$skiptoken=100")).await;
    assert_eq!(offset.status, 400);
}

#[tokio::test]
async fn delta_returns_changes_and_removals_then_expires() {
    let mut config = SimConfig::generated(TENANT, client(), &[("groups", 230)]);
    config.empty_page_ratio = 0.0;
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;

    // Round one: every group, ending in a deltaLink.
    let mut url = format!(
        "{}/v1.0/groups/delta?$select=displayName",
        sim.graph_base_url()
    );
    let mut first_round = Vec::new();
    let delta_link = loop {
        let page = http.get(&token, &url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        first_round.extend(page.body["value"].as_array().expect("value").clone());
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            url = next.to_owned();
        } else {
            break page.body["@odata.deltaLink"]
                .as_str()
                .expect("deltaLink")
                .to_owned();
        }
    };
    assert_eq!(first_round.len(), 230);

    // Change one, remove one, add one.
    let (changed, removed) = sim.with_tenant(TENANT, |tenant| {
        let groups = &mut tenant.collections.get_mut("groups").expect("groups").objects;
        groups[0]["displayName"] = json!("SG-Renamed");
        let changed = groups[0]["id"].as_str().unwrap_or_default().to_owned();
        let removed = groups.remove(1)["id"].as_str().unwrap_or_default().to_owned();
        groups.push(json!({"id": "7d0c1e5a-1111-4222-8333-444455556666", "displayName": "SG-New", "groupTypes": [], "securityEnabled": true, "mailEnabled": false, "mailNickname": "sgnew"}));
        (changed, removed)
    });
    let round_two = http.get(&token, &delta_link).await;
    assert_eq!(round_two.status, 200, "{}", round_two.body);
    let values = round_two.body["value"].as_array().expect("value");
    assert_eq!(values.len(), 3, "{values:?}");
    assert!(
        values
            .iter()
            .any(|v| v["id"] == changed.as_str() && v["displayName"] == "SG-Renamed")
    );
    assert!(
        values
            .iter()
            .any(|v| v["id"] == removed.as_str() && v["@removed"]["reason"] == "changed")
    );
    assert!(
        values
            .iter()
            .any(|v| v["id"] == "7d0c1e5a-1111-4222-8333-444455556666")
    );
    let third_link = round_two.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink");
    let quiet = http.get(&token, third_link).await;
    assert_eq!(quiet.body["value"], json!([]));

    sim.expire_delta_tokens();
    let expired = http.get(&token, third_link).await;
    assert_eq!(expired.status, 400);
    assert_eq!(expired.body["error"]["code"], "syncStateNotFound");
    let unknown = http
        .get(
            &token,
            &format!("{}/v1.0/groups/delta?$deltatoken=abc", sim.graph_base_url()),
        )
        .await;
    assert_eq!(unknown.body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn batch_limits_and_per_item_throttling() {
    let mut config = SimConfig::generated(
        TENANT,
        client(),
        &[("deviceManagement/deviceConfigurations", 30)],
    );
    config.throttling = Throttling {
        intune_per_20s: 5,
        ..Throttling::default()
    };
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;
    let batch_url = format!("{}/v1.0/$batch", sim.graph_base_url());
    let auth = format!("Bearer {token}");
    let requests = |n: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/deviceManagement/deviceConfigurations?$top=1"}))
            .collect();
        json!({ "requests": items }).to_string()
    };

    let too_many = http
        .send(
            "POST",
            &batch_url,
            &[("authorization", &auth)],
            Some(("application/json", requests(21))),
        )
        .await;
    assert_eq!(too_many.status, 400);
    assert_eq!(too_many.body["error"]["code"], "BadRequest");

    let batch = http
        .send(
            "POST",
            &batch_url,
            &[("authorization", &auth)],
            Some(("application/json", requests(20))),
        )
        .await;
    assert_eq!(batch.status, 200);
    let responses = batch.body["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 20);
    let ok = responses.iter().filter(|r| r["status"] == 200).count();
    let throttled: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(ok, 5, "each item draws on the budget");
    assert_eq!(throttled.len(), 15);
    assert!(
        throttled
            .iter()
            .all(|r| r["body"]["error"]["code"] == "TooManyRequests")
    );
    let ids: BTreeSet<&str> = responses.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 20);
    // Items are logged individually.
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.batch_item_id.is_some())
            .count(),
        20
    );
}

#[tokio::test]
async fn conditional_access_throttles_with_retry_after_and_reports_early_retries() {
    let sim = sim_with(&[("identity/conditionalAccess/policies", 3)]).await;
    let http = Http::new();
    let token = http.token(&sim).await;
    let url = format!(
        "{}/v1.0/identity/conditionalAccess/policies",
        sim.graph_base_url()
    );

    let first = http.get(&token, &url).await;
    assert_eq!(first.status, 200);
    let second = http.get(&token, &url).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert!(sim.requests_inside_retry_after().is_empty());

    // A client that ignores Retry-After is caught.
    let _ = http.get(&token, &url).await;
    let violations = sim.requests_inside_retry_after();
    assert_eq!(violations.len(), 1);
    assert_eq!(
        violations[0].path,
        "/graph/v1.0/identity/conditionalAccess/policies"
    );

    // One that waits is not.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let later = http.get(&token, &url).await;
    assert_eq!(later.status, 200);
    assert_eq!(sim.requests_inside_retry_after().len(), 1);
}

#[tokio::test]
async fn intune_throttles_sometimes_come_without_retry_after() {
    let mut config = SimConfig::generated(
        TENANT,
        client(),
        &[("deviceManagement/deviceConfigurations", 2)],
    );
    config.throttling.intune_per_20s = 1;
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;
    let url = format!(
        "{}/v1.0/deviceManagement/deviceConfigurations",
        sim.graph_base_url()
    );
    let _ = http.get(&token, &url).await;
    let mut with = 0;
    let mut without = 0;
    for _ in 0..20 {
        let response = http.get(&token, &url).await;
        assert_eq!(response.status, 429);
        if response.header("retry-after").is_some() {
            with += 1;
        } else {
            without += 1;
        }
    }
    assert!(with > 0 && without > 0, "with {with}, without {without}");

    // Injected faults: the documented variant on demand, and 503 with Retry-After.
    sim.set_throttling(Throttling {
        enabled: false,
        ..Throttling::default()
    });
    sim.inject(Fault::Throttle {
        path_prefix: "deviceManagement/".into(),
        times: 1,
        retry_after_secs: None,
    });
    sim.inject(Fault::Unavailable {
        path_prefix: "v1.0/deviceManagement/".into(),
        times: 1,
        status: 503,
        retry_after_secs: Some(2),
    });
    let throttled = http.get(&token, &url).await;
    assert_eq!(
        (throttled.status, throttled.header("retry-after")),
        (429, None)
    );
    let unavailable = http.get(&token, &url).await;
    assert_eq!(
        (unavailable.status, unavailable.header("retry-after")),
        (503, Some("2"))
    );
    assert_eq!(http.get(&token, &url).await.status, 200);
}

#[tokio::test]
async fn creates_replayed_with_the_same_client_request_id_are_not_duplicated() {
    let sim = sim_with(&[("deviceManagement/deviceConfigurations", 1)]).await;
    let http = Http::new();
    let token = http.token(&sim).await;
    let url = format!(
        "{}/v1.0/deviceManagement/deviceConfigurations",
        sim.graph_base_url()
    );
    let auth = format!("Bearer {token}");
    let body = json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "displayName": "Restored"}).to_string();
    let create = |key: &'static str| {
        let (http, url, auth, body) = (&http, &url, &auth, body.clone());
        async move {
            http.send(
                "POST",
                url,
                &[("authorization", auth), ("client-request-id", key)],
                Some(("application/json", body)),
            )
            .await
        }
    };
    let first = create("restore-item-1").await;
    let replay = create("restore-item-1").await;
    let other = create("restore-item-2").await;
    assert_eq!(first.status, 201);
    assert_eq!(replay.status, 201);
    assert_eq!(first.body["id"], replay.body["id"]);
    assert_ne!(first.body["id"], other.body["id"]);
    assert_eq!(sim.writes().len(), 3);

    let (all, _, _) = http.all(&token, &url).await;
    assert_eq!(all.len(), 3, "one existing and two created");

    let id = first.body["id"].as_str().expect("id");
    let patched = http
        .send(
            "PATCH",
            &format!("{url}/{id}"),
            &[("authorization", &auth)],
            Some(("application/json", json!({"description": "x"}).to_string())),
        )
        .await;
    assert_eq!(patched.status, 204);
    let deleted = http
        .send(
            "DELETE",
            &format!("{url}/{id}"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let gone = http.get(&token, &format!("{url}/{id}")).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn missing_permissions_and_planted_faults_answer_403() {
    let mut config = SimConfig::generated(
        TENANT,
        client(),
        &[("groups", 2), ("deviceManagement/deviceConfigurations", 2)],
    );
    config.tenants[0].clients[0].granted = BTreeSet::from(["Group.Read.All".to_owned()]);
    let sim = GraphSim::start(config).await.expect("start");
    let http = Http::new();
    let token = http.token(&sim).await;
    let base = sim.graph_base_url();
    assert_eq!(
        http.get(&token, &format!("{base}/v1.0/groups"))
            .await
            .status,
        200
    );
    let denied = http
        .get(
            &token,
            &format!("{base}/v1.0/deviceManagement/deviceConfigurations"),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["error"]["code"], "Forbidden");

    sim.inject(Fault::Forbidden {
        path_prefix: "groups".into(),
    });
    let forbidden = http.get(&token, &format!("{base}/v1.0/groups")).await;
    assert_eq!(
        forbidden.body["error"]["code"],
        "Authorization_RequestDenied"
    );
}
