//! Onboarding and administration: members, tenants, provider connections, onboarding status.

use serde_json::{Value, json};
use tenantops_core::{Outcome, UserId};
use tenantops_tests::{ApiCall, LogBuffer, Reply, TestStack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Manager,
    Operator,
    Readonly,
    Outsider,
}

const ROLES: [Who; 5] = [
    Who::Owner,
    Who::Manager,
    Who::Operator,
    Who::Readonly,
    Who::Outsider,
];

fn user(stack: &TestStack, who: Who) -> &UserId {
    let u = stack.users();
    match who {
        Who::Owner => &u.owner,
        Who::Manager => &u.manager,
        Who::Operator => &u.operator,
        Who::Readonly => &u.readonly,
        Who::Outsider => &u.outsider,
    }
}

fn guid() -> String {
    let h = format!("{:032x}", ulid::Ulid::new().0);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn put(path: String, body: Value) -> ApiCall<'static> {
    let mut c = ApiCall::post(path, body.to_string());
    c.method = "PUT";
    c
}

fn patch(path: String, body: Value) -> ApiCall<'static> {
    let mut c = ApiCall::post(path, body.to_string());
    c.method = "PATCH";
    c
}

fn delete(path: String) -> ApiCall<'static> {
    let mut c = ApiCall::get(path);
    c.method = "DELETE";
    c
}

#[tokio::test]
async fn every_role_may_do_exactly_what_the_registry_grants() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let ws = format!("/v1/workspaces/{}", d.workspace_id);
    let tenant = format!("{ws}/tenants/{}", d.tenant_id);
    type Case = (&'static str, Box<dyn Fn() -> ApiCall<'static>>, [u16; 5]);
    let cases: Vec<Case> = vec![
        (
            "add a member",
            Box::new({
                let ws = ws.clone();
                move || {
                    put(
                        format!("{ws}/members/new-{}", ulid::Ulid::new()),
                        json!({"role": "readonly"}),
                    )
                }
            }),
            [201, 201, 403, 403, 404],
        ),
        (
            "list members",
            Box::new({
                let ws = ws.clone();
                move || ApiCall::get(format!("{ws}/members"))
            }),
            [200, 200, 200, 200, 404],
        ),
        (
            "add a tenant",
            Box::new({
                let ws = ws.clone();
                move || {
                    ApiCall::post(
                        format!("{ws}/tenants"),
                        json!({"entra_tenant_id": guid(), "display_name": "New"}).to_string(),
                    )
                }
            }),
            [201, 201, 403, 403, 404],
        ),
        (
            "list tenants",
            Box::new({
                let ws = ws.clone();
                move || ApiCall::get(format!("{ws}/tenants"))
            }),
            [200, 200, 200, 200, 404],
        ),
        (
            "view a tenant",
            Box::new({
                let t = tenant.clone();
                move || ApiCall::get(t.clone())
            }),
            [200, 200, 200, 200, 404],
        ),
        (
            "rename a tenant",
            Box::new({
                let t = tenant.clone();
                move || {
                    patch(
                        t.clone(),
                        json!({"display_name": format!("Renamed {}", ulid::Ulid::new())}),
                    )
                }
            }),
            [200, 200, 403, 403, 404],
        ),
        (
            "rotate the connection",
            Box::new({
                let t = tenant.clone();
                move || {
                    put(
                        format!("{t}/provider-connection"),
                        json!({"client_id": guid(), "client_secret": "s3cret-value"}),
                    )
                }
            }),
            [200, 200, 403, 403, 404],
        ),
        (
            "view the connection",
            Box::new({
                let t = tenant.clone();
                move || ApiCall::get(format!("{t}/provider-connection"))
            }),
            [200, 200, 200, 200, 404],
        ),
        (
            "view onboarding",
            Box::new({
                let t = tenant.clone();
                move || ApiCall::get(format!("{t}/onboarding"))
            }),
            [200, 200, 200, 200, 404],
        ),
        (
            "read the audit log",
            Box::new({
                let ws = ws.clone();
                move || ApiCall::get(format!("{ws}/audit"))
            }),
            [200, 200, 403, 403, 404],
        ),
    ];
    let mut failures = Vec::new();
    for (label, make, expected) in &cases {
        for (who, want) in ROLES.iter().zip(expected) {
            let got = stack.call(make().by(user(&stack, *who))).await;
            if got.status != *want {
                failures.push(format!(
                    "{label} as {who:?}: want {want}, got {} {}",
                    got.status, got.body
                ));
            }
        }
    }
    // The other workspace's ids, as this workspace's owner: all 404.
    let other = format!("/v1/workspaces/{}", d.other_workspace_id);
    let other_tenant = format!("{other}/tenants/{}", d.other_tenant_id);
    for call in [
        put(
            format!("{other}/members/x-{}", ulid::Ulid::new()),
            json!({"role": "readonly"}),
        ),
        ApiCall::get(format!("{other}/members")),
        ApiCall::post(
            format!("{other}/tenants"),
            json!({"entra_tenant_id": guid(), "display_name": "X"}).to_string(),
        ),
        ApiCall::get(other_tenant.clone()),
        patch(other_tenant.clone(), json!({"display_name": "X"})),
        put(
            format!("{other_tenant}/provider-connection"),
            json!({"client_id": guid(), "client_secret": "x"}),
        ),
        ApiCall::get(format!("{other_tenant}/onboarding")),
        ApiCall::get(format!("{other}/audit")),
        ApiCall::get(format!("{ws}/tenants/{}", d.other_tenant_id)),
    ] {
        let label = format!("{} {}", call.method, call.path);
        let got = stack.call(call.by(&stack.users().owner)).await;
        if got.status != 404 {
            failures.push(format!(
                "{label} on foreign ids: want 404, got {}",
                got.status
            ));
        }
    }
    assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_last_owner_stays_and_no_one_promotes_themselves() {
    let stack = TestStack::new().await;
    let u = stack.users();
    let ws = format!("/v1/workspaces/{}", stack.demo.workspace_id);
    let member = |who: &UserId| format!("{ws}/members/{who}");

    let demote = stack
        .call(put(member(&u.owner), json!({"role": "manager"})).by(&u.owner))
        .await;
    assert_eq!((demote.status, demote.code()), (409, "member.last_owner"));
    let leave = stack.call(delete(member(&u.owner)).by(&u.owner)).await;
    assert_eq!((leave.status, leave.code()), (409, "member.last_owner"));

    let up = stack
        .call(put(member(&u.operator), json!({"role": "manager"})).by(&u.operator))
        .await;
    assert_eq!((up.status, up.code()), (403, "member.self_promotion"));
    let up = stack
        .call(put(member(&u.manager), json!({"role": "owner"})).by(&u.manager))
        .await;
    assert_eq!((up.status, up.code()), (403, "member.self_promotion"));
    let make_owner = stack
        .call(put(member(&u.operator), json!({"role": "owner"})).by(&u.manager))
        .await;
    assert_eq!(
        (make_owner.status, make_owner.code()),
        (403, "member.owner_required")
    );
    let remove_owner = stack.call(delete(member(&u.owner)).by(&u.manager)).await;
    assert_eq!(
        (remove_owner.status, remove_owner.code()),
        (403, "member.owner_required")
    );

    // With a second owner, the first may step down; then the second is the last.
    let second = stack
        .call(put(member(&u.manager), json!({"role": "owner"})).by(&u.owner))
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let step_down = stack
        .call(put(member(&u.owner), json!({"role": "readonly"})).by(&u.owner))
        .await;
    assert_eq!(step_down.status, 200, "{}", step_down.body);
    let last = stack.call(delete(member(&u.manager)).by(&u.manager)).await;
    assert_eq!((last.status, last.code()), (409, "member.last_owner"));
    let members = stack
        .call(ApiCall::get(format!("{ws}/members")).by(&u.manager))
        .await;
    let owners: Vec<&Value> = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .collect();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["user_id"], u.manager.as_str());
}

#[tokio::test]
async fn concurrent_demotions_of_two_owners_leave_one() {
    let stack = TestStack::new().await;
    let u = stack.users();
    let ws = format!("/v1/workspaces/{}", stack.demo.workspace_id);
    let second = stack
        .call(
            put(
                format!("{ws}/members/{}", u.manager),
                json!({"role": "owner"}),
            )
            .by(&u.owner),
        )
        .await;
    assert_eq!(second.status, 200);
    let (a, b) = tokio::join!(
        stack.call(
            put(
                format!("{ws}/members/{}", u.owner),
                json!({"role": "readonly"})
            )
            .by(&u.owner)
        ),
        stack.call(
            put(
                format!("{ws}/members/{}", u.manager),
                json!({"role": "readonly"})
            )
            .by(&u.manager)
        ),
    );
    let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
    assert_eq!(
        ok, 1,
        "exactly one steps down: {} {} / {} {}",
        a.status, a.body, b.status, b.body
    );
    let members = stack
        .call(ApiCall::get(format!("{ws}/members")).by(&u.readonly))
        .await;
    let owners = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entra_tenant_added_concurrently_to_two_workspaces_lands_in_one() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let entra = guid();
    let body = |name: &str| json!({"entra_tenant_id": entra, "display_name": name}).to_string();
    let replies: Vec<Reply> = futures::future::join_all((0..8).map(|i| {
        let (ws, who) = if i % 2 == 0 {
            (d.workspace_id, &stack.users().owner)
        } else {
            (d.other_workspace_id, &stack.users().outsider)
        };
        stack.call(ApiCall::post(format!("/v1/workspaces/{ws}/tenants"), body("Twin")).by(who))
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "tenant.already_claimed"));
    }
    // Upper case is the same GUID.
    let again = stack
        .call(
            ApiCall::post(
                format!("/v1/workspaces/{}/tenants", d.workspace_id),
                json!({"entra_tenant_id": entra.to_uppercase(), "display_name": "x"}).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(again.status, 409);
}

#[tokio::test]
async fn a_planted_secret_reaches_secrets_manager_and_nothing_else() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,aws_smithy_runtime=info,aws_sdk_secretsmanager=info,aws_sdk_dynamodb=info,aws_sdk_sqs=info,hyper=info,h2=info,rustls=info"))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let planted = format!("PLANTED-{}-s3cr3t", ulid::Ulid::new());
    let conn = format!(
        "/v1/workspaces/{}/tenants/{}/provider-connection",
        d.workspace_id, d.tenant_id
    );
    let mut replies = Vec::new();
    replies.push(
        stack
            .call(
                put(
                    conn.clone(),
                    json!({"client_id": guid(), "client_secret": planted}),
                )
                .by(owner),
            )
            .await,
    );
    assert_eq!(replies[0].status, 200, "{}", replies[0].body);
    // A bad request that carries it must not echo it either.
    replies.push(
        stack
            .call(
                put(
                    conn.clone(),
                    json!({"client_id": "nope", "client_secret": planted}),
                )
                .by(owner),
            )
            .await,
    );
    replies.push(
        stack
            .call(
                put(
                    conn.clone(),
                    json!({"client_id": guid(), "client_secret": planted, "extra": planted}),
                )
                .by(owner),
            )
            .await,
    );
    replies.push(
        stack
            .call(
                put(
                    conn.clone(),
                    json!({"client_id": guid(), "client_secret": planted}),
                )
                .by(&stack.users().readonly),
            )
            .await,
    );
    for path in [
        conn.clone(),
        format!(
            "/v1/workspaces/{}/tenants/{}/onboarding",
            d.workspace_id, d.tenant_id
        ),
        format!("/v1/workspaces/{}/audit?limit=100", d.workspace_id),
        format!("/v1/workspaces/{}/tenants", d.workspace_id),
    ] {
        replies.push(stack.call(ApiCall::get(path).by(owner)).await);
    }
    for r in &replies {
        assert!(
            !r.body.to_string().contains(&planted),
            "a response carries the secret: {}",
            r.body
        );
    }
    for (key, item) in stack.snapshot().await {
        assert!(!item.contains(&planted), "item {key:?} carries the secret");
    }
    let log_text = logs.text();
    assert!(
        log_text.contains("request served"),
        "the capture sees the handler's logs"
    );
    assert!(
        !log_text.contains(&planted),
        "a log line carries the secret"
    );

    // And it is where it belongs.
    let name = stack
        .deps
        .secrets
        .secret_name(d.workspace_id, d.tenant_id, "default");
    // The live version (named: moto's default read does not follow a moved AWSCURRENT).
    let stored = aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .get_secret_value()
        .secret_id(name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert!(stored.secret_string().unwrap().contains(&planted));
}

#[tokio::test]
async fn an_archived_tenant_refuses_new_runs_and_keeps_its_history() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let start = stack.start_path(d.workspace_id, d.tenant_id);
    let before = stack
        .call(ApiCall::post(start.clone(), json!({"type": "inventory.sync"}).to_string()).by(owner))
        .await;
    assert_eq!(before.status, 202);
    let tenant = format!("/v1/workspaces/{}/tenants/{}", d.workspace_id, d.tenant_id);
    let archived = stack
        .call(ApiCall::post(format!("{tenant}/archive"), "").by(owner))
        .await;
    assert_eq!(archived.status, 200, "{}", archived.body);
    assert_eq!(archived.body["tenant"]["status"], "archived");

    let refused = stack
        .call(ApiCall::post(start, json!({"type": "directory_groups.sync"}).to_string()).by(owner))
        .await;
    assert_eq!((refused.status, refused.code()), (409, "tenant.archived"));
    let rotate = stack
        .call(
            put(
                format!("{tenant}/provider-connection"),
                json!({"client_id": guid(), "client_secret": "x"}),
            )
            .by(owner),
        )
        .await;
    assert_eq!((rotate.status, rotate.code()), (409, "tenant.archived"));
    let history = stack
        .call(
            ApiCall::get(format!(
                "/v1/workspaces/{}/operations?tenant={}",
                d.workspace_id, d.tenant_id
            ))
            .by(owner),
        )
        .await;
    assert_eq!(history.body["items"][0]["id"], before.run_id());
    let onboarding = stack
        .call(ApiCall::get(format!("{tenant}/onboarding")).by(owner))
        .await;
    assert_eq!(
        onboarding.body["blocking_reason"]["code"],
        "tenant.archived"
    );
}

#[tokio::test]
async fn bad_administration_input_is_refused_and_writes_nothing() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let ws = format!("/v1/workspaces/{}", d.workspace_id);
    let tenant = format!("{ws}/tenants/{}", d.tenant_id);
    let before = stack.snapshot().await;
    let cases: Vec<(&str, ApiCall, u16, &str)> = vec![
        ("malformed GUID", ApiCall::post(format!("{ws}/tenants"), json!({"entra_tenant_id": "1234", "display_name": "A"}).to_string()), 422, "request.invalid"),
        ("GUID with bad hex", ApiCall::post(format!("{ws}/tenants"), json!({"entra_tenant_id": "zzzzzzzz-1111-2222-3333-444455556666", "display_name": "A"}).to_string()), 422, "request.invalid"),
        ("empty tenant name", ApiCall::post(format!("{ws}/tenants"), json!({"entra_tenant_id": guid(), "display_name": "  "}).to_string()), 422, "request.invalid"),
        ("oversized tenant name", ApiCall::post(format!("{ws}/tenants"), json!({"entra_tenant_id": guid(), "display_name": "x".repeat(129)}).to_string()), 422, "request.invalid"),
        ("missing tenant field", ApiCall::post(format!("{ws}/tenants"), json!({"display_name": "A"}).to_string()), 422, "request.invalid"),
        ("empty rename", patch(tenant.clone(), json!({"display_name": ""})), 422, "request.invalid"),
        ("empty workspace name", ApiCall::post("/v1/workspaces", json!({"name": ""}).to_string()), 422, "request.invalid"),
        ("oversized workspace name", ApiCall::post("/v1/workspaces", json!({"name": "y".repeat(200)}).to_string()), 422, "request.invalid"),
        ("unknown role", put(format!("{ws}/members/someone"), json!({"role": "admin"})), 422, "request.invalid"),
        ("role of the wrong type", put(format!("{ws}/members/someone"), json!({"role": 3})), 422, "request.invalid"),
        ("malformed client id", put(format!("{tenant}/provider-connection"), json!({"client_id": "x", "client_secret": "y"})), 422, "request.invalid"),
        ("empty client secret", put(format!("{tenant}/provider-connection"), json!({"client_id": guid(), "client_secret": ""})), 422, "request.invalid"),
        ("bad expiry", put(format!("{tenant}/provider-connection"), json!({"client_id": guid(), "client_secret": "y", "secret_expires_at": "soon"})), 422, "request.invalid"),
        ("malformed JSON", ApiCall::post(format!("{ws}/tenants"), "{"), 400, "request.malformed_json"),
        ("removing a non-member", delete(format!("{ws}/members/nobody-here")), 404, "member.not_found"),
        ("bad audit filter", ApiCall::get(format!("{ws}/audit?action=DROP%20TABLE")), 400, "query.invalid"),
        ("tampered audit cursor", ApiCall::get(format!("{ws}/audit?cursor=abc")), 400, "cursor.invalid"),
    ];
    let mut failures = Vec::new();
    for (label, call, status, code) in cases {
        let r = stack.call(call.by(owner)).await;
        if r.status != status || r.code() != code {
            failures.push(format!(
                "{label}: want {status} {code}, got {} {}",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "bad input:\n{}", failures.join("\n"));
    assert_eq!(
        stack.snapshot().await,
        before,
        "bad input changed the table"
    );
}

#[tokio::test]
async fn onboarding_walks_from_connection_to_first_inventory() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let (owner, readonly) = (&stack.users().owner, &stack.users().readonly);
    let ws = format!("/v1/workspaces/{}", d.workspace_id);
    // A new tenant: nothing done yet.
    let t = stack
        .call(
            ApiCall::post(
                format!("{ws}/tenants"),
                json!({"entra_tenant_id": guid(), "display_name": "Woodgrove"}).to_string(),
            )
            .by(owner),
        )
        .await;
    let tenant_id: tenantops_core::TenantId =
        t.body["tenant"]["id"].as_str().unwrap().parse().unwrap();
    let tenant = format!("{ws}/tenants/{tenant_id}");
    let status = |who| stack.call(ApiCall::get(format!("{tenant}/onboarding")).by(who));

    let s = status(owner).await;
    assert_eq!(
        s.body["blocking_reason"]["code"],
        "onboarding.connection_missing"
    );
    assert_eq!(s.body["verification"]["can_start"], false);

    let c = stack
        .call(
            put(
                format!("{tenant}/provider-connection"),
                json!({"client_id": guid(), "client_secret": "x"}),
            )
            .by(owner),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.body["connection"]["status"], "unverified");
    let s = status(owner).await;
    assert_eq!(
        s.body["blocking_reason"]["code"],
        "onboarding.verification_required"
    );
    assert_eq!(s.body["verification"]["can_start"], true);
    let r = status(readonly).await;
    assert_eq!(
        r.body["verification"]["can_start"], false,
        "read-only members see, not start"
    );
    assert_eq!(
        r.body["verification"]["cannot_start_because"],
        "auth.forbidden"
    );

    let verify = stack
        .call(
            ApiCall::post(
                stack.start_path(d.workspace_id, tenant_id),
                json!({"type": "provider_connection.verify"}).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(verify.status, 202);
    let s = status(readonly).await;
    assert_eq!(
        s.body["blocking_reason"]["code"],
        "onboarding.verification_running"
    );
    assert_eq!(s.body["verification"]["run"]["id"], verify.run_id());
    assert_eq!(s.body["verification"]["active"], true);
    assert_eq!(status(owner).await.body["verification"]["can_start"], false);

    stack.finish(&verify.run_id(), Outcome::Succeeded).await;
    let s = status(owner).await;
    assert_eq!(
        s.body["blocking_reason"]["code"],
        "onboarding.inventory_required"
    );
    let conn = stack
        .call(ApiCall::get(format!("{tenant}/provider-connection")).by(readonly))
        .await;
    assert_eq!(conn.body["connection"]["status"], "verified");

    let sync = stack
        .call(
            ApiCall::post(
                stack.start_path(d.workspace_id, tenant_id),
                json!({"type": "inventory.sync"}).to_string(),
            )
            .by(owner),
        )
        .await;
    stack.finish(&sync.run_id(), Outcome::Succeeded).await;
    let s = status(owner).await;
    assert_eq!(s.body["complete"], true, "{}", s.body);
    assert!(s.body["blocking_reason"].is_null());
}

/// Connection and onboarding status come from the latest run of each type, found in that
/// type's own index partition: 50 newer runs of another type do not hide them.
#[tokio::test]
async fn status_comes_from_the_latest_run_of_each_type_past_fifty_newer_runs() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let tenant = format!("/v1/workspaces/{}/tenants/{}", d.workspace_id, d.tenant_id);
    let verify = stack
        .start(json!({"type": "provider_connection.verify"}))
        .await;
    stack.finish(&verify, Outcome::Succeeded).await;
    let sync = stack.start(json!({"type": "inventory.sync"})).await;
    stack.finish(&sync, Outcome::Succeeded).await;
    for _ in 0..50 {
        let newer = stack.start(json!({"type": "directory_groups.sync"})).await;
        stack.finish(&newer, Outcome::Succeeded).await;
    }

    let conn = stack
        .call(ApiCall::get(format!("{tenant}/provider-connection")).by(owner))
        .await;
    assert_eq!(
        conn.body["connection"]["status"], "verified",
        "{}",
        conn.body
    );
    assert_eq!(
        conn.body["connection"]["last_check"],
        format!("/v1/operations/{verify}")
    );
    let s = stack
        .call(ApiCall::get(format!("{tenant}/onboarding")).by(owner))
        .await;
    assert_eq!(s.body["complete"], true, "{}", s.body);
}

#[tokio::test]
async fn workspaces_list_shows_the_callers_own_and_audit_records_changes() {
    let stack = TestStack::new().await;
    let owner = &stack.users().owner;
    let created = stack
        .call(ApiCall::post("/v1/workspaces", json!({"name": "Second MSP"}).to_string()).by(owner))
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["workspace"]["role"], "owner");
    let mine = stack.call(ApiCall::get("/v1/workspaces").by(owner)).await;
    let names: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Contoso MSP") && names.contains(&"Second MSP"));
    let outsider = stack
        .call(ApiCall::get("/v1/workspaces").by(&stack.users().outsider))
        .await;
    assert_eq!(outsider.body["items"].as_array().unwrap().len(), 1);

    let ws = format!("/v1/workspaces/{}", stack.demo.workspace_id);
    let audit = stack
        .call(ApiCall::get(format!("{ws}/audit?action=member.add")).by(owner))
        .await;
    let targets: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets.len(),
        3,
        "manager, operator and readonly were added: {}",
        audit.body
    );
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == owner.as_str())
    );
    let page = stack
        .call(ApiCall::get(format!("{ws}/audit?limit=2")).by(owner))
        .await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = stack
        .call(ApiCall::get(format!("{ws}/audit?limit=2&cursor={cursor}")).by(owner))
        .await;
    assert_eq!(next.status, 200);
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);
}

/// Concurrent rotations of one connection: each stages its secret, one commits, the others'
/// transactions are refused (the version they replace moved). The secret every worker reads
/// (the version the record names) and the live one (AWSCURRENT) are the committed rotation's:
/// a refused rotation replaced nothing.
#[tokio::test]
async fn a_refused_rotation_leaves_the_live_secret_alone() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    let conn = format!(
        "/v1/workspaces/{}/tenants/{}/provider-connection",
        d.workspace_id, d.tenant_id
    );
    let secrets: Vec<String> = (0..8)
        .map(|i| format!("rotated-{i}-{}", ulid::Ulid::new()))
        .collect();
    let replies = futures::future::join_all(secrets.iter().map(|s| {
        stack.call(
            put(
                conn.clone(),
                json!({"client_id": guid(), "client_secret": s}),
            )
            .by(owner),
        )
    }))
    .await;
    let committed: Vec<&String> = replies
        .iter()
        .zip(&secrets)
        .filter(|(r, _)| r.status == 200)
        .map(|(_, s)| s)
        .collect();
    let refused = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        committed.len() + refused,
        secrets.len(),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Rotations that did not overlap may each commit (each saw the one before); the ones
    // that raced a committed one were refused.
    assert!(!committed.is_empty(), "a rotation committed");
    assert!(refused >= 1, "the rotations raced");

    let record = stack
        .store()
        .get_connection(d.workspace_id, d.tenant_id, "default")
        .await
        .unwrap()
        .unwrap();
    let vault = tenantops_aws::SecretVault::from_sdk(&stack.sdk, "");
    let read = vault
        .read(&record.secret_name, record.secret_version_id.as_deref())
        .await
        .unwrap();
    assert!(
        committed.iter().any(|c| c.as_str() == read.expose()),
        "what a worker reads is a committed rotation's secret"
    );
    let live = vault.read(&record.secret_name, None).await.unwrap();
    assert_eq!(
        live.expose(),
        read.expose(),
        "AWSCURRENT is the recorded version"
    );
}
