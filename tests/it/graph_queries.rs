//! The worker's Graph requests against graph-sim's model of the query options Microsoft
//! documents per endpoint (`tools/graph-sim/src/options.rs`): every request shape the worker
//! makes, for every type of the contract registry, is accepted and falls under a documented
//! rule; the model refuses what Graph refuses; and whole runs send nothing Graph would refuse.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tenantops_core::secret::SecretString;
use tenantops_core::{Outcome, ReasonCode, RunStatus};
use tenantops_graph::registry::{Assignments, Budget, REGISTRY, RestoreMethod};
use tenantops_graph::requests::{PERMISSION_PROBES, audit_events_path, groups_delta_path};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph::{Credentials, GraphClient, GraphConfig, GraphError};
use tenantops_graph_sim::{
    DEMO_COLLECTIONS, GraphSim, RecordedRequest, SimClient, SimConfig, documented_query_rule,
};
use tenantops_tests::{ApiCall, TestStack};

const TENANT: &str = "0a1b2c3d-0000-4000-8000-0000000000aa";

/// Every registry collection with a few objects; throttling off (Conditional Access allows
/// one request a second, and this test is about what is asked, not how fast).
fn config(tenant: &str, client: SimClient) -> SimConfig {
    let counts: Vec<(&str, usize)> = DEMO_COLLECTIONS.iter().map(|p| (*p, 3)).collect();
    let mut config = SimConfig::generated(tenant, client, &counts);
    config.throttling.enabled = false;
    config
}

async fn sim() -> (GraphSim, GraphClient, Credentials) {
    let sim = GraphSim::start(config(TENANT, SimClient::new("app", "secret")))
        .await
        .unwrap();
    let client = GraphClient::new(
        GraphConfig {
            graph_base: sim.graph_base_url(),
            login_base: sim.login_base_url(),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    let creds = Credentials {
        tenant_id: TENANT.into(),
        client_id: "app".into(),
        client_secret: SecretString::new("secret"),
        secret_version: 1,
    };
    (sim, client, creds)
}

/// Graph requests the simulator answered with a 4xx, or that no documented rule covers.
fn refused_or_undocumented(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.starts_with("/graph/") && !r.path.ends_with("/$batch"))
        .filter(|r| {
            let url = format!("{}?{}", r.path, r.query);
            (400..500).contains(&r.status) || documented_query_rule(&r.method, &url).is_none()
        })
        .map(|r| format!("{} {} {}?{}", r.status, r.method, r.path, r.query))
        .collect()
}

#[tokio::test]
async fn every_request_the_worker_makes_for_every_registry_type_is_one_graph_accepts() {
    let (sim, client, c) = sim().await;
    let mut walked = 0;
    for ty in REGISTRY {
        assert!(
            DEMO_COLLECTIONS.contains(&ty.path),
            "{}: graph-sim's demo tenant lacks the collection",
            ty.name
        );
        // The inventory's list (and the role definitions sync's).
        client
            .list_all(&c, ty.budget, &ty.list_path(), false)
            .await
            .unwrap_or_else(|e| panic!("{}: inventory list: {e:?}", ty.name));
        if !ty.backup {
            continue;
        }
        // A backup: the list, then per object its own GET and its sub-collections.
        let listed = client
            .list_all(&c, ty.budget, &ty.backup_list_path(), false)
            .await
            .unwrap_or_else(|e| panic!("{}: backup list: {e:?}", ty.name));
        let id = listed[0]["id"].as_str().unwrap().to_owned();
        if let Some(path) = ty.item_read_path(&id) {
            client
                .request(&c, ty.budget, Method::GET, &path, None, false)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        }
        for (_, path) in ty.sub_collection_paths(&id) {
            client
                .list_all(&c, ty.budget, &path, false)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        }
        if ty.restore == RestoreMethod::NotSupported {
            continue;
        }
        // A restore: adopt by name, create, update, replace assignments, definition values.
        let name_field = if ty.select.contains(&"name") {
            "name"
        } else {
            "displayName"
        };
        client
            .list_all(
                &c,
                ty.budget,
                &ty.named_path(name_field, "It's a walk"),
                false,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: adopt: {e:?}", ty.name));
        // With the object's concrete type, as a restore sends it from the snapshot (Graph
        // refuses a create in a collection of an abstract type without it).
        let mut created = json!({ name_field: "It's a walk" });
        if let Some(t) = listed[0].get("@odata.type") {
            created["@odata.type"] = t.clone();
        }
        let created = client
            .write_once(
                &c,
                ty.budget,
                Method::POST,
                &ty.collection_path(),
                Some(&created),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: create: {e:?}", ty.name));
        client
            .request(
                &c,
                ty.budget,
                Method::PATCH,
                &ty.item_path(&id),
                Some(&json!({ "description": "walked" })),
                false,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: update: {e:?}", ty.name));
        if ty.assignments != Assignments::None {
            client
                .request(
                    &c,
                    ty.budget,
                    Method::POST,
                    &ty.assign_path(&id),
                    Some(&json!({ "assignments": [] })),
                    false,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: assign: {e:?}", ty.name));
        }
        if ty.name == "groupPolicyConfigurations" {
            // The create's values go to the object it created.
            let values = ty.definition_values_path(created["id"].as_str().unwrap());
            client
                .list_all(&c, ty.budget, &values, false)
                .await
                .unwrap();
            // A value as a restore writes it: bound to the definition and presentations a
            // backup read expanded (Graph takes them only as binds).
            let backed_up_id = listed[0]["id"].as_str().unwrap();
            let (_, read) = ty.sub_collection_paths(backed_up_id)[0].clone();
            let backed_up = client.list_all(&c, ty.budget, &read, false).await.unwrap();
            let bound = bound_value(&backed_up[0]);
            assert!(bound["presentationValues"].as_array().is_some(), "{bound}");
            // An update in place sends it under the id of the value it replaces.
            let mut updated = bound.clone();
            updated["id"] = backed_up[0]["id"].clone();
            client
                .write_once(
                    &c,
                    ty.budget,
                    Method::POST,
                    &format!("{}/updateDefinitionValues", ty.item_path(backed_up_id)),
                    Some(&json!({ "added": [], "updated": [updated], "deletedIds": [] })),
                )
                .await
                .unwrap_or_else(|e| panic!("updateDefinitionValues: {e:?}"));
            let value = client
                .write_once(&c, ty.budget, Method::POST, &values, Some(&bound))
                .await
                .unwrap();
            let vid = value["id"].as_str().unwrap();
            client
                .request(
                    &c,
                    ty.budget,
                    Method::DELETE,
                    &format!("{values}/{vid}"),
                    None,
                    false,
                )
                .await
                .unwrap();
        }
        walked += 1;
    }
    assert!(walked >= 25, "{walked} restorable backup types walked");
    // The connection check.
    for (permission, budget, probe) in PERMISSION_PROBES {
        client
            .page(&c, *budget, probe, false)
            .await
            .unwrap_or_else(|e| panic!("{permission}: {probe}: {e:?}"));
    }
    // A groups sync: a full round, then the next round from its delta link.
    let mut next = Some(groups_delta_path());
    let mut delta_link = None;
    while let Some(link) = next {
        let page = client
            .page(&c, Budget::Directory, &link, false)
            .await
            .unwrap();
        next = page.next_link;
        delta_link = page.delta_link.or(delta_link);
    }
    client
        .page(&c, Budget::Directory, &delta_link.unwrap(), false)
        .await
        .unwrap();
    // A drift check's read of Intune's audit log since a baseline.
    let now = chrono::Utc::now();
    client
        .page(
            &c,
            Budget::Intune,
            &audit_events_path(now - chrono::TimeDelta::hours(1), now),
            false,
        )
        .await
        .unwrap();

    let requests = sim.requests();
    let graph_requests = requests
        .iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .count();
    assert!(graph_requests > 150, "{graph_requests} requests walked");
    // Every query option and skip token the walk sent was one its endpoint takes, and every
    // request fell under a rule that cites its page.
    assert_eq!(refused_or_undocumented(&requests), Vec::<String>::new());
    for query in [
        "$expand=",
        "$select=",
        "$filter=",
        "$top=",
        "$skiptoken=",
        "$deltatoken=",
    ] {
        assert!(
            requests.iter().any(|r| r.query.contains(query)),
            "the walk sent no {query}"
        );
    }
}

/// A raw request to graph-sim: the status and the JSON body.
async fn raw(
    sim: &GraphSim,
    client: &GraphClient,
    c: &Credentials,
    method: Method,
    path: &str,
) -> (u16, Value) {
    let token = client.token(c).await.unwrap();
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{}/{path}", sim.graph_base_url()))
        .bearer_auth(token.expose());
    if method != Method::GET {
        request = request.json(&json!({ "description": "x" }));
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn not_allowed(option: &str) -> String {
    format!(
        "Query option '{option}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."
    )
}

/// A create in a collection of an abstract type names its concrete type in `@odata.type`, or
/// Graph refuses it (tools/graph-sim/src/bodies.rs cites each page).
#[tokio::test]
async fn graph_sim_refuses_a_create_without_its_concrete_type() {
    let (sim, client, c) = sim().await;
    let (status, body) = raw(
        &sim,
        &client,
        &c,
        Method::POST,
        "v1.0/deviceManagement/deviceConfigurations",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(body["error"]["message"], "Cannot create an abstract class.");
}

#[tokio::test]
async fn graph_sim_refuses_the_query_options_graph_refuses() {
    let (sim, client, c) = sim().await;
    let tenant = sim.with_tenant(TENANT, |t| t.collections.clone());
    let first = |path: &str| tenant[path].objects[0]["id"].as_str().unwrap().to_owned();
    let profile = first("deviceManagement/deviceConfigurations");
    let policy = first("deviceManagement/configurationPolicies");
    let template = first("deviceManagement/groupPolicyConfigurations");
    let not_a_collection = "The query specified in the URI is not valid. The requested resource is not a collection. Query options $filter, $orderby, $count, $skip, and $top can be applied only on collections.".to_owned();
    for (method, path, message) in [
        // `$top` on one object.
        (
            Method::GET,
            format!("v1.0/deviceManagement/deviceConfigurations/{profile}?$top=1"),
            not_a_collection,
        ),
        // Intune's pages promise no `$orderby`, `$count` or `$search`.
        (
            Method::GET,
            "v1.0/deviceManagement/deviceConfigurations?$orderby=displayName".to_owned(),
            not_allowed("OrderBy"),
        ),
        (
            Method::GET,
            format!("beta/deviceManagement/configurationPolicies/{policy}/settings?$count=true"),
            not_allowed("Count"),
        ),
        // The directory's role definitions take `$filter` and `$expand` only.
        (
            Method::GET,
            "v1.0/roleManagement/directory/roleDefinitions?$top=1".to_owned(),
            not_allowed("Top"),
        ),
        (
            Method::GET,
            "v1.0/roleManagement/directory/roleDefinitions?$select=id".to_owned(),
            not_allowed("Select"),
        ),
        // Groups delta: `$select`, `$filter` by id and its tokens only.
        (
            Method::GET,
            "v1.0/groups/delta?$top=5".to_owned(),
            not_allowed("Top"),
        ),
        // Conditional Access lists have no `$expand`.
        (
            Method::GET,
            "v1.0/identity/conditionalAccess/policies?$expand=conditions".to_owned(),
            not_allowed("Expand"),
        ),
        // An administrative template's values expand only their definition and options.
        (
            Method::GET,
            format!("beta/deviceManagement/groupPolicyConfigurations/{template}/definitionValues?$expand=settings"),
            "Parsing OData Select and Expand failed: Could not find a property named 'settings' on type 'microsoft.graph.groupPolicyDefinitionValue'.".to_owned(),
        ),
        (
            Method::GET,
            format!("beta/deviceManagement/groupPolicyConfigurations/{template}/definitionValues?$expand=presentationValues($expand=definition)"),
            "Parsing OData Select and Expand failed: Could not find a property named 'definition' on type 'microsoft.graph.groupPolicyPresentationValue'.".to_owned(),
        ),
        // A write takes a body, not query options.
        (
            Method::PATCH,
            format!("v1.0/deviceManagement/deviceConfigurations/{profile}?$select=id"),
            not_allowed("Select"),
        ),
    ] {
        let (status, body) = raw(&sim, &client, &c, method.clone(), &path).await;
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{path}");
        assert_eq!(body["error"]["message"], message, "{path}");
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
    // Nothing was changed by the refused PATCH.
    let after = sim.with_tenant(TENANT, |t| t.collections.clone());
    assert_eq!(
        after["deviceManagement/deviceConfigurations"].objects,
        tenant["deviceManagement/deviceConfigurations"].objects
    );
    // The client reports such a refusal as what it is, not as Graph being unavailable.
    let e = client
        .page(
            &c,
            Budget::Directory,
            "v1.0/roleManagement/directory/roleDefinitions?$top=1&$select=id",
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, GraphError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(e.reason(), ReasonCode::GraphRequestRejected);
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn syncs_a_backup_and_a_connection_check_of_a_tenant_with_every_type_send_nothing_graph_refuses()
 {
    let stack = TestStack::new().await;
    let entra = stack.entra_tenant_id().await;
    let client = SimClient::new(
        tenantops_local::seed::DEMO_CLIENT_ID,
        tenantops_local::seed::DEMO_CLIENT_SECRET,
    );
    let worker = stack.worker_with(config(&entra, client), policy()).await;
    let schedules = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    );
    let created = stack
        .call(
            ApiCall::post(
                schedules.clone(),
                json!({
                    "name": "Every type",
                    "cadence": {"kind": "hourly", "minute": 5},
                    "retention": {"keep_days": 30},
                })
                .to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let schedule = created.body["schedule"]["id"].as_str().unwrap().to_owned();
    let mut runs = Vec::new();
    for kind in [
        "inventory.sync",
        "directory_groups.sync",
        "directory_role_definitions.sync",
        "provider_connection.verify",
    ] {
        runs.push(stack.start(json!({ "type": kind })).await);
    }
    let backup = stack
        .call(
            ApiCall::post(format!("{schedules}/{schedule}/run-now"), "{}").by(&stack.users().owner),
        )
        .await;
    assert_eq!(backup.status, 202, "{}", backup.body);
    runs.push(backup.run_id());
    worker.drain().await;
    // A second groups sync reads from the delta link the first stored.
    let delta = stack
        .start(json!({ "type": "directory_groups.sync" }))
        .await;
    worker.drain().await;
    runs.push(delta);
    for id in &runs {
        let run = stack.run(id).await;
        assert_eq!(
            (run.status, run.outcome),
            (RunStatus::Completed, Outcome::Succeeded),
            "{:?}: {:?}",
            run.operation,
            run.failures
        );
    }
    let requests = worker.sim.requests();
    assert!(
        requests.iter().any(|r| r.query.contains("$deltatoken=")),
        "the second groups sync read its delta link"
    );
    assert_eq!(refused_or_undocumented(&requests), Vec::<String>::new());
}

/// A definition value read with its expansions, as the worker's restore writes it
/// (`restore_inplace::value_write`): the definition and presentations bound by id.
fn bound_value(read: &Value) -> Value {
    let base = "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions";
    let definition = read["definition"]["id"].as_str().unwrap();
    let presentation_values: Vec<Value> = read["presentationValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut p = p.clone();
            let map = p.as_object_mut().unwrap();
            let presentation = map.remove("presentation").unwrap();
            for k in ["id", "createdDateTime", "lastModifiedDateTime"] {
                map.remove(k);
            }
            map.insert(
                "presentation@odata.bind".into(),
                json!(format!(
                    "{base}('{definition}')/presentations('{}')",
                    presentation["id"].as_str().unwrap()
                )),
            );
            p
        })
        .collect();
    json!({
        "enabled": read["enabled"],
        "configurationType": read["configurationType"],
        "definition@odata.bind": format!("{base}('{definition}')"),
        "presentationValues": presentation_values,
    })
}
