//! Bad input gets a problem response with a stable code, and changes nothing.

use serde_json::json;
use tenantops_tests::{ApiCall, TestStack};

#[tokio::test]
async fn bad_start_requests_are_refused_with_stable_codes_and_write_nothing() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let path = stack.start_path(d.workspace_id, d.tenant_id);
    let owner = &stack.users().owner;
    let post = |body: String| ApiCall::post(path.clone(), body).by(owner);
    let cases: Vec<(&str, ApiCall, u16, &str)> = vec![
        (
            "malformed JSON",
            post("{\"type\":".into()),
            400,
            "request.malformed_json",
        ),
        (
            "empty body",
            post(String::new()),
            400,
            "request.malformed_json",
        ),
        ("not an object", post("[1]".into()), 422, "request.invalid"),
        ("missing type", post("{}".into()), 422, "request.invalid"),
        (
            "type of the wrong JSON type",
            post(json!({"type": 5}).to_string()),
            422,
            "request.invalid",
        ),
        (
            "unknown top-level field",
            post(json!({"type": "inventory.sync", "typo": 1}).to_string()),
            422,
            "request.invalid",
        ),
        (
            "unknown type",
            post(json!({"type": "inventory.nuke"}).to_string()),
            422,
            "operation.unknown_type",
        ),
        (
            "params not an object",
            post(json!({"type": "inventory.sync", "params": [1]}).to_string()),
            422,
            "operation.invalid_params",
        ),
        (
            "unknown param",
            post(json!({"type": "inventory.sync", "params": {"all": true}}).to_string()),
            422,
            "operation.invalid_params",
        ),
        (
            "param of the wrong type",
            post(json!({"type": "directory_groups.sync", "params": {"full": "yes"}}).to_string()),
            422,
            "operation.invalid_params",
        ),
        (
            "bad connection id",
            post(
                json!({"type": "provider_connection.verify", "params": {"connection_id": "../x"}})
                    .to_string(),
            ),
            422,
            "operation.invalid_params",
        ),
        (
            // Checked in the start transaction: a check of nothing never reaches the worker.
            "connection that does not exist",
            post(
                json!({"type": "provider_connection.verify", "params": {"connection_id": "nope"}})
                    .to_string(),
            ),
            404,
            "connection.not_found",
        ),
        (
            "system-only type",
            post(json!({"type": "backup_schedule.scheduled"}).to_string()),
            422,
            "operation.not_startable",
        ),
        (
            "dedicated-route type",
            post(json!({"type": "restore.execute"}).to_string()),
            422,
            "operation.not_startable",
        ),
        (
            "oversized body",
            post(format!(
                "{{\"type\":\"inventory.sync\",\"pad\":\"{}\"}}",
                "x".repeat(300 * 1024)
            )),
            413,
            "request.too_large",
        ),
        (
            "wrong media type",
            post(json!({"type": "inventory.sync"}).to_string())
                .header("content-type", "text/plain"),
            415,
            "request.unsupported_media_type",
        ),
        (
            "bad Idempotency-Key",
            post(json!({"type": "backup_schedule.run_now"}).to_string())
                .header("idempotency-key", "k".repeat(300)),
            400,
            "idempotency_key.invalid",
        ),
        (
            "malformed workspace id",
            ApiCall::post(
                stack.start_path("not-a-workspace", d.tenant_id),
                json!({"type": "inventory.sync"}).to_string(),
            )
            .by(owner),
            404,
            "workspace.not_found",
        ),
        (
            "malformed tenant id",
            ApiCall::post(
                stack.start_path(d.workspace_id, "nope"),
                json!({"type": "inventory.sync"}).to_string(),
            )
            .by(owner),
            404,
            "tenant.not_found",
        ),
        (
            "unknown tenant",
            ApiCall::post(
                stack.start_path(d.workspace_id, tenantops_core::TenantId::new()),
                json!({"type": "inventory.sync"}).to_string(),
            )
            .by(owner),
            404,
            "tenant.not_found",
        ),
        (
            "wrong method",
            ApiCall::get(path.clone()).by(owner),
            405,
            "method.not_allowed",
        ),
    ];
    assert_refused_and_nothing_written(&stack, cases).await;
}

#[tokio::test]
async fn bad_reads_are_refused_with_stable_codes_and_write_nothing() {
    let stack = TestStack::new().await;
    let d = &stack.demo;
    let owner = &stack.users().owner;
    // Two runs, so that a real cursor exists to tamper with.
    for ty in ["inventory.sync", "directory_groups.sync"] {
        let r = stack
            .call(
                ApiCall::post(
                    stack.start_path(d.workspace_id, d.tenant_id),
                    json!({"type": ty}).to_string(),
                )
                .by(owner),
            )
            .await;
        assert_eq!(r.status, 202);
    }
    let list = format!("/v1/workspaces/{}/operations", d.workspace_id);
    let page = stack
        .call(ApiCall::get(format!("{list}?limit=1")).by(owner))
        .await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let get = |q: String| ApiCall::get(format!("{list}{q}")).by(owner);
    let cases: Vec<(&str, ApiCall, u16, &str)> = vec![
        (
            "tampered cursor",
            get(format!("?limit=1&cursor={tampered}")),
            400,
            "cursor.invalid",
        ),
        (
            "garbage cursor",
            get("?cursor=%%%".into()),
            400,
            "cursor.invalid",
        ),
        (
            "cursor of another query",
            get(format!("?limit=1&cursor={cursor}&status=queued")),
            400,
            "cursor.invalid",
        ),
        ("limit zero", get("?limit=0".into()), 400, "query.invalid"),
        (
            "limit too large",
            get("?limit=1000".into()),
            400,
            "query.invalid",
        ),
        (
            "limit not a number",
            get("?limit=ten".into()),
            400,
            "query.invalid",
        ),
        (
            "unknown status",
            get("?status=done".into()),
            400,
            "query.invalid",
        ),
        (
            "active not a boolean",
            get("?active=maybe".into()),
            400,
            "query.invalid",
        ),
        (
            "unknown type",
            get("?type=inventory.nuke".into()),
            400,
            "query.invalid",
        ),
        (
            "malformed tenant",
            get("?tenant=x".into()),
            400,
            "query.invalid",
        ),
        (
            "unknown parameter",
            get("?sort=asc".into()),
            400,
            "query.invalid",
        ),
        (
            "repeated parameter",
            get("?limit=1&limit=2".into()),
            400,
            "query.invalid",
        ),
        (
            "malformed run id",
            ApiCall::get("/v1/operations/not-a-run").by(owner),
            404,
            "run.not_found",
        ),
        (
            "unknown route",
            ApiCall::get("/v1/nothing-here").by(owner),
            404,
            "route.not_found",
        ),
    ];
    assert_refused_and_nothing_written(&stack, cases).await;
}

async fn assert_refused_and_nothing_written(
    stack: &TestStack,
    cases: Vec<(&str, ApiCall<'_>, u16, &str)>,
) {
    let before = stack.snapshot().await;
    let messages = stack.queued_messages().await;
    let mut failures = Vec::new();
    for (label, call, status, code) in cases {
        let r = stack.call(call).await;
        if r.status != status || r.code() != code {
            failures.push(format!(
                "{label}: want {status} {code}, got {} {}",
                r.status, r.body
            ));
            continue;
        }
        assert_eq!(r.content_type, "application/problem+json", "{label}");
        assert_eq!(r.body["status"], status, "{label}");
        assert!(r.body["type"].as_str().unwrap().ends_with(code), "{label}");
        assert!(
            r.body["title"].is_string() && r.body["detail"].is_string(),
            "{label}"
        );
    }
    assert!(failures.is_empty(), "bad input:\n{}", failures.join("\n"));
    assert_eq!(
        stack.snapshot().await,
        before,
        "bad input changed the table"
    );
    assert_eq!(
        stack.queued_messages().await,
        messages,
        "bad input dispatched a message"
    );
}
