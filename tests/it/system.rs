//! The system plane: platform operators read runs and workspaces across every workspace,
//! through their own routes and links; anyone else meets a missing route; every read of a
//! workspace's data is audited in that workspace. Problem classes filter both planes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tenantops_api::Deps;
use tenantops_core::{Failure, Outcome, ReasonCode, UserId};
use tenantops_tests::{ApiCall, Reply, TestStack};

/// A third workspace (owned by the demo owner) with one tenant: (workspace, tenant).
async fn third_workspace(stack: &TestStack) -> (String, String) {
    let owner = &stack.users().owner;
    let ws = stack
        .call(
            ApiCall::post(
                "/v1/workspaces",
                json!({"name": "Northwind MSP"}).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(ws.status, 201, "{}", ws.body);
    let ws = ws.body["workspace"]["id"].as_str().unwrap().to_owned();
    let tenant = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{ws}/tenants"),
                json!({
                    "entra_tenant_id": tenantops_local::seed::fresh_entra_id(),
                    "display_name": "Northwind Traders",
                })
                .to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(tenant.status, 201, "{}", tenant.body);
    (ws, tenant.body["tenant"]["id"].as_str().unwrap().to_owned())
}

async fn start(stack: &TestStack, by: &UserId, ws: &str, tenant: &str, kind: &str) -> String {
    let r = stack
        .call(
            ApiCall::post(
                stack.start_path(ws, tenant),
                json!({"type": kind}).to_string(),
            )
            .by(by),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.run_id()
}

fn operator(stack: &TestStack) -> String {
    stack.platform_token(&stack.users().platform)
}

async fn as_operator(stack: &TestStack, path: &str) -> Reply {
    stack
        .call(ApiCall::get(path).with_token(operator(stack)))
        .await
}

fn ids(page: &Reply) -> Vec<String> {
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every link in `v` (any string under a `links` object), recursively.
fn links_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "links" || k == "view" && v.is_string() {
                    collect_strings(v, out);
                }
                links_in(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| links_in(i, out)),
        _ => {}
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_system_route_is_a_missing_route_to_anyone_but_a_platform_operator() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let run = start(
        &stack,
        &users.owner,
        &d.workspace_id.to_string(),
        &d.tenant_id.to_string(),
        "inventory.sync",
    )
    .await;
    let missing = stack
        .call(ApiCall::get("/v1/no-such-route").by(&users.owner))
        .await;
    assert_eq!((missing.status, missing.code()), (404, "route.not_found"));
    let routes = [
        "/v1/system/operations".to_owned(),
        format!("/v1/system/operations?workspace={}", d.workspace_id),
        format!("/v1/system/operations/{run}"),
        "/v1/system/workspaces".to_owned(),
        format!("/v1/system/workspaces/{}", d.workspace_id),
        format!("/v1/system/workspaces/{}", d.other_workspace_id),
    ];
    // A token whose group claim holds another group, as a Cognito user outside the
    // operators' group has.
    let mut admins = serde_json::Map::new();
    admins.insert(
        "cognito:groups".into(),
        json!(["admins", "tenantops-platform-readers"]),
    );
    let not_operator = stack
        .tokens
        .mint_with(users.owner.as_str(), 3600, admins)
        .unwrap();
    let before = stack.snapshot().await;
    for path in &routes {
        for user in [
            &users.owner,
            &users.manager,
            &users.readonly,
            &users.outsider,
        ] {
            for method in ["GET", "POST", "DELETE"] {
                let mut call = ApiCall::get(path.clone()).by(user);
                call.method = method;
                let r = stack.call(call).await;
                assert_eq!(r.status, 404, "{method} {path} by {user}: {}", r.body);
                assert_eq!(r.body, missing.body, "{method} {path} by {user}");
            }
        }
        let r = stack
            .call(ApiCall::get(path.clone()).with_token(not_operator.clone()))
            .await;
        assert_eq!((r.status, &r.body), (404, &missing.body), "{path}");
        let r = stack.call(ApiCall::get(path.clone())).await;
        assert_eq!(r.status, 401, "{path} without a token");
        // The operator is served (405 for a method the route lacks).
        let r = as_operator(&stack, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let mut call = ApiCall::get(path.clone()).with_token(operator(&stack));
        call.method = "POST";
        assert_eq!(stack.call(call).await.status, 405, "POST {path}");
    }
    // Refused reads write nothing (no audit entry either).
    let after_refusals = stack.snapshot().await;
    let written: Vec<_> = after_refusals
        .keys()
        .filter(|k| !before.contains_key(*k))
        .filter(|(pk, _)| !pk.ends_with("#AUDIT"))
        .collect();
    assert!(written.is_empty(), "{written:?}");

    // Being an operator grants nothing on the admin plane.
    let op = operator(&stack);
    for path in [
        format!("/v1/workspaces/{}", d.workspace_id),
        format!("/v1/workspaces/{}/operations", d.workspace_id),
        format!("/v1/workspaces/{}/tenants", d.workspace_id),
        format!("/v1/operations/{run}"),
    ] {
        let r = stack
            .call(ApiCall::get(path.clone()).with_token(op.clone()))
            .await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    let mine = stack
        .call(ApiCall::get("/v1/workspaces").with_token(op))
        .await;
    assert_eq!(mine.body["items"], json!([]));
}

#[tokio::test]
async fn operators_list_runs_across_three_workspaces_with_filters_and_cursors() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let (ws3, t3) = third_workspace(&stack).await;
    let (ws1, t1) = (d.workspace_id.to_string(), d.tenant_id.to_string());
    let (ws2, t2) = (
        d.other_workspace_id.to_string(),
        d.other_tenant_id.to_string(),
    );
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(start(&stack, &users.owner, &ws1, &t1, "backup_schedule.run_now").await);
        created.push(
            start(
                &stack,
                &users.outsider,
                &ws2,
                &t2,
                "backup_schedule.run_now",
            )
            .await,
        );
        created.push(start(&stack, &users.owner, &ws3, &t3, "backup_schedule.run_now").await);
    }
    let sync = start(&stack, &users.owner, &ws3, &t3, "inventory.sync").await;
    created.push(sync.clone());

    // Every run, newest first, two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        assert!(page < 20, "pagination must end");
        let q = match &cursor {
            Some(c) => format!("/v1/system/operations?limit=2&cursor={c}"),
            None => "/v1/system/operations?limit=2".to_owned(),
        };
        let r = as_operator(&stack, &q).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for item in r.body["items"].as_array().unwrap() {
            let name = item["workspace_name"].as_str().unwrap();
            assert!(["Contoso MSP", "Fabrikam MSP", "Northwind MSP"].contains(&name));
        }
        seen.extend(ids(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = created.clone();
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every run once, newest first");

    // Filters: one workspace, one tenant, one type; their links keep the filters.
    let stack = &stack;
    let only =
        |q: String| async move { as_operator(stack, &format!("/v1/system/operations?{q}")).await };
    let r = only(format!("workspace={ws3}")).await;
    assert_eq!(ids(&r).len(), 4);
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["workspace_id"] == ws3.as_str())
    );
    assert_eq!(
        r.body["links"]["self"],
        format!("/v1/system/operations?workspace={ws3}")
    );
    let r = only(format!("tenant={t2}")).await;
    assert_eq!(ids(&r).len(), 3);
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tenant_id"] == t2.as_str())
    );
    let r = only("type=inventory.sync".to_owned()).await;
    assert_eq!(ids(&r), vec![sync.clone()]);
    let r = only(format!("workspace={ws3}&tenant={t3}&type=inventory.sync")).await;
    assert_eq!(ids(&r), vec![sync.clone()]);
    let r = only(format!("workspace={ws1}&limit=1")).await;
    let next = r.body["next_cursor"].as_str().unwrap().to_owned();
    // A cursor belongs to its query.
    let r = only(format!("workspace={ws2}&cursor={next}")).await;
    assert_eq!((r.status, r.code()), (400, "cursor.invalid"));
    for bad in [
        "workspace=nope",
        "problem=broken",
        "limit=0",
        "colour=red",
        "type=x",
    ] {
        let r = only(bad.to_owned()).await;
        assert_eq!((r.status, r.code()), (400, "query.invalid"), "{bad}");
    }

    // One run, with system links only.
    let r = as_operator(stack, &format!("/v1/system/operations/{sync}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["run"]["workspace_name"], "Northwind MSP");
    assert_eq!(
        r.body["links"]["view"],
        format!("/v1/system/operations/{sync}")
    );
    assert_eq!(
        r.body["links"]["tenant_runs"],
        format!("/v1/system/operations?workspace={ws3}&tenant={t3}")
    );
    let missing = as_operator(
        stack,
        &format!("/v1/system/operations/{}", tenantops_core::RunId::new()),
    )
    .await;
    assert_eq!((missing.status, missing.code()), (404, "run.not_found"));

    // No system reply links into the admin plane, and no admin reply into the system plane.
    let mut links = Vec::new();
    for path in [
        "/v1/system/operations".to_owned(),
        format!("/v1/system/operations/{sync}"),
        "/v1/system/workspaces".to_owned(),
        format!("/v1/system/workspaces/{ws3}"),
    ] {
        links_in(&as_operator(stack, &path).await.body, &mut links);
    }
    assert!(links.len() > 20);
    assert!(
        links.iter().all(|l| l.starts_with("/v1/system/")),
        "{links:?}"
    );
    let mut admin = Vec::new();
    for path in [
        format!("/v1/operations/{sync}"),
        format!("/v1/workspaces/{ws3}/tenants"),
        format!("/v1/workspaces/{ws3}"),
    ] {
        links_in(
            &stack.call(ApiCall::get(path).by(&users.owner)).await.body,
            &mut admin,
        );
    }
    assert!(!admin.is_empty());
    assert!(admin.iter().all(|l| !l.contains("/system/")), "{admin:?}");
}

#[tokio::test]
async fn every_system_read_is_audited_in_the_workspaces_it_read() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let (ws1, t1) = (d.workspace_id.to_string(), d.tenant_id.to_string());
    let (ws2, t2) = (
        d.other_workspace_id.to_string(),
        d.other_tenant_id.to_string(),
    );
    let run1 = start(&stack, &users.owner, &ws1, &t1, "inventory.sync").await;
    start(&stack, &users.outsider, &ws2, &t2, "inventory.sync").await;
    let operator_id = users.platform.as_str();
    let stack = &stack;
    let audit = |ws: String, owner: UserId| async move {
        let call = ApiCall::get(format!(
            "/v1/workspaces/{ws}/audit?action=system.view&limit=100"
        ))
        .by(&owner);
        stack.call(call).await.body["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(audit(ws1.clone(), users.owner.clone()).await.is_empty());

    as_operator(stack, &format!("/v1/system/operations/{run1}")).await;
    let entries = audit(ws1.clone(), users.owner.clone()).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"], operator_id);
    assert_eq!(
        entries[0]["target"],
        format!("/v1/system/operations/{run1}")
    );
    assert!(entries[0]["at"].is_string());
    assert!(
        audit(ws2.clone(), users.outsider.clone()).await.is_empty(),
        "ws2 was not read"
    );

    // A list reads every workspace on its page: one entry in each.
    as_operator(stack, "/v1/system/operations?problem=stuck").await;
    assert_eq!(
        audit(ws1.clone(), users.owner.clone()).await.len(),
        1,
        "nothing of ws1 was on the page"
    );
    as_operator(stack, "/v1/system/operations").await;
    assert_eq!(audit(ws1.clone(), users.owner.clone()).await.len(), 2);
    let ws2_entries = audit(ws2.clone(), users.outsider.clone()).await;
    assert_eq!(ws2_entries.len(), 1);
    assert_eq!(ws2_entries[0]["target"], "/v1/system/operations");
    as_operator(stack, &format!("/v1/system/workspaces/{ws2}")).await;
    as_operator(stack, "/v1/system/workspaces").await;
    let ws2_entries = audit(ws2.clone(), users.outsider.clone()).await;
    let targets: BTreeSet<&str> = ws2_entries
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            "/v1/system/operations",
            format!("/v1/system/workspaces/{ws2}").as_str(),
            "/v1/system/workspaces",
        ])
    );
    assert!(ws2_entries.iter().all(|e| e["actor"] == operator_id));
}

/// The stack's API with a stuck threshold of one second.
fn stuck_after_a_second(stack: &TestStack) -> Arc<Deps> {
    Arc::new(Deps {
        limits: tenantops_api::Limits {
            stuck_after_seconds: 1,
            ..stack.deps.limits
        },
        ..(*stack.deps).clone()
    })
}

#[tokio::test]
async fn problem_classes_filter_both_planes_and_make_each_tenants_attention() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let (ws, t) = (d.workspace_id.to_string(), d.tenant_id.to_string());
    let (ws2, t2) = (
        d.other_workspace_id.to_string(),
        d.other_tenant_id.to_string(),
    );
    let backup = "backup_schedule.run_now";
    let failed = start(&stack, &users.owner, &ws, &t, backup).await;
    let stale = start(&stack, &users.owner, &ws, &t, backup).await;
    let exhausted = start(&stack, &users.owner, &ws, &t, backup).await;
    let partial = start(&stack, &users.owner, &ws, &t, backup).await;
    let fine = start(&stack, &users.owner, &ws, &t, backup).await;
    let foreign = start(&stack, &users.outsider, &ws2, &t2, backup).await;
    let per_object = Failure {
        code: ReasonCode::GraphUnavailable,
        message: "one object".into(),
        object_ref: Some("deviceConfigurations/1".into()),
    };
    stack
        .finish_with(&failed, Outcome::Failed, vec![per_object.clone()])
        .await;
    stack
        .finish_with(
            &stale,
            Outcome::Failed,
            vec![Failure::of(ReasonCode::RunStale)],
        )
        .await;
    stack
        .finish_with(
            &exhausted,
            Outcome::Failed,
            vec![Failure::of(ReasonCode::WorkerExhausted)],
        )
        .await;
    stack
        .finish_with(&partial, Outcome::PartiallySucceeded, vec![per_object])
        .await;
    stack.finish_with(&fine, Outcome::Succeeded, vec![]).await;
    stack
        .finish_with(
            &foreign,
            Outcome::Failed,
            vec![Failure::of(ReasonCode::RunStale)],
        )
        .await;
    let stuck = start(&stack, &users.owner, &ws, &t, "inventory.sync").await;
    // Older than the stuck threshold of `deps` (one second); with the default (an hour),
    // nothing is stuck.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let deps = stuck_after_a_second(&stack);
    let admin = |q: &str| {
        let call = ApiCall::get(format!("/v1/workspaces/{ws}/operations?{q}")).by(&users.owner);
        stack.call_with(&deps, call)
    };
    let system = |q: &str| {
        let call = ApiCall::get(format!("/v1/system/operations?{q}")).with_token(operator(&stack));
        stack.call_with(&deps, call)
    };
    let set = |r: Reply| -> BTreeSet<String> { ids(&r).into_iter().collect() };
    let of = |runs: &[&String]| -> BTreeSet<String> { runs.iter().map(|s| (*s).clone()).collect() };
    let expected: HashMap<&str, BTreeSet<String>> = HashMap::from([
        ("failed", of(&[&failed, &stale, &exhausted])),
        ("partial", of(&[&partial])),
        ("stale", of(&[&stale, &exhausted])),
        ("stuck", of(&[&stuck])),
    ]);
    for (class, runs) in &expected {
        assert_eq!(
            &set(admin(&format!("problem={class}")).await),
            runs,
            "admin {class}"
        );
        assert_eq!(
            &set(system(&format!("problem={class}&workspace={ws}")).await),
            runs,
            "system {class}"
        );
        let mut everywhere = runs.clone();
        if ["failed", "stale"].contains(class) {
            everywhere.insert(foreign.clone());
        }
        assert_eq!(
            &set(system(&format!("problem={class}")).await),
            &everywhere,
            "system {class}"
        );
    }
    let not_yet = stack
        .call(
            ApiCall::get(format!("/v1/workspaces/{ws}/operations?problem=stuck")).by(&users.owner),
        )
        .await;
    assert_eq!(
        ids(&not_yet),
        Vec::<String>::new(),
        "an hour has not passed"
    );
    let r = admin("problem=failed&limit=1").await;
    let page2 = admin(&format!(
        "problem=failed&limit=5&cursor={}",
        r.body["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(ids(&r).len() + ids(&page2).len(), 3);

    // Each tenant's attention on the tenant list, with links to those runs, for a role that
    // may view every one of these runs.
    let tenants = stack
        .call_with(
            &deps,
            ApiCall::get(format!("/v1/workspaces/{ws}/tenants")).by(&users.operator),
        )
        .await;
    assert_eq!(tenants.status, 200, "{}", tenants.body);
    let attention = &tenants.body["items"][0]["attention"];
    assert_eq!(
        (
            &attention["failed"],
            &attention["partial"],
            &attention["stale"],
            &attention["stuck"],
            &attention["total"]
        ),
        (&json!(3), &json!(1), &json!(2), &json!(1), &json!(5))
    );
    for (class, runs) in &expected {
        let link = attention["links"][class].as_str().unwrap();
        assert_eq!(
            link,
            format!("/v1/workspaces/{ws}/operations?tenant={t}&problem={class}")
        );
        let followed = stack
            .call_with(&deps, ApiCall::get(link).by(&users.operator))
            .await;
        assert_eq!(&set(followed), runs, "{class}");
    }
    // A role that may not view backups or syncs counts none of them.
    let readonly = stack
        .call_with(
            &deps,
            ApiCall::get(format!("/v1/workspaces/{ws}/tenants")).by(&users.readonly),
        )
        .await;
    assert_eq!(readonly.body["items"][0]["attention"]["total"], 0);

    // The workspace's own view counts the same, and the system plane's workspace views.
    let view = stack
        .call_with(
            &deps,
            ApiCall::get(format!("/v1/workspaces/{ws}")).by(&users.operator),
        )
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["role"], "operator");
    assert_eq!(view.body["workspace"]["name"], "Contoso MSP");
    assert_eq!(view.body["counts"]["tenants"], 1);
    assert_eq!(view.body["counts"]["members"], 4);
    assert_eq!(view.body["counts"]["active_runs"], 1);
    assert_eq!(view.body["counts"]["attention"]["stuck"], 1);
    let listed = stack
        .call_with(
            &deps,
            ApiCall::get("/v1/system/workspaces").with_token(operator(&stack)),
        )
        .await;
    let mine = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        mine["counts"],
        json!({"tenants": 1, "active_runs": 1, "failed_last_24h": 3})
    );
    let one = stack
        .call_with(
            &deps,
            ApiCall::get(format!("/v1/system/workspaces/{ws}")).with_token(operator(&stack)),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    let problems: BTreeSet<String> = one.body["problem_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        problems,
        of(&[&failed, &stale, &exhausted, &partial, &stuck])
    );
    let tenant = &one.body["tenants"][0];
    assert_eq!(tenant["display_name"], "Contoso Pharma");
    assert_eq!(tenant["connection"]["present"], true);
    assert_eq!(tenant["onboarding"]["complete"], false);
}

#[tokio::test]
async fn a_workspace_is_readable_by_its_members_and_missing_to_everyone_else() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let path = format!("/v1/workspaces/{}", d.workspace_id);
    for (user, role) in [
        (&users.owner, "owner"),
        (&users.manager, "manager"),
        (&users.readonly, "readonly"),
    ] {
        let r = stack.call(ApiCall::get(path.clone()).by(user)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["role"], role);
        assert_eq!(r.body["workspace"]["settings"]["restore_high_risk"], false);
        assert_eq!(
            r.body["links"]["runs"],
            format!("/v1/workspaces/{}/operations", d.workspace_id)
        );
    }
    let r = stack
        .call(ApiCall::get(path.clone()).by(&users.outsider))
        .await;
    assert_eq!((r.status, r.code()), (404, "workspace.not_found"));
    let foreign = stack
        .call(ApiCall::get(format!("/v1/workspaces/{}", d.other_workspace_id)).by(&users.owner))
        .await;
    assert_eq!(
        foreign.body, r.body,
        "another workspace's id is as missing as none"
    );
    let nonsense = stack
        .call(ApiCall::get("/v1/workspaces/not-a-ulid").by(&users.owner))
        .await;
    assert_eq!(nonsense.status, 404);
}

/// A deployment upgraded in place: runs and workspaces written before the platform index
/// existed (their GSI5 keys removed here, as they were) are invisible to the system plane
/// until the migration gives them their keys; a second run of it changes nothing.
#[tokio::test]
async fn the_platform_index_migration_lists_items_written_before_it() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let (ws, t) = (d.workspace_id.to_string(), d.tenant_id.to_string());
    let old = start(&stack, &users.owner, &ws, &t, "inventory.sync").await;
    for (pk, sk) in [
        (format!("RUN#{old}"), "RUN".to_owned()),
        (format!("WS#{ws}"), "WORKSPACE".to_owned()),
    ] {
        stack
            .dynamodb
            .update_item()
            .table_name(&stack.resources.table_name)
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .update_expression("REMOVE GSI5PK, GSI5SK")
            .send()
            .await
            .unwrap();
    }
    let listed = |r: Reply| ids(&r);
    assert!(!listed(as_operator(&stack, "/v1/system/operations").await).contains(&old));
    let workspaces = as_operator(&stack, "/v1/system/workspaces").await;
    assert!(
        !workspaces.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == ws.as_str())
    );

    let done = stack.store().migrate_platform_index().await.unwrap();
    assert_eq!(done.updated, 2, "{done:?}");
    assert!(listed(as_operator(&stack, "/v1/system/operations").await).contains(&old));
    let workspaces = as_operator(&stack, "/v1/system/workspaces").await;
    assert!(
        workspaces.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == ws.as_str())
    );

    let before = stack.snapshot().await;
    let again = stack.store().migrate_platform_index().await.unwrap();
    assert_eq!((again.found, again.updated), (0, 0));
    // Only the audit entries of the reads above were written since.
    let after = stack.snapshot().await;
    assert!(
        after
            .iter()
            .all(|(k, v)| before.get(k) == Some(v) || k.0.ends_with("#AUDIT"))
    );
}
