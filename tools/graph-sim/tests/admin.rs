//! graph-sim's admin routes over real HTTP: what they change is what a Graph client reads
//! next, and what they refuse changes nothing.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tenantops_graph_sim::{GraphSim, SimClient, SimConfig};

const TENANT: &str = "5e1d2c3b-4a59-4867-9a8b-7c6d5e4f3a21";
const CLIENT_ID: &str = "0d9c8b7a-6f5e-4d3c-2b1a-098f7e6d5c4b";
const SECRET: &str = "admin-test-secret";
const CONFIGS: &str = "deviceManagement/deviceConfigurations";

/// One request (a bearer token, a body of a media type); status and JSON body (`Null` when
/// empty).
async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let payload = match body {
        Some((media_type, text)) => {
            request = request.header("content-type", media_type);
            Bytes::from(text)
        }
        None => Bytes::new(),
    };
    let response = client
        .request(request.body(Full::new(payload)).expect("request"))
        .await
        .expect("response");
    let status = response.status().as_u16();
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
    (status, body)
}

/// A JSON body.
fn json_body(value: Value) -> Option<(&'static str, String)> {
    Some(("application/json", value.to_string()))
}

async fn sim() -> (GraphSim, String) {
    let config = SimConfig::generated(
        TENANT,
        SimClient::new(CLIENT_ID, SECRET),
        &[("groups", 3), (CONFIGS, 3)],
    );
    let sim = GraphSim::start(config).await.expect("sim");
    let form = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={SECRET}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    );
    let (status, body) = send(
        "POST",
        &format!("{}/{TENANT}/oauth2/v2.0/token", sim.login_base_url()),
        None,
        Some(("application/x-www-form-urlencoded", form)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token").to_owned();
    (sim, token)
}

fn admin(sim: &GraphSim, path: &str) -> String {
    format!("http://{}/admin/tenants/{TENANT}/{path}", sim.local_addr())
}

#[tokio::test]
async fn a_patch_changes_the_object_graph_serves_and_stamps_it_as_modified() {
    let (sim, token) = sim().await;
    let (status, listed) = send("GET", &admin(&sim, CONFIGS), None, None).await;
    assert_eq!(status, 200, "{listed}");
    let before = listed["value"][0].clone();
    let id = before["id"].as_str().expect("id");
    let length = before["passwordMinimumLength"].as_u64().expect("a setting");

    let (status, after) = send(
        "PATCH",
        &admin(&sim, &format!("{CONFIGS}/{id}")),
        None,
        json_body(json!({"passwordMinimumLength": length + 4, "displayName": "Edited"})),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["passwordMinimumLength"], json!(length + 4));
    assert_eq!(after["displayName"], "Edited");
    assert_eq!(
        after["version"],
        json!(before["version"].as_u64().expect("version") + 1)
    );
    assert!(
        after["lastModifiedDateTime"].as_str() > before["lastModifiedDateTime"].as_str(),
        "{before} → {after}"
    );

    let graph = format!("{}/v1.0/{CONFIGS}/{id}", sim.graph_base_url());
    let (status, read) = send("GET", &graph, Some(&token), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["displayName"], "Edited");
    assert_eq!(read["lastModifiedDateTime"], after["lastModifiedDateTime"]);
    // Admin calls are not Graph requests: the log holds the token and the read only.
    assert_eq!(sim.requests().len(), 2, "{:?}", sim.requests());
}

#[tokio::test]
async fn a_delete_removes_the_object_and_its_assignments() {
    let (sim, token) = sim().await;
    let (_, listed) = send("GET", &admin(&sim, CONFIGS), None, None).await;
    let id = listed["value"][1]["id"].as_str().expect("id").to_owned();
    let graph = format!("{}/v1.0/{CONFIGS}/{id}", sim.graph_base_url());
    let (status, graph_assignments) =
        send("GET", &format!("{graph}/assignments"), Some(&token), None).await;
    assert_eq!(status, 200);
    let below = admin(&sim, &format!("{CONFIGS}/{id}/assignments"));
    let (status, admin_assignments) = send("GET", &below, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(admin_assignments["value"], graph_assignments["value"]);

    let object = admin(&sim, &format!("{CONFIGS}/{id}"));
    let (status, body) = send("DELETE", &object, None, None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = send("GET", &graph, Some(&token), None).await;
    assert_eq!(status, 404);
    let (_, listed) = send("GET", &admin(&sim, CONFIGS), None, None).await;
    assert_eq!(listed["value"].as_array().map(Vec::len), Some(2));
    let left = sim.with_tenant(TENANT, |t| {
        t.collections[CONFIGS]
            .sub_resources
            .keys()
            .filter(|k| k.starts_with(&id))
            .count()
    });
    assert_eq!(left, 0);
    let (status, _) = send("DELETE", &object, None, None).await;
    assert_eq!(status, 404);
    let (status, _) = send("GET", &below, None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn refusals_change_nothing() {
    let (sim, _) = sim().await;
    let snapshot = || sim.with_tenant(TENANT, |t| t.collections[CONFIGS].objects.clone());
    let before = snapshot();
    let id = before[0]["id"].as_str().expect("id");
    let object = admin(&sim, &format!("{CONFIGS}/{id}"));
    let other_tenant = format!(
        "http://{}/admin/tenants/00000000-0000-0000-0000-000000000000/{CONFIGS}",
        sim.local_addr()
    );
    for (method, url, body, want) in [
        ("GET", other_tenant, None, 404),
        (
            "GET",
            admin(&sim, "deviceManagement/nothingHere"),
            None,
            404,
        ),
        (
            "PATCH",
            admin(&sim, &format!("{CONFIGS}/not-an-id")),
            Some(json!({"a": 1})),
            404,
        ),
        ("PATCH", object.clone(), Some(json!({"id": "x"})), 400),
        ("PATCH", object.clone(), Some(json!([1])), 400),
        (
            "PUT",
            object.clone(),
            Some(json!({"displayName": "x"})),
            405,
        ),
        (
            "POST",
            admin(&sim, CONFIGS),
            Some(json!({"displayName": "x"})),
            405,
        ),
    ] {
        let (status, answer) = send(method, &url, None, body.and_then(json_body)).await;
        assert_eq!(status, want, "{method} {url}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    assert_eq!(snapshot(), before);
}
