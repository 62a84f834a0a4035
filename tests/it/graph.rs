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
    }
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
