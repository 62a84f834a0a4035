//! The Graph client against graph-sim, without the rest of the stack.

use tenantops_core::ReasonCode;
use tenantops_core::secret::SecretString;
use tenantops_graph::registry::{ApiVersion, Budget, ObjectType};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph::{Credentials, GraphClient, GraphConfig, GraphError};
use tenantops_graph_sim::{GraphSim, SimClient, SimConfig};

const TENANT: &str = "0a1b2c3d-0000-4000-8000-000000000001";

async fn sim(counts: &[(&str, usize)]) -> (GraphSim, GraphClient) {
    let mut expired = SimClient::new("expired-app", "expired-secret");
    expired.expired = true;
    let mut config = SimConfig::generated(TENANT, SimClient::new("app", "secret"), counts);
    config.tenants[0].clients.push(expired);
    let sim = GraphSim::start(config).await.unwrap();
    let client = GraphClient::new(
        GraphConfig {
            graph_base: sim.graph_base_url(),
            login_base: sim.login_base_url(),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    (sim, client)
}

fn creds(tenant: &str, id: &str, secret: &str) -> Credentials {
    Credentials {
        tenant_id: tenant.into(),
        client_id: id.into(),
        client_secret: SecretString::new(secret),
        secret_version: 1,
    }
}

fn token_requests(sim: &tenantops_graph_sim::GraphSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("/oauth2/v2.0/token"))
        .count()
}

#[tokio::test]
async fn a_request_graph_refuses_is_rejected_not_unavailable() {
    let (_sim, client) = sim(&[("groups", 1)]).await;
    let c = creds(TENANT, "app", "secret");
    let e = client
        .page(
            &c,
            Budget::Directory,
            "v1.0/groups?$filter=length(displayName) gt 3",
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, GraphError::Rejected { status: 400, ref code } if code.is_some()),
        "{e:?}"
    );
    assert_eq!(e.reason(), ReasonCode::GraphRequestRejected);
    assert!(
        !e.reason().retryable(),
        "repeating a refused request cannot help"
    );
}

#[tokio::test]
async fn a_rotated_connection_gets_a_new_token_at_once_and_a_check_always_does() {
    let (sim, client) = sim(&[("groups", 1)]).await;
    let groups = ObjectType::named("groups").unwrap();
    let v1 = creds(TENANT, "app", "secret");
    client.list_type(&v1, groups).await.unwrap();
    client.list_type(&v1, groups).await.unwrap();
    assert_eq!(token_requests(&sim), 1, "one version, one token");
    // The connection was rotated: its next use asks for a token, though the cached one
    // has most of its hour left.
    let v2 = Credentials {
        secret_version: 2,
        ..creds(TENANT, "app", "secret")
    };
    client.list_type(&v2, groups).await.unwrap();
    assert_eq!(token_requests(&sim), 2);
    client.list_type(&v2, groups).await.unwrap();
    assert_eq!(token_requests(&sim), 2);
    // A connection check never trusts the cache.
    client.fresh_token(&v2).await.unwrap();
    assert_eq!(token_requests(&sim), 3);
}

#[tokio::test]
async fn one_token_serves_many_requests_until_it_nears_expiry() {
    let (sim, client) = sim(&[("deviceManagement/deviceConfigurations", 5), ("groups", 5)]).await;
    let c = creds(TENANT, "app", "secret");
    for name in ["deviceConfigurations", "groups", "deviceConfigurations"] {
        client
            .list_type(&c, ObjectType::named(name).unwrap())
            .await
            .unwrap();
    }
    let token_requests = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/oauth2/v2.0/token"))
        .count();
    assert_eq!(token_requests, 1);
}

#[tokio::test]
async fn sts_errors_become_provider_reason_codes() {
    let (_sim, client) = sim(&[]).await;
    for (c, want) in [
        (
            creds(TENANT, "app", "wrong"),
            ReasonCode::ProviderCredentialsInvalid,
        ),
        (
            creds(TENANT, "expired-app", "expired-secret"),
            ReasonCode::ProviderCredentialsExpired,
        ),
        (
            creds(TENANT, "unknown-app", "x"),
            ReasonCode::ProviderAppNotFound,
        ),
        (
            creds("0a1b2c3d-0000-4000-8000-00000000ffff", "app", "secret"),
            ReasonCode::ProviderTenantNotFound,
        ),
    ] {
        match client.token(&c).await {
            Err(GraphError::Token { reason }) => assert_eq!(reason, want, "{}", c.client_id),
            other => panic!("{}: {other:?}", c.client_id),
        }
    }
}

#[tokio::test]
async fn batch_reads_come_back_in_order_twenty_per_batch() {
    let (sim, client) = sim(&[("deviceManagement/deviceConfigurations", 45)]).await;
    let c = creds(TENANT, "app", "secret");
    let ty = ObjectType::named("deviceConfigurations").unwrap();
    let objects = client.list_type(&c, ty).await.unwrap();
    let paths: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "deviceManagement/deviceConfigurations/{}",
                o["id"].as_str().unwrap()
            )
        })
        .collect();
    sim.clear_requests();
    let results = client
        .batch_get(&c, ApiVersion::V1, Budget::Intune, &paths)
        .await
        .unwrap();
    assert_eq!(results.len(), 45);
    for (o, r) in objects.iter().zip(&results) {
        assert_eq!(r.as_ref().unwrap()["id"], o["id"]);
    }
    let batches = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("$batch"))
        .count();
    assert_eq!(batches, 3);
}

#[tokio::test]
async fn unknown_types_are_refused_before_any_call() {
    assert!(ObjectType::named("users").is_none());
    assert_eq!(
        GraphError::UnsupportedType("users".into()).reason(),
        ReasonCode::GraphUnsupportedType
    );
}
