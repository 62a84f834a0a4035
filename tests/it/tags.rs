//! Tenant tags: set with a PATCH (the whole set, audited), filtered on in the tenant list,
//! refused when they break the rule, and isolated like every tenant write.

use serde_json::{Value, json};
use tenantops_tests::{ApiCall, TestStack};

fn patch(path: String, body: Value) -> ApiCall<'static> {
    let mut c = ApiCall::post(path, body.to_string());
    c.method = "PATCH";
    c
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tags_are_set_as_a_whole_listed_by_and_audited() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, &stack.users().owner);
    let tenant = format!("/v1/workspaces/{ws}/tenants/{}", stack.demo.tenant_id);
    let other = stack.add_connected_tenants(ws, owner, 1).await.remove(0);

    let r = stack
        .call(patch(tenant.clone(), json!({ "tags": ["gold", "eu"] })).by(owner))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tenant"]["tags"], json!(["eu", "gold"]));
    assert_eq!(r.body["tenant"]["display_name"], "Contoso Pharma");
    let retag = stack.audit_entries("tenant.retag").await;
    assert_eq!(retag.len(), 1, "{retag:?}");
    assert_eq!(retag[0]["before"], json!({ "tags": [] }));
    assert_eq!(retag[0]["after"], json!({ "tags": ["eu", "gold"] }));

    // The list, whole and by tag.
    let list = |q: &'static str| {
        let stack = &stack;
        async move {
            stack
                .call(ApiCall::get(format!("/v1/workspaces/{ws}/tenants{q}")).by(owner))
                .await
        }
    };
    let all = list("").await;
    assert_eq!(all.status, 200);
    assert!(ids(&all.body).contains(&other.id.to_string()));
    let gold = list("?tag=gold").await;
    assert_eq!(gold.status, 200, "{}", gold.body);
    assert_eq!(ids(&gold.body), [stack.demo.tenant_id.to_string()]);
    assert!(ids(&list("?tag=silver").await.body).is_empty());

    // The same set again changes nothing and audits nothing; a name and tags at once is
    // one update.
    let same = stack
        .call(patch(tenant.clone(), json!({ "tags": ["eu", "gold"] })).by(owner))
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(stack.audit_entries("tenant.retag").await.len(), 1);
    let both = stack
        .call(
            patch(
                tenant.clone(),
                json!({ "display_name": "Contoso EU", "tags": [] }),
            )
            .by(owner),
        )
        .await;
    assert_eq!(both.status, 200, "{}", both.body);
    assert_eq!(both.body["tenant"]["tags"], json!([]));
    let update = stack.audit_entries("tenant.update").await;
    assert_eq!(update.len(), 1, "{update:?}");
    assert_eq!(
        update[0]["after"],
        json!({ "display_name": "Contoso EU", "tags": [] })
    );
    assert!(ids(&list("?tag=gold").await.body).is_empty());
}

#[tokio::test]
async fn bad_tags_are_refused_and_change_nothing() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, &stack.users().owner);
    let tenant = format!("/v1/workspaces/{ws}/tenants/{}", stack.demo.tenant_id);
    let before = stack.snapshot().await;
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for body in [
        json!({ "tags": many }),
        json!({ "tags": ["eu", "eu"] }),
        json!({ "tags": ["Gold"] }),
        json!({ "tags": [""] }),
        json!({ "tags": ["-lead"] }),
        json!({ "tags": [&"a".repeat(33)] }),
        json!({ "tags": "gold" }),
        json!({ "tags": [1] }),
        json!({}),
        json!({ "tags": null }),
        json!({ "display_name": null }),
        json!({ "display_name": "Contoso EU", "tags": null }),
        json!({ "labels": ["gold"] }),
    ] {
        let r = stack
            .call(patch(tenant.clone(), body.clone()).by(owner))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "request.invalid"),
            "{body}: {}",
            r.body
        );
    }
    for q in [
        "?tag=Gold",
        "?tag=",
        "?tag=a%20b",
        "?label=gold",
        "?tag=eu&tag=gold",
    ] {
        let r = stack
            .call(ApiCall::get(format!("/v1/workspaces/{ws}/tenants{q}")).by(owner))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "query.invalid"),
            "{q}: {}",
            r.body
        );
    }
    assert_eq!(stack.snapshot().await, before);
}

#[tokio::test]
async fn only_tenant_managers_of_the_workspace_may_tag() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let users = stack.users();
    let tags = json!({ "tags": ["gold"] });
    let mine = format!("/v1/workspaces/{}/tenants/{}", d.workspace_id, d.tenant_id);
    let before = stack.snapshot().await;
    // A member without tenants.manage: 403; a non-member: 404.
    for (user, status) in [
        (&users.operator, 403),
        (&users.readonly, 403),
        (&users.outsider, 404),
    ] {
        let r = stack.call(patch(mine.clone(), tags.clone()).by(user)).await;
        assert_eq!(r.status, status, "{user}: {}", r.body);
    }
    // Another workspace's tenant, named under this workspace or under its own: 404.
    for path in [
        format!(
            "/v1/workspaces/{}/tenants/{}",
            d.workspace_id, d.other_tenant_id
        ),
        format!(
            "/v1/workspaces/{}/tenants/{}",
            d.other_workspace_id, d.other_tenant_id
        ),
    ] {
        let r = stack
            .call(patch(path.clone(), tags.clone()).by(&users.owner))
            .await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    let r = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/tenants?tag=gold",
                d.other_workspace_id
            ))
            .by(&users.owner),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(stack.snapshot().await, before);
    // A manager may.
    let r = stack.call(patch(mine, tags).by(&users.manager)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
