//! Restores in place of what hangs below an object (settings, definition values, scheduled
//! actions, policy set items, app policies' apps, intent settings, localized messages): each
//! such type is backed up, changed in graph-sim as an admin would (those, assignments,
//! properties), backed up again (the nightly backup that caught the change), previewed (the
//! change shows field by field), executed, and backed up a third time: each object hashes as
//! in the first backup. One tenant, one object per type.

use reqwest::Method;
use serde_json::{Map, Value, json};
use tenantops_core::object_type::{CATALOGUE, Restore, Support};
use tenantops_core::{Outcome, RunStatus};
use tenantops_graph::Credentials;
use tenantops_graph::registry::Budget;
use tenantops_local::seed::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use tenantops_tests::WorkerHarness;

use super::{
    POLICIES, TEMPLATES, assign_all, backup, execute_as, first_group, hashes, ids, preview, setup,
    sync, sync_groups,
};

const COMPLIANCE: &str = "deviceManagement/compliancePolicies";
const DEFINITIONS: &str = "deviceManagement/groupPolicyDefinitions";
const DEVICE_COMPLIANCE: &str = "deviceManagement/deviceCompliancePolicies";
const POLICY_SETS: &str = "deviceAppManagement/policySets";
const INTENTS: &str = "deviceManagement/intents";
const NOTIFICATIONS: &str = "deviceManagement/notificationMessageTemplates";
const APP_CONFIGS: &str = "deviceAppManagement/targetedManagedAppConfigurations";
const PROTECTIONS: &[&str] = &[
    "deviceAppManagement/iosManagedAppProtections",
    "deviceAppManagement/androidManagedAppProtections",
    "deviceAppManagement/windowsManagedAppProtections",
];

/// (registry name, collection, a diff path the admin's change shows at)
const CASES: &[(&str, &str, &str)] = &[
    ("configurationPolicies", POLICIES, "settings["),
    (
        "compliancePolicies",
        COMPLIANCE,
        "settings[0].settingInstance",
    ),
    ("groupPolicyConfigurations", TEMPLATES, "definitionValues"),
    (
        "deviceCompliancePolicies",
        DEVICE_COMPLIANCE,
        "scheduledActionsForRule[0].scheduledActionConfigurations[0].gracePeriodHours",
    ),
    ("policySets", POLICY_SETS, "items[0].payloadId"),
    ("intents", INTENTS, "settings[0].valueJson"),
    (
        "notificationMessageTemplates",
        NOTIFICATIONS,
        "localizedNotificationMessages[0].subject",
    ),
    (
        "targetedManagedAppConfigurations",
        APP_CONFIGS,
        "customSettings[0].value",
    ),
    ("iosManagedAppProtections", PROTECTIONS[0], "apps[0]"),
    ("androidManagedAppProtections", PROTECTIONS[1], "apps[0]"),
    ("windowsManagedAppProtections", PROTECTIONS[2], "apps[0]"),
];

fn only_id(worker: &WorkerHarness, path: &str) -> String {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        t.collections[path].objects[0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

/// The policy as the Intune portal PUTs it back: its properties and its settings, `edit`ed.
fn portal_body(worker: &WorkerHarness, path: &str, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = &t.collections[path];
        let object = c.objects[0].as_object().unwrap();
        let id = object["id"].as_str().unwrap();
        let mut body: Map<String, Value> = object
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "id" | "createdDateTime" | "lastModifiedDateTime"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut settings = c.sub_resources[&format!("{id}/settings")].clone();
        edit(&mut settings);
        body.insert("settings".into(), Value::Array(settings));
        Value::Object(body)
    })
}

/// A PUT of a settings-catalog policy, sent to graph-sim's Graph as the portal sends it.
async fn portal_put(worker: &WorkerHarness, path: &str, body: Value) {
    let creds = Credentials {
        tenant_id: worker.entra_tenant_id.clone(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret: tenantops_core::secret::SecretString::new(DEMO_CLIENT_SECRET),
        secret_version: 1,
    };
    let id = only_id(worker, path);
    worker
        .deps
        .graph
        .request(
            &creds,
            Budget::Intune,
            Method::PUT,
            &format!("beta/{path}/{id}"),
            Some(&body),
            false,
        )
        .await
        .unwrap();
}

/// Lets high-risk types (intents) be restored, as an owner does.
async fn enable_high_risk(stack: &tenantops_tests::TestStack) {
    let r = stack
        .call(tenantops_tests::ApiCall {
            method: "PATCH",
            ..tenantops_tests::ApiCall::post(
                format!("/v1/workspaces/{}", stack.demo.workspace_id),
                json!({"settings": {"restore_high_risk": true}}).to_string(),
            )
            .by(&stack.users().owner)
        })
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A presentation value (an option of an administrative template's setting) as an admin
/// changes it in the portal, whatever its kind.
fn admin_edit(option: &Value) -> Value {
    let mut option = option.clone();
    match option.get("value").cloned() {
        Some(Value::String(_)) => option["value"] = json!("changed by an admin"),
        Some(Value::Bool(b)) => option["value"] = json!(!b),
        Some(Value::Number(n)) => option["value"] = json!(n.as_u64().unwrap_or_default() + 1000),
        _ => option["values"] = json!(["changed.contoso.com"]),
    }
    option
}

/// Moves the object's modification stamp, as every portal save does.
fn touched(object: &mut Value) {
    object["lastModifiedDateTime"] = json!(chrono::Utc::now().to_rfc3339());
}

#[tokio::test]
async fn every_type_restored_in_full_round_trips_an_admins_change_in_place() {
    let in_full: Vec<&str> = CATALOGUE
        .iter()
        .filter(|t| {
            matches!(
                t.restore,
                Restore::Supported {
                    update: Support::Yes,
                    ..
                }
            )
        })
        .map(|t| t.name)
        .collect();
    for (name, ..) in CASES {
        assert!(
            in_full.contains(name),
            "{name} is not marked restored in full"
        );
    }
    let counts: Vec<(&str, usize)> = std::iter::once(("groups", 3))
        .chain(CASES.iter().map(|(_, path, _)| (*path, 1)))
        .collect();
    let (stack, worker) = setup(&counts).await;
    let group = first_group(&worker);
    for (_, path, _) in CASES {
        assign_all(&worker, path, &group);
    }
    sync_groups(&stack, &worker).await;
    let types: Vec<&str> = CASES.iter().map(|(name, ..)| *name).collect();
    enable_high_risk(&stack).await;
    let first = backup(&stack, &worker, &types).await;
    let before = hashes(&stack, &first).await;
    assert_eq!(before.len(), CASES.len());

    // The scenario: one setting removed from a Settings Catalog policy with a PUT.
    let body = portal_body(&worker, POLICIES, |s| {
        s.pop();
    });
    portal_put(&worker, POLICIES, body).await;
    // A compliance setting's value changed, through the same PUT.
    let body = portal_body(&worker, COMPLIANCE, |s| {
        s[0]["settingInstance"]["settingDefinitionId"] = json!("changed_by_an_admin");
    });
    portal_put(&worker, COMPLIANCE, body).await;
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        // An administrative template: a setting's option changed (a presentation value), its
        // last other value removed, one added, its assignments gone.
        let catalog = t.collections[DEFINITIONS].objects.clone();
        let c = t.collections.get_mut(TEMPLATES).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        let values_key = format!("{id}/definitionValues");
        let value_ids: Vec<String> = c.sub_resources[&values_key]
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        let presentations = |v: &str| format!("{values_key}/{v}/presentationValues");
        let edited = value_ids
            .iter()
            .position(|v| !c.sub_resources[&presentations(v)].is_empty())
            .expect("a generated template has a value with options");
        let option = &mut c
            .sub_resources
            .get_mut(&presentations(&value_ids[edited]))
            .unwrap()[0];
        *option = admin_edit(option);
        let values = c.sub_resources.get_mut(&values_key).unwrap();
        if values.len() > edited + 1 {
            values.pop();
        }
        // A definition the template does not configure, so the added value is new content.
        let bound: Vec<String> = values
            .iter()
            .map(|v| v["definition@odata.bind"].as_str().unwrap().to_owned())
            .collect();
        let unused = catalog
            .iter()
            .map(|d| format!("https://graph.microsoft.com/beta/{DEFINITIONS}('{}')", d["id"].as_str().unwrap()))
            .find(|b| !bound.contains(b))
            .unwrap();
        values.push(json!({"id": "added-by-an-admin", "enabled": false,
            "configurationType": "preference", "definition@odata.bind": unused}));
        c.sub_resources.remove(&format!("{id}/assignments"));
        touched(&mut c.objects[0]);
        // A compliance policy: its grace period and description changed.
        let c = t.collections.get_mut(DEVICE_COMPLIANCE).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        let rules = c
            .sub_resources
            .get_mut(&format!("{id}/scheduledActionsForRule"))
            .unwrap();
        rules[0]["scheduledActionConfigurations"][0]["gracePeriodHours"] = json!(72);
        c.objects[0]["description"] = json!("edited by hand");
        touched(&mut c.objects[0]);
        // A policy set: its item swapped for another policy, its assignments gone.
        let c = t.collections.get_mut(POLICY_SETS).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        let items = c.sub_resources.get_mut(&format!("{id}/items")).unwrap();
        items[0]["id"] = json!("swapped-by-an-admin");
        items[0]["payloadId"] = json!("another-policy");
        c.sub_resources.remove(&format!("{id}/assignments"));
        touched(&mut c.objects[0]);
        // An intent: one setting's value flipped.
        let c = t.collections.get_mut(INTENTS).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        let settings = c.sub_resources.get_mut(&format!("{id}/settings")).unwrap();
        settings[0]["valueJson"] = json!("\"changed by an admin\"");
        touched(&mut c.objects[0]);
        // A notification template: its message reworded, another locale added.
        let c = t.collections.get_mut(NOTIFICATIONS).unwrap();
        let id = c.objects[0]["id"].as_str().unwrap().to_owned();
        let messages = c
            .sub_resources
            .get_mut(&format!("{id}/localizedNotificationMessages"))
            .unwrap();
        messages[0]["subject"] = json!("Reworded by an admin");
        messages.push(json!({"id": format!("{id}_fr-fr"), "locale": "fr-fr", "subject": "Bonjour", "messageTemplate": "", "isDefault": false}));
        touched(&mut c.objects[0]);
        // An app configuration: a custom setting's value changed.
        let c = t.collections.get_mut(APP_CONFIGS).unwrap();
        c.objects[0]["customSettings"][0]["value"] = json!("BasicAuth");
        touched(&mut c.objects[0]);
        // App protections and the app configuration: an app added to each.
        for path in PROTECTIONS.iter().chain([&APP_CONFIGS]) {
            let c = t.collections.get_mut(*path).unwrap();
            let id = c.objects[0]["id"].as_str().unwrap().to_owned();
            c.sub_resources.insert(
                format!("{id}/apps"),
                vec![json!({"id": "com.contoso.app", "mobileAppIdentifier": {"bundleId": "com.contoso.app"}})],
            );
            touched(&mut c.objects[0]);
        }
    });
    sync(&stack, &worker, &types).await;
    let caught = backup(&stack, &worker, &types).await;
    let changed = hashes(&stack, &caught).await;
    for ((ty, a), (_, b)) in before.iter().zip(&changed) {
        assert_ne!(a, b, "{ty}: the admin's change is in the next backup");
    }
    worker.sim.clear_requests();

    let p = preview(&stack, &worker, json!({ "backup_set_id": first })).await;
    assert_eq!(p.status, 202, "{}", p.body);
    assert_eq!(p.body["restore"]["executable"], true, "{}", p.body);
    for item in p.body["items"].as_array().unwrap() {
        let ty = item["object_type"].as_str().unwrap();
        let (_, _, shows) = CASES.iter().find(|(name, ..)| *name == ty).unwrap();
        assert_eq!(item["action"], "update", "{item}");
        assert_eq!(item["diff_base"], "latest_backup", "{item}");
        assert!(
            item["diff"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["path"].as_str().unwrap().starts_with(shows)),
            "{ty}: the preview shows the change at {shows}: {item}"
        );
    }
    // The option's new text shows where it lives, not as a whole value replaced.
    let template = p.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["object_type"] == "groupPolicyConfigurations")
        .unwrap();
    assert!(
        template["diff"].as_array().unwrap().iter().any(|c| {
            let path = c["path"].as_str().unwrap();
            path.starts_with("definitionValues[") && path.contains("].presentationValues[")
        }),
        "{template}"
    );
    assert!(worker.sim.writes().is_empty(), "a preview never writes");

    let (restore, token) = ids(&p);
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    let writes = worker.sim.writes();
    for (method, path) in [
        ("PUT", format!("/{POLICIES}/{}", only_id(&worker, POLICIES))),
        (
            "PUT",
            format!("/{COMPLIANCE}/{}", only_id(&worker, COMPLIANCE)),
        ),
        ("POST", "/updateDefinitionValues".to_owned()),
        ("POST", "/scheduleActionsForRules".to_owned()),
        (
            "POST",
            format!("/{POLICY_SETS}/{}/update", only_id(&worker, POLICY_SETS)),
        ),
        (
            "POST",
            format!("/{INTENTS}/{}/updateSettings", only_id(&worker, INTENTS)),
        ),
        ("PATCH", "/localizedNotificationMessages/".to_owned()),
        ("DELETE", "_fr-fr".to_owned()),
        (
            "POST",
            format!(
                "/{APP_CONFIGS}/{}/targetApps",
                only_id(&worker, APP_CONFIGS)
            ),
        ),
    ] {
        assert!(
            writes
                .iter()
                .any(|w| w.method == method && w.path.contains(&path)),
            "{method} {path}: {writes:?}"
        );
    }
    assert!(
        writes.iter().all(|w| w.method != "POST"
            || !["Policies", "Configurations", "Sets"]
                .iter()
                .any(|c| w.path.ends_with(c))),
        "an update creates nothing: {writes:?}"
    );

    let again = backup(&stack, &worker, &types).await;
    assert_eq!(
        hashes(&stack, &again).await,
        before,
        "backup -> admin change -> restore -> backup gives the first backup's hashes"
    );
}

/// graph-sim holds its in-place writes to what it holds every write to: the app's write
/// permission, and Graph's 400 for a body Graph refuses (which changes nothing).
#[tokio::test]
async fn graph_sim_refuses_in_place_writes_graph_refuses() {
    use tenantops_graph::{GraphClient, GraphConfig, GraphError};
    use tenantops_graph_sim::{GraphSim, SimClient, SimConfig};
    const TENANT: &str = "0a1b2c3d-0000-4000-8000-000000000013";
    let mut reader = SimClient::new("reader", "secret");
    reader.granted = ["DeviceManagementConfiguration.Read.All".to_owned()].into();
    let mut config = SimConfig::generated(
        TENANT,
        SimClient::new("app", "secret"),
        &[(POLICIES, 1), (TEMPLATES, 1)],
    );
    config.tenants[0].clients.push(reader);
    let sim = GraphSim::start(config).await.unwrap();
    let client = GraphClient::new(
        GraphConfig {
            graph_base: sim.graph_base_url(),
            login_base: sim.login_base_url(),
        },
        tenantops_graph::throttle::RetryPolicy::default(),
    )
    .unwrap();
    let creds = |id: &str| Credentials {
        tenant_id: TENANT.into(),
        client_id: id.into(),
        client_secret: tenantops_core::secret::SecretString::new("secret"),
        secret_version: 1,
    };
    let (policy, template) = sim.with_tenant(TENANT, |t| {
        let id = |p: &str| {
            t.collections[p].objects[0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        (id(POLICIES), id(TEMPLATES))
    });
    let settings = |sim: &GraphSim| {
        sim.with_tenant(TENANT, |t| {
            t.collections[POLICIES].sub_resources[&format!("{policy}/settings")].clone()
        })
    };
    let before = settings(&sim);
    let put = |who: &'static str, body: Value| {
        let (client, creds, path) = (&client, creds(who), format!("beta/{POLICIES}/{policy}"));
        async move {
            client
                .request(
                    &creds,
                    Budget::Intune,
                    Method::PUT,
                    &path,
                    Some(&body),
                    false,
                )
                .await
        }
    };

    let e = put("reader", json!({"name": "P", "settings": []}))
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::PermissionDenied), "{e:?}");
    let e = put("app", json!({"name": "P"})).await.unwrap_err();
    assert!(
        matches!(e, GraphError::Rejected { status: 400, .. }),
        "a PUT without its settings: {e:?}"
    );
    let unknown = json!({"added": [], "updated": [], "deletedIds": ["not-a-value"]});
    let e = client
        .request(
            &creds("app"),
            Budget::Intune,
            Method::POST,
            &format!("beta/{TEMPLATES}/{template}/updateDefinitionValues"),
            Some(&unknown),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, GraphError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    // A value added without the definition it configures (Graph takes it only bound).
    let values = |sim: &GraphSim| {
        sim.with_tenant(TENANT, |t| {
            t.collections[TEMPLATES].sub_resources[&format!("{template}/definitionValues")].clone()
        })
    };
    let before_values = values(&sim);
    for unbound in [
        json!({"added": [{"enabled": true, "configurationType": "policy"}]}),
        json!({"added": [{"enabled": true, "definition": before_values[0].clone()}]}),
    ] {
        let e = client
            .request(
                &creds("app"),
                Budget::Intune,
                Method::POST,
                &format!("beta/{TEMPLATES}/{template}/updateDefinitionValues"),
                Some(&unbound),
                false,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, GraphError::Rejected { status: 400, .. }),
            "{unbound}: {e:?}"
        );
    }
    assert_eq!(
        values(&sim),
        before_values,
        "a refused value changes nothing"
    );
    assert_eq!(settings(&sim), before, "a refused write changes nothing");
    let writes = sim.writes();
    assert_eq!(
        writes.iter().map(|w| w.status).collect::<Vec<_>>(),
        vec![403, 400, 400, 400, 400],
        "each refusal is logged as a write"
    );
}
