//! Restore previews as runs, at real size: a tenant of large objects (a 300 KB script and a
//! settings catalog policy with 2,000 settings) previewed within DynamoDB's item and
//! transaction limits and Lambda's response limit, then executed; a whole backup set of more
//! than 500 objects; dedupe per (set, selection) while active; isolation; no secret in items
//! or answers.

use serde_json::{Value, json};
use tenantops_aws::previews::item_bytes;
use tenantops_core::{Outcome, RunStatus};
use tenantops_local::seed::DEMO_CLIENT_SECRET;
use tenantops_tests::{ApiCall, Reply, TestStack, WorkerHarness};

use crate::restore::{
    POLICIES, SCRIPTS, all_items, assign_all, backup, delete_all, execute_as, first_group,
    names_in, preview_as, setup, sync, sync_groups, tenant_path,
};

/// DynamoDB's item limit and Lambda's response limit.
const DYNAMO_ITEM_LIMIT: usize = 400 * 1024;
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Makes the tenant's first script 300 KB and its first settings catalog policy 2,000
/// settings long (graph-sim's generated objects, enlarged in place as an admin would).
fn enlarge(worker: &WorkerHarness) -> (String, usize) {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let scripts = t.collections.get_mut(SCRIPTS).unwrap();
        let content: String = "V3JpdGUtSG9zdCAiaGVsbG8iCg=="
            .chars()
            .cycle()
            .take(300 * 1024)
            .collect();
        scripts.objects[0]["scriptContent"] = json!(content);
        let policies = t.collections.get_mut(POLICIES).unwrap();
        let id = policies.objects[0]["id"].as_str().unwrap().to_owned();
        let settings = policies
            .sub_resources
            .get_mut(&format!("{id}/settings"))
            .unwrap();
        let template = settings[0].clone();
        *settings = (0..2_000)
            .map(|n| {
                let mut s = template.clone();
                s["id"] = json!(n.to_string());
                s
            })
            .collect();
        if policies.objects[0].get("settingCount").is_some() {
            policies.objects[0]["settingCount"] = json!(2_000);
        }
        (id, content.len())
    })
}

/// Starts a preview as the owner, without working it.
async fn start(stack: &TestStack, body: Value) -> Reply {
    stack
        .call(
            ApiCall::post(tenant_path(stack, "restores"), body.to_string())
                .by(&stack.users().owner),
        )
        .await
}

/// Every stored item of a restore, raw.
async fn stored_items(
    stack: &TestStack,
    restore: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let pk = tenantops_aws::keys::restore_items_of(
        stack.demo.workspace_id,
        stack.demo.tenant_id,
        restore.parse().unwrap(),
    );
    let (mut out, mut start) = (Vec::new(), None);
    loop {
        let page = stack
            .dynamodb
            .query()
            .table_name(&stack.resources.table_name)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()),
            )
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

#[tokio::test]
async fn a_preview_of_large_objects_is_a_run_within_dynamodb_and_lambda_limits_and_executes() {
    let (stack, worker) = setup(&[("groups", 2), (SCRIPTS, 2), (POLICIES, 2)]).await;
    let (_, script_len) = enlarge(&worker);
    let group = first_group(&worker);
    assign_all(&worker, SCRIPTS, &group);
    assign_all(&worker, POLICIES, &group);
    sync_groups(&stack, &worker).await;
    // Scripts are high-risk: the owner allows such restores.
    let r = stack
        .call(ApiCall {
            method: "PATCH",
            ..ApiCall::post(
                format!("/v1/workspaces/{}", stack.demo.workspace_id),
                json!({"settings": {"restore_high_risk": true}}).to_string(),
            )
            .by(&stack.users().owner)
        })
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let types = ["deviceManagementScripts", "configurationPolicies"];
    let set = backup(&stack, &worker, &types).await;
    let names = (names_in(&worker, SCRIPTS), names_in(&worker, POLICIES));
    delete_all(&worker, SCRIPTS);
    delete_all(&worker, POLICIES);
    sync(&stack, &worker, &types).await;

    // 202 with the run and the restore, which exists at once, previewing and not executable.
    let started = start(&stack, json!({ "backup_set_id": set })).await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.body["run"]["type"], "restore.preview");
    assert!(
        started.body["links"]["view"].is_string(),
        "{}",
        started.body
    );
    assert_eq!(started.body["restore"]["status"], "previewing");
    let restore = started.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = started.body["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (record, items) = all_items(&stack, &restore).await;
    assert_eq!(record["status"], "previewing");
    assert_eq!(record["preview_run_id"], started.body["run"]["id"]);
    assert!(items.is_empty());
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "restore.preview_pending"),
        "{}",
        r.body
    );

    worker.drain().await;
    let run = stack.run(&started.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    assert_eq!(
        (run.counters.total, run.counters.succeeded),
        (4, 4),
        "{run:?}"
    );
    assert_eq!(run.result.as_ref().unwrap()["restore_id"], restore.as_str());

    // Every stored item is under DynamoDB's limit: far under, as the long diffs are excerpts
    // (the objects themselves are 300 KB and more).
    let stored = stored_items(&stack, &restore).await;
    assert_eq!(stored.len(), 4);
    for item in &stored {
        let size = item_bytes(item);
        assert!(size < DYNAMO_ITEM_LIMIT, "{size} bytes");
        assert!(size < 64 * 1024, "{size} bytes");
        assert!(!format!("{item:?}").contains(DEMO_CLIENT_SECRET));
    }

    // Pages of one item and the default page both stay under Lambda's 6 MB; together they are
    // every item once, in index order.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=1&cursor={c}"),
            None => "?limit=1".to_owned(),
        };
        let r = stack
            .call(
                ApiCall::get(tenant_path(&stack, &format!("restores/{restore}{query}")))
                    .by(&stack.users().owner),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let text = r.body.to_string();
        assert!(text.len() < LAMBDA_RESPONSE_LIMIT, "{} bytes", text.len());
        assert!(!text.contains(DEMO_CLIENT_SECRET));
        assert!(r.body["items"].as_array().unwrap().len() <= 1);
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["index"].clone()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![json!(0), json!(1), json!(2), json!(3)]);
    let (record, items) = all_items(&stack, &restore).await;
    assert_eq!(record["status"], "previewed");
    assert_eq!(record["executable"], true, "{record}");
    assert_eq!(record["item_count"], 4);
    assert!(items.iter().all(|i| i["action"] == "create"), "{items:?}");

    // The script's diff is cut to an excerpt; the whole diff is in the snapshot bucket.
    let script = items
        .iter()
        .find(|i| i["object_type"] == "deviceManagementScripts" && i["diff_truncated"] == true)
        .expect("the large script's diff is cut");
    let content = script["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "scriptContent")
        .expect("its content is in the excerpt");
    assert_eq!(content["excerpt"], true);
    assert!(content["after"].as_str().unwrap().len() < 1024);
    let key = tenantops_aws::snapshots::restore_diff_key(
        stack.demo.workspace_id,
        stack.demo.tenant_id,
        restore.parse().unwrap(),
        script["index"].as_u64().unwrap() as u32,
    );
    let whole: Vec<Value> =
        serde_json::from_slice(&stack.snapshots.get(&key).await.unwrap()).unwrap();
    let whole_content = whole.iter().find(|c| c["path"] == "scriptContent").unwrap();
    assert_eq!(whole_content["after"].as_str().unwrap().len(), script_len);
    assert!(
        items
            .iter()
            .any(|i| i["object_type"] == "configurationPolicies" && i["diff_truncated"] == true),
        "the 2,000-setting policy's diff is cut too"
    );

    // Confirm and execute as today: both objects come back whole.
    let r = execute_as(&stack, &stack.users().owner, &restore, &token).await;
    assert_eq!(r.status, 202, "{}", r.body);
    worker.drain().await;
    let run = stack.run(&r.run_id()).await;
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{run:?}"
    );
    assert_eq!(
        (names_in(&worker, SCRIPTS), names_in(&worker, POLICIES)),
        names
    );
    let (restored_len, restored_settings) = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let longest = t.collections[SCRIPTS]
            .objects
            .iter()
            .filter_map(|o| o["scriptContent"].as_str().map(str::len))
            .max();
        let most = t.collections[POLICIES]
            .sub_resources
            .iter()
            .filter(|(k, _)| k.ends_with("/settings"))
            .map(|(_, v)| v.len())
            .max();
        (longest, most)
    });
    assert_eq!(restored_len, Some(script_len));
    assert_eq!(restored_settings, Some(2_000));
    for item in stored_items(&stack, &restore).await {
        assert!(!format!("{item:?}").contains(DEMO_CLIENT_SECRET));
    }
}

#[tokio::test]
async fn a_whole_backup_set_of_more_than_500_objects_previews() {
    const CONFIGS: &str = "deviceManagement/deviceConfigurations";
    let (stack, worker) = setup(&[(CONFIGS, 520)]).await;
    let set = backup(&stack, &worker, &["deviceConfigurations"]).await;

    let p = preview_as(
        &stack,
        &worker,
        &stack.users().owner,
        json!({ "backup_set_id": set }),
    )
    .await;
    assert_eq!(p.status, 202, "{}", p.body);
    assert_eq!(
        p.body["restore"]["item_count"], 520,
        "{}",
        p.body["restore"]
    );
    let items = p.body["items"].as_array().unwrap();
    let indices: Vec<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, (0..520).collect::<Vec<u64>>());

    // Naming more than 500 items is its own problem, stating the limit.
    let named: Vec<Value> = items
        .iter()
        .take(501)
        .map(|i| json!({"object_type": i["object_type"], "object_id": i["object_id"]}))
        .collect();
    let r = start(&stack, json!({ "backup_set_id": set, "items": named })).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "restore.too_many_items"),
        "{}",
        r.body
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("500"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn previews_are_deduplicated_while_active_per_backup_set_and_selection() {
    let (stack, worker) = setup(&[(POLICIES, 3)]).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let whole = json!({ "backup_set_id": set });
    let first = start(&stack, whole.clone()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = start(&stack, whole.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["deduplicated"], true);
    assert_eq!(again.body["run"]["id"], first.body["run"]["id"]);
    assert_eq!(again.body["restore"]["id"], first.body["restore"]["id"]);
    assert!(again.body.get("confirmation_token").is_none());

    // Another selection of the same set, or another mapping, is another preview.
    let (_, items) = {
        worker.drain().await;
        all_items(&stack, first.body["restore"]["id"].as_str().unwrap()).await
    };
    let pick = |i: usize| json!({"object_type": items[i]["object_type"], "object_id": items[i]["object_id"]});
    let one = json!({ "backup_set_id": set, "items": [pick(0), pick(1)] });
    let other = start(&stack, one.clone()).await;
    assert_eq!(other.status, 202, "{}", other.body);
    let mapped = start(
        &stack,
        json!({ "backup_set_id": set, "items": one["items"], "mapping": {"drop": ["g-1"]} }),
    )
    .await;
    assert_eq!(mapped.status, 202, "{}", mapped.body);
    assert_ne!(mapped.body["run"]["id"], other.body["run"]["id"]);
    // The same items in another order are the same selection.
    let same = start(
        &stack,
        json!({ "backup_set_id": set, "items": [pick(1), pick(0)] }),
    )
    .await;
    assert_eq!(
        same.body["run"]["id"], other.body["run"]["id"],
        "{}",
        same.body
    );
    worker.drain().await;

    // Once it completed, the same set and selection is a new preview.
    let later = start(&stack, whole).await;
    assert_eq!(later.status, 202, "{}", later.body);
    assert_ne!(later.body["run"]["id"], first.body["run"]["id"]);
    worker.drain().await;
    let (record, items) = all_items(&stack, later.body["restore"]["id"].as_str().unwrap()).await;
    assert_eq!(
        (record["status"].clone(), items.len()),
        (json!("previewed"), 3)
    );
}

#[tokio::test]
async fn previews_are_invisible_across_workspaces_and_need_the_capability() {
    let (stack, worker) = setup(&[(POLICIES, 1)]).await;
    let set = backup(&stack, &worker, &["configurationPolicies"]).await;
    let started = start(&stack, json!({ "backup_set_id": set })).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let restore = started.body["restore"]["id"].as_str().unwrap().to_owned();
    let before = stack.snapshot().await;

    // A member without `restore.preview` is refused both starting and reading.
    let readonly = stack.users().readonly.clone();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, "restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(&readonly),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "auth.forbidden"), "{}", r.body);
    let r = stack
        .call(ApiCall::get(tenant_path(&stack, &format!("restores/{restore}"))).by(&readonly))
        .await;
    assert_eq!((r.status, r.code()), (403, "auth.forbidden"), "{}", r.body);

    // Another workspace's member: this workspace is not theirs, and in their own workspace
    // this restore and this set name nothing.
    let outsider = stack.users().outsider.clone();
    let r = stack
        .call(ApiCall::get(tenant_path(&stack, &format!("restores/{restore}"))).by(&outsider))
        .await;
    assert_eq!((r.status, r.code()), (404, "workspace.not_found"));
    let theirs = |rest: &str| {
        format!(
            "/v1/workspaces/{}/tenants/{}/{rest}",
            stack.demo.other_workspace_id, stack.demo.other_tenant_id
        )
    };
    let r = stack
        .call(ApiCall::get(theirs(&format!("restores/{restore}"))).by(&outsider))
        .await;
    assert_eq!((r.status, r.code()), (404, "restore.not_found"));
    let r = stack
        .call(
            ApiCall::post(
                theirs("restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(&outsider),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "restore.backup_set_not_found"));
    assert_eq!(stack.snapshot().await, before, "refusals store nothing");

    // A preview starts only on its own route, which checks the set and the selection.
    let r = stack
        .call(
            ApiCall::post(
                stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id),
                json!({"type": "restore.preview", "params": {
                    "restore_id": ulid::Ulid::new().to_string(),
                    "backup_set_id": set,
                    "selection": "00",
                }})
                .to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "operation.not_startable"),
        "{}",
        r.body
    );
    assert_eq!(stack.snapshot().await, before, "refusals store nothing");

    // The run itself is visible only to this workspace's members with the capability.
    let run = started.body["run"]["id"].as_str().unwrap();
    let r = stack
        .call(ApiCall::get(format!("/v1/operations/{run}")).by(&outsider))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    worker.drain().await;
}
