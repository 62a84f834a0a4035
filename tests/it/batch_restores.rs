//! A restore batch: a baseline backup set previewed into many tenants, then written only once
//! confirmed with its token. One tenant's plan is blocked (a group it lacks), so its execution
//! is refused with that reason while the other tenant's goes on; the token is answered once
//! and never shown; wrong tokens, early or repeated confirmations, other workspaces and
//! roles without the capability change nothing.

use std::time::Duration;

use serde_json::{Value, json};
use tenantops_core::TenantId;
use tenantops_tests::tenants::sim_serving;
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

use crate::restore::backup;
use crate::restore_cross::{policy, run_on, set_objects};

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const TAGS: &str = "deviceManagement/roleScopeTags";

/// The batch at `path` once it is no longer starting or running.
async fn settled(stack: &TestStack, worker: &WorkerHarness, path: &str) -> Reply {
    let owner = &stack.users().owner;
    let mut view = stack.call(ApiCall::get(path.to_owned()).by(owner)).await;
    for _ in 0..40 {
        worker.drain().await;
        view = stack.call(ApiCall::get(path.to_owned()).by(owner)).await;
        assert_eq!(view.status, 200, "{}", view.body);
        if !matches!(
            view.body["batch"]["status"].as_str(),
            Some("starting" | "running")
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    view
}

fn child(view: &Value, tenant: TenantId) -> &Value {
    view["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenant_id"] == json!(tenant))
        .unwrap_or_else(|| panic!("no child of {tenant} in {view}"))
}

#[tokio::test]
async fn a_restore_batch_previews_each_tenant_and_writes_only_once_confirmed() {
    let stack = TestStack::new().await;
    let ws = stack.demo.workspace_id;
    let users = stack.users().clone();
    let a = stack.demo_tenant().await;
    let mut more = stack.add_connected_tenants(ws, &users.owner, 2).await;
    let (c, b) = (more.remove(1), more.remove(0));
    let mut config = sim_serving(
        &[a.clone(), b.clone(), c.clone()],
        &[(CONFIGS, 2), ("groups", 1), (TAGS, 1)],
    );
    config.idempotent_creates = false;
    let worker = stack.worker_with(config, policy()).await;
    let (ea, eb, ec) = (
        a.entra_tenant_id.as_str(),
        b.entra_tenant_id.as_str(),
        c.entra_tenant_id.as_str(),
    );
    // The baseline (A): two profiles assigned to its pilot group. B has a pilot group by the
    // same name; C has none, so its plan is blocked. Neither has profiles.
    set_objects(&worker, ea, "groups", &[("ga-pilot", "Pilot devices")]);
    set_objects(&worker, eb, "groups", &[("gb-pilot", "Pilot devices")]);
    set_objects(&worker, ec, "groups", &[("gc-other", "Someone else")]);
    for e in [ea, eb, ec] {
        set_objects(&worker, e, TAGS, &[("0", "Default")]);
    }
    worker.sim.with_tenant(ea, |t| {
        let col = t.collections.get_mut(CONFIGS).unwrap();
        let ids: Vec<String> = col
            .objects
            .iter_mut()
            .enumerate()
            .map(|(i, o)| {
                o["displayName"] = json!(format!("Baseline profile {i}"));
                o["id"].as_str().unwrap().to_owned()
            })
            .collect();
        for id in ids {
            col.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({
                    "id": format!("{id}_pilot"),
                    "target": {
                        "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                        "groupId": "ga-pilot",
                        "deviceAndAppManagementAssignmentFilterId": null,
                        "deviceAndAppManagementAssignmentFilterType": "none"
                    }
                })],
            );
        }
    });
    for e in [eb, ec] {
        worker.sim.with_tenant(e, |t| {
            let col = t.collections.get_mut(CONFIGS).unwrap();
            col.objects.clear();
            col.sub_resources.clear();
        });
    }
    for t in [a.id, b.id, c.id] {
        run_on(&stack, &worker, t, json!({"type": "directory_groups.sync"})).await;
        run_on(&stack, &worker, t, json!({"type": "inventory.sync", "params": {"types": ["roleScopeTags", "deviceConfigurations"]}})).await;
    }
    let set = backup(&stack, &worker, &["deviceConfigurations"]).await;

    let batches = format!("/v1/workspaces/{ws}/batches");
    let request = |params: Value| {
        json!({
            "type": "restore.preview",
            "params": params,
            "tenants": [b.id, c.id],
        })
        .to_string()
    };
    let baseline = json!({"source_tenant_id": a.id, "backup_set_id": set});

    // Refusals write nothing: a destination in the params, another workspace's source, a
    // read-only member, a non-member.
    let before = stack.snapshot().await;
    let other = stack.demo.other_tenant_id;
    for (params, by, status, code) in [
        (
            json!({"source_tenant_id": a.id, "backup_set_id": set, "destination_tenant_id": b.id}),
            &users.operator,
            422,
            "operation.invalid_params",
        ),
        (
            json!({"source_tenant_id": other, "backup_set_id": set}),
            &users.operator,
            404,
            "tenant.not_found",
        ),
        (baseline.clone(), &users.readonly, 403, "auth.forbidden"),
        (
            baseline.clone(),
            &users.outsider,
            404,
            "workspace.not_found",
        ),
    ] {
        let r = stack
            .call(ApiCall::post(batches.clone(), request(params)).by(by))
            .await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused batch wrote nothing"
    );

    // An operator previews the baseline into B and C: the token comes once.
    let r = stack
        .call(ApiCall::post(batches.clone(), request(baseline.clone())).by(&users.operator))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let token = r.body["confirmation_token"].as_str().unwrap().to_owned();
    let view_path = r.body["links"]["view"].as_str().unwrap().to_owned();
    let execute_path = r.body["links"]["execute"].as_str().unwrap().to_owned();
    let previews = settled(&stack, &worker, &view_path).await;
    assert_eq!(
        previews.body["batch"]["status"], "awaiting_confirmation",
        "{}",
        previews.body
    );
    let text = previews.body.to_string();
    assert!(
        !text.contains(&token) && !text.contains("token_hash"),
        "{text}"
    );
    // Each child is its tenant's restore of the baseline: B's executable, C's blocked.
    for (t, executable) in [(b.id, true), (c.id, false)] {
        let link = child(&previews.body, t)["restore"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = stack.call(ApiCall::get(link).by(&users.owner)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["restore"]["source_tenant_id"], json!(a.id));
        assert_eq!(r.body["restore"]["executable"], executable, "{}", r.body);
    }
    assert!(
        worker
            .sim
            .with_tenant(eb, |t| t.collections[CONFIGS].objects.is_empty()),
        "a preview writes nothing"
    );

    // Confirmations that change nothing: another token, a role without restore.execute,
    // another workspace's path, a batch that is not a restore batch.
    let before = stack.snapshot().await;
    let confirm = |token: &str| json!({ "confirmation_token": token }).to_string();
    let other_ws = stack.demo.other_workspace_id;
    let batch_id = previews.body["batch"]["id"].as_str().unwrap();
    for (path, by, tok, status, code) in [
        (
            execute_path.clone(),
            &users.owner,
            "not-the-token",
            409,
            "batch.confirmation_invalid",
        ),
        (
            execute_path.clone(),
            &users.operator,
            token.as_str(),
            403,
            "auth.forbidden",
        ),
        (
            format!("/v1/workspaces/{other_ws}/batches/{batch_id}/execute"),
            &users.owner,
            token.as_str(),
            404,
            "workspace.not_found",
        ),
    ] {
        let r = stack.call(ApiCall::post(path, confirm(tok)).by(by)).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused confirmation wrote nothing"
    );

    // The owner confirms: one execution batch, however often the token is presented.
    let r = stack
        .call(ApiCall::post(execute_path.clone(), confirm(&token)).by(&users.owner))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["batch"]["type"], "restore.execute");
    assert_eq!(r.body["batch"]["execute_of"], json!(batch_id));
    let execution = r.body["batch"]["id"].clone();
    let again = stack
        .call(ApiCall::post(execute_path.clone(), confirm(&token)).by(&users.owner))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["batch"]["id"], execution);

    let exec_path = r.body["links"]["view"].as_str().unwrap().to_owned();
    let done = settled(&stack, &worker, &exec_path).await;
    assert_eq!(
        done.body["batch"]["status"], "partially_succeeded",
        "{}",
        done.body
    );
    let b_child = child(&done.body, b.id);
    assert_eq!(b_child["outcome"], "succeeded", "{}", done.body);
    let c_child = child(&done.body, c.id);
    assert_eq!(
        (&c_child["origin"], &c_child["reason"]),
        (&json!("refused"), &json!("restore.mapping_unresolved")),
        "{}",
        done.body
    );
    // B holds the baseline's profiles, assigned to its own pilot group; C holds nothing.
    worker.sim.with_tenant(eb, |t| {
        let col = &t.collections[CONFIGS];
        assert_eq!(col.objects.len(), 2);
        for o in &col.objects {
            let id = o["id"].as_str().unwrap();
            let assigned = &col.sub_resources[&format!("{id}/assignments")];
            assert_eq!(assigned[0]["target"]["groupId"], "gb-pilot", "{assigned:?}");
        }
    });
    assert!(
        worker
            .sim
            .with_tenant(ec, |t| t.collections[CONFIGS].objects.is_empty())
    );

    // The restore batch shows its execution; an execution is not retried, and the restore
    // batch is not confirmed twice.
    let previews = stack
        .call(ApiCall::get(view_path.clone()).by(&users.owner))
        .await;
    assert_eq!(previews.body["batch"]["status"], "executed");
    assert_eq!(previews.body["batch"]["execution_id"], execution);
    let r = stack
        .call(ApiCall::post(format!("{exec_path}/retry"), "").by(&users.owner))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "batch.not_retryable"),
        "{}",
        r.body
    );
    let r = stack
        .call(ApiCall::post(format!("{exec_path}/execute"), confirm(&token)).by(&users.owner))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "batch.not_confirmable"),
        "{}",
        r.body
    );
}
