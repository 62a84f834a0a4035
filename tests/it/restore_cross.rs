//! A restore into another tenant of the same workspace (a migration), against graph-sim
//! serving both tenants: targets mapped by display name and explicitly, an unresolved one
//! that blocks execution until the mapping is fixed, the objects created in the destination
//! with their mapped assignments and scope tags, both tenants' audit logs, and isolation.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tenantops_aws::AuditQuery;
use tenantops_core::{Outcome, RunStatus, TenantId, UserId};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::tenants::{ConnectedTenant, sim_serving};
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

use crate::restore::backup;

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const TAGS: &str = "deviceManagement/roleScopeTags";

pub(crate) fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

fn path(stack: &TestStack, tenant: TenantId, rest: &str) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{tenant}/{rest}",
        stack.demo.workspace_id
    )
}

/// Replaces the tenant's groups or scope tags with `(id, displayName)`s.
pub(crate) fn set_objects(
    worker: &WorkerHarness,
    entra: &str,
    collection: &str,
    objects: &[(&str, &str)],
) {
    worker.sim.with_tenant(entra, |t| {
        t.collections.get_mut(collection).unwrap().objects = objects
            .iter()
            .map(|(id, name)| json!({"id": id, "displayName": name, "description": ""}))
            .collect();
    });
}

/// Runs a start on `tenant` to its successful end.
pub(crate) async fn run_on(
    stack: &TestStack,
    worker: &WorkerHarness,
    tenant: TenantId,
    body: Value,
) {
    let r = stack
        .call(
            ApiCall::post(
                stack.start_path(stack.demo.workspace_id, tenant),
                body.to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");
}

/// Starts a preview of `set` from tenant `a` into `b`; a started one is worked to its end and
/// answered as the restore with its items, and the token.
async fn preview(
    stack: &TestStack,
    worker: &WorkerHarness,
    a: TenantId,
    b: TenantId,
    set: &str,
    mapping: Value,
) -> Reply {
    let body = json!({"backup_set_id": set, "destination_tenant_id": b, "mapping": mapping});
    let started = stack
        .call(ApiCall::post(path(stack, a, "restores"), body.to_string()).by(&stack.users().owner))
        .await;
    if started.status != 202 {
        return started;
    }
    assert_eq!(
        started.body["restore"]["tenant_id"],
        json!(b),
        "{}",
        started.body
    );
    assert_eq!(
        started.body["run"]["tenant_id"],
        json!(b),
        "the run is the destination's"
    );
    worker.drain().await;
    let run = stack.run(&started.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    let restore = started.body["restore"]["id"].as_str().unwrap();
    let r = stack
        .call(
            ApiCall::get(path(stack, b, &format!("restores/{restore}?limit=100")))
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Reply {
        body: json!({
            "restore": r.body["restore"],
            "items": r.body["items"],
            "confirmation_token": started.body["confirmation_token"],
        }),
        ..started
    }
}

async fn execute(stack: &TestStack, b: TenantId, r: &Reply) -> Reply {
    let restore = r.body["restore"]["id"].as_str().unwrap();
    stack
        .call(
            ApiCall::post(
                path(stack, b, &format!("restores/{restore}/execute")),
                json!({"confirmation_token": r.body["confirmation_token"]}).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await
}

/// The target of an item's assignment targets with this source id.
fn target<'a>(items: &'a [Value], source_id: &str) -> &'a Value {
    items
        .iter()
        .flat_map(|i| i["assignment_targets"].as_array().unwrap())
        .find(|t| t["source_id"] == source_id)
        .unwrap_or_else(|| panic!("no target {source_id} in {items:?}"))
}

async fn audit_actions(stack: &TestStack, tenant: TenantId) -> BTreeSet<String> {
    let (entries, _) = stack
        .store()
        .list_audit(&AuditQuery {
            workspace: stack.demo.workspace_id,
            action: None,
            tenant: Some(tenant),
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    entries.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn a_backup_of_one_tenant_restores_into_another_with_targets_mapped() {
    let stack = TestStack::new().await;
    let owner: UserId = stack.users().owner.clone();
    let a: ConnectedTenant = stack.demo_tenant().await;
    let b = stack
        .add_connected_tenants(stack.demo.workspace_id, &owner, 1)
        .await
        .remove(0);
    let mut config = sim_serving(
        &[a.clone(), b.clone()],
        &[(CONFIGS, 3), ("groups", 2), (TAGS, 1)],
    );
    config.idempotent_creates = false;
    let worker = stack.worker_with(config, policy()).await;
    let (ea, eb) = (a.entra_tenant_id.as_str(), b.entra_tenant_id.as_str());

    // Tenant A: three profiles, each assigned to one group; the first also scope-tagged.
    set_objects(
        &worker,
        ea,
        "groups",
        &[
            ("ga-pilot", "Pilot devices"),
            ("ga-fin", "Finance"),
            ("ga-con", "Contractors"),
        ],
    );
    set_objects(&worker, ea, TAGS, &[("0", "Default"), ("1", "Europe")]);
    let profiles: Vec<(String, String)> = worker.sim.with_tenant(ea, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        let groups = ["ga-pilot", "ga-fin", "ga-con"];
        let mut out = Vec::new();
        for (i, o) in c.objects.iter_mut().enumerate() {
            let id = o["id"].as_str().unwrap().to_owned();
            o["displayName"] = json!(format!("Migrated profile {i}"));
            if i == 0 {
                o["roleScopeTagIds"] = json!(["0", "1"]);
            }
            out.push((id, groups[i].to_owned()));
        }
        for (id, group) in &out {
            c.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({
                    "id": format!("{id}_{group}"),
                    "target": {
                        "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                        "groupId": group,
                        "deviceAndAppManagementAssignmentFilterId": null,
                        "deviceAndAppManagementAssignmentFilterType": "none"
                    }
                })],
            );
        }
        out
    });
    // Tenant B: the pilot group and the scope tag by the same names, finance by another
    // name, no contractors; no profiles.
    set_objects(
        &worker,
        eb,
        "groups",
        &[
            ("gb-pilot", "Pilot devices"),
            ("gb-fin", "Finance EU"),
            ("gb-ext", "External staff"),
        ],
    );
    set_objects(&worker, eb, TAGS, &[("0", "Default"), ("7", "Europe")]);
    worker.sim.with_tenant(eb, |t| {
        let c = t.collections.get_mut(CONFIGS).unwrap();
        c.objects.clear();
        c.sub_resources.clear();
    });
    for t in [a.id, b.id] {
        run_on(&stack, &worker, t, json!({"type": "directory_groups.sync"})).await;
        run_on(&stack, &worker, t, json!({"type": "inventory.sync", "params": {"types": ["roleScopeTags", "deviceConfigurations"]}})).await;
    }
    let set = backup(&stack, &worker, &["deviceConfigurations"]).await;

    // Isolation first: another workspace's tenant as destination, or another workspace's
    // set, is missing, and nothing is created.
    let before = stack.snapshot().await;
    let other = stack.demo.other_tenant_id;
    let r = stack
        .call(
            ApiCall::post(
                path(&stack, a.id, "restores"),
                json!({"backup_set_id": set, "destination_tenant_id": other}).to_string(),
            )
            .by(&owner),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "tenant.not_found"),
        "{}",
        r.body
    );
    let r = stack
        .call(
            ApiCall::post(
                format!(
                    "/v1/workspaces/{}/tenants/{other}/restores",
                    stack.demo.other_workspace_id
                ),
                json!({"backup_set_id": set, "destination_tenant_id": b.id}).to_string(),
            )
            .by(&owner),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = stack
        .call(
            ApiCall::post(
                path(&stack, b.id, "restores"),
                json!({"backup_set_id": set, "destination_tenant_id": a.id}).to_string(),
            )
            .by(&owner),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "restore.backup_set_not_found"),
        "a set is read from the path's tenant only: {}",
        r.body
    );
    // The capability is the caller's role in the workspace, which covers both tenants.
    for (user, status) in [
        (&stack.users().readonly, 403),
        (&stack.users().outsider, 404),
    ] {
        let r = stack
            .call(
                ApiCall::post(
                    path(&stack, a.id, "restores"),
                    json!({"backup_set_id": set, "destination_tenant_id": b.id}).to_string(),
                )
                .by(user),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    assert_eq!(stack.snapshot().await, before, "a refusal creates nothing");

    // Pilot by name, finance explicitly, contractors unresolved: blocked, and said so.
    let first = preview(
        &stack,
        &worker,
        a.id,
        b.id,
        &set,
        json!({"groups": {"ga-fin": "gb-fin"}}),
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let restore = &first.body["restore"];
    assert_eq!(restore["source_tenant_id"], json!(a.id));
    assert_eq!(restore["tenant_id"], json!(b.id));
    assert_eq!(restore["executable"], false, "{restore}");
    assert_eq!(restore["blockers"], json!(["mapping_unresolved"]));
    let items = first.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["action"] == "create"), "{items:?}");
    let pilot = target(&items, "ga-pilot");
    assert_eq!(
        (&pilot["status"], &pilot["target_id"], &pilot["source_name"]),
        (
            &json!("mapped_by_name"),
            &json!("gb-pilot"),
            &json!("Pilot devices")
        )
    );
    let fin = target(&items, "ga-fin");
    assert_eq!(
        (&fin["status"], &fin["target_id"]),
        (&json!("mapped"), &json!("gb-fin"))
    );
    let con = target(&items, "ga-con");
    assert_eq!(
        (&con["status"], &con["reason"], &con["source_name"]),
        (
            &json!("unresolved"),
            &json!("restore.mapping_unresolved"),
            &json!("Contractors")
        )
    );
    let tag = target(&items, "1");
    assert_eq!(
        (&tag["kind"], &tag["status"], &tag["target_id"]),
        (&json!("scope_tag"), &json!("mapped_by_name"), &json!("7"))
    );
    let refused = execute(&stack, b.id, &first).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "restore.mapping_unresolved"),
        "{}",
        refused.body
    );
    assert!(
        worker
            .sim
            .with_tenant(eb, |t| t.collections[CONFIGS].objects.is_empty())
    );

    // The operator fixes the mapping and previews again; then it executes.
    let fixed = preview(
        &stack,
        &worker,
        a.id,
        b.id,
        &set,
        json!({"groups": {"ga-fin": "gb-fin", "ga-con": "gb-ext"}}),
    )
    .await;
    assert_eq!(fixed.body["restore"]["executable"], true, "{}", fixed.body);
    let started = execute(&stack, b.id, &fixed).await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(
        started.body["run"]["tenant_id"],
        json!(b.id),
        "the destination is locked and written"
    );
    worker.drain().await;
    let run = stack.run(&started.run_id()).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{run:?}");

    // B holds the three profiles, each with its type, its mapped group and scope tags.
    let expected = [
        ("ga-pilot", "gb-pilot"),
        ("ga-fin", "gb-fin"),
        ("ga-con", "gb-ext"),
    ];
    worker.sim.with_tenant(eb, |t| {
        let c = &t.collections[CONFIGS];
        assert_eq!(c.objects.len(), 3);
        for (i, (_, source_group)) in profiles.iter().enumerate() {
            let o = c
                .objects
                .iter()
                .find(|o| o["displayName"] == format!("Migrated profile {i}"))
                .unwrap();
            assert!(
                o["@odata.type"]
                    .as_str()
                    .unwrap()
                    .starts_with("#microsoft.graph."),
                "{o}"
            );
            let id = o["id"].as_str().unwrap();
            let assigned = &c.sub_resources[&format!("{id}/assignments")];
            let want = expected
                .iter()
                .find(|(s, _)| *s == source_group.as_str())
                .unwrap()
                .1;
            assert_eq!(assigned.len(), 1);
            assert_eq!(assigned[0]["target"]["groupId"], want, "{assigned:?}");
            if i == 0 {
                assert_eq!(o["roleScopeTagIds"], json!(["0", "7"]));
            }
        }
    });
    assert!(
        worker
            .sim
            .with_tenant(ea, |t| t.collections[CONFIGS].objects.len())
            == 3,
        "the source is only read"
    );

    // Both tenants' audit logs record the preview and the execution.
    let in_a = audit_actions(&stack, a.id).await;
    for action in [
        "restore.preview_started",
        "restore.previewed",
        "restore.execute_started",
        "restore.executed",
    ] {
        assert!(in_a.contains(action), "{action} not in A's log: {in_a:?}");
    }
    let in_b = audit_actions(&stack, b.id).await;
    for action in [
        "operation.start",
        "restore.previewed",
        "restore.executed",
        "restore.object_written",
    ] {
        assert!(in_b.contains(action), "{action} not in B's log: {in_b:?}");
    }
}
