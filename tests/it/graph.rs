//! The Graph client against graph-sim, without the rest of the stack.

use serde_json::Value;
use tenantops_core::ReasonCode;
use tenantops_core::secret::SecretString;
use tenantops_graph::registry::{ApiVersion, Assignments, Budget, ObjectType, REGISTRY};
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
async fn graph_sim_refuses_top_on_directory_role_definitions_as_graph_does() {
    let (_sim, client) = sim(&[("roleManagement/directory/roleDefinitions", 3)]).await;
    let c = creds(TENANT, "app", "secret");
    let path = "v1.0/roleManagement/directory/roleDefinitions";
    let refused = client
        .page(
            &c,
            Budget::Directory,
            &format!("{path}?$top=1&$select=id"),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason(),
        ReasonCode::GraphRequestRejected,
        "{refused:?}"
    );
    // What the connection check asks instead is answered.
    client
        .page(
            &c,
            Budget::Directory,
            &format!("{path}?$filter=displayName eq 'Global Reader'"),
            false,
        )
        .await
        .unwrap();
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

/// GETs `path` (below graph-sim's Graph base) with a token: the status and the JSON body.
async fn raw_get(sim: &GraphSim, client: &GraphClient, path: &str) -> (u16, Value) {
    let token = client.token(&creds(TENANT, "app", "secret")).await.unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/{path}", sim.graph_base_url()))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn graph_sim_refuses_an_expand_of_a_navigation_the_entity_lacks_as_graph_does() {
    let (sim, client) = sim(&[
        ("deviceManagement/assignmentFilters", 3),
        ("deviceManagement/reusablePolicySettings", 0),
        ("deviceManagement/roleDefinitions", 2),
        ("deviceManagement/configurationPolicies", 2),
    ])
    .await;
    for (path, entity) in [
        (
            "beta/deviceManagement/assignmentFilters?$expand=assignments",
            "deviceAndAppManagementAssignmentFilter",
        ),
        // Refused before anything is read: an empty collection too.
        (
            "beta/deviceManagement/reusablePolicySettings?$expand=assignments",
            "deviceManagementReusablePolicySetting",
        ),
        (
            "v1.0/deviceManagement/roleDefinitions?$expand=assignments",
            "roleDefinition",
        ),
        (
            "beta/deviceManagement/configurationPolicies?$expand=settings,relationships",
            "deviceManagementConfigurationPolicy",
        ),
    ] {
        let (status, body) = raw_get(&sim, &client, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{path}");
        let name = if path.contains("relationships") {
            "relationships"
        } else {
            "assignments"
        };
        assert_eq!(
            body["error"]["message"],
            format!(
                "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
            ),
            "{path}"
        );
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
    // The navigations the entities have are accepted, on the list and on an object.
    let (status, _) = raw_get(
        &sim,
        &client,
        "v1.0/deviceManagement/roleDefinitions?$expand=roleAssignments",
    )
    .await;
    assert_eq!(status, 200);
    let ty = ObjectType::named("configurationPolicies").unwrap();
    let policies = client
        .list_all(
            &creds(TENANT, "app", "secret"),
            Budget::Intune,
            &ty.backup_list_path(),
            false,
        )
        .await
        .unwrap();
    let id = policies[0]["id"].as_str().unwrap();
    let (status, one) = raw_get(
        &sim,
        &client,
        &format!("beta/deviceManagement/configurationPolicies/{id}?$expand=assignments,settings"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        one["settings"].is_array() && one["assignments"].is_array(),
        "{one}"
    );
}

#[tokio::test]
async fn backup_lists_carry_assignments_inline_and_graph_sim_pages_expansions_as_graph_does() {
    let counts: Vec<(&str, usize)> = REGISTRY
        .iter()
        .filter(|t| t.budget == Budget::Intune)
        .map(|t| (t.path, 7))
        .collect();
    let (sim, client) = sim(&counts).await;
    let c = creds(TENANT, "app", "secret");
    let tenant = sim.with_tenant(TENANT, |t| t.collections.clone());
    let mut expanded = 0;
    for ty in REGISTRY
        .iter()
        .filter(|t| t.backup && t.assignments == Assignments::ExpandOnList)
    {
        let listed = client
            .list_all(&c, ty.budget, &ty.backup_list_path(), false)
            .await
            .unwrap();
        assert_eq!(listed.len(), 7, "{}", ty.name);
        let collection = &tenant[ty.path];
        for o in &listed {
            let id = o["id"].as_str().unwrap();
            let held = collection
                .sub_resources
                .get(&format!("{id}/assignments"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(o["assignments"], Value::Array(held), "{}/{id}", ty.name);
        }
        expanded += 1;
    }
    assert!(
        expanded >= 10,
        "{expanded} types read assignments on the list"
    );

    // Graph answers `$expand=definitionValues` with an empty array: read them below the object.
    let gpc = ObjectType::named("groupPolicyConfigurations").unwrap();
    let (status, page) = raw_get(
        &sim,
        &client,
        &format!("beta/{}?$expand=definitionValues", gpc.path),
    )
    .await;
    assert_eq!(status, 200);
    for o in page["value"].as_array().unwrap() {
        assert_eq!(o["definitionValues"], Value::Array(Vec::new()));
        let id = o["id"].as_str().unwrap();
        assert!(!tenant[gpc.path].sub_resources[&format!("{id}/definitionValues")].is_empty());
    }

    // A settings-catalog list that expands `settings` shrinks its pages, whatever `$top` asks.
    let (status, page) = raw_get(
        &sim,
        &client,
        "beta/deviceManagement/configurationPolicies?$expand=settings&$top=100",
    )
    .await;
    assert_eq!(status, 200);
    assert!(page["value"].as_array().unwrap().len() <= 2, "{page}");
    assert!(page["@odata.nextLink"].is_string());
    // Its settings read 1,000 a page, as the registry reads them: one request per policy.
    sim.clear_requests();
    let ty = ObjectType::named("configurationPolicies").unwrap();
    for (key, settings) in &tenant[ty.path].sub_resources {
        let Some(id) = key.strip_suffix("/settings") else {
            continue;
        };
        let read = client
            .list_all(
                &c,
                ty.budget,
                &format!("beta/{}/{id}/settings?$top=1000", ty.path),
                false,
            )
            .await
            .unwrap();
        assert_eq!(&read, settings);
    }
    let reads = sim.requests().len();
    assert!(reads <= 7 * 2, "{reads} requests for 7 policies' settings");
}
