//! The local gateway behaves like API Gateway's JWT authorizer, and the handler itself
//! refuses events that carry no verified caller.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::json;
use tenantops_local::tokens::TokenIssuer;
use tenantops_tests::{ApiCall, TestStack};

#[tokio::test]
async fn health_is_open_and_everything_else_needs_a_valid_token() {
    let stack = TestStack::new().await;
    let health = stack.call(ApiCall::get("/v1/health")).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );

    let list = format!("/v1/workspaces/{}/operations", stack.demo.workspace_id);
    let anonymous = stack.call(ApiCall::get(list.clone())).await;
    assert_eq!(
        (anonymous.status, anonymous.body),
        (401, json!({"message": "Unauthorized"}))
    );

    let forged = TokenIssuer::generate()
        .mint(stack.users().owner.as_str(), 3600)
        .unwrap();
    let mut call = ApiCall::get(list.clone());
    call.raw_token = Some(forged);
    assert_eq!(
        stack.call(call).await.status,
        401,
        "a token signed with another key"
    );

    let expired = stack
        .tokens
        .mint(stack.users().owner.as_str(), -120)
        .unwrap();
    let mut call = ApiCall::get(list.clone());
    call.raw_token = Some(expired);
    assert_eq!(stack.call(call).await.status, 401, "an expired token");

    let ok = stack
        .call(ApiCall::get(list).by(&stack.users().owner))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn an_event_without_authorizer_claims_is_a_401_problem() {
    let stack = TestStack::new().await;
    let event: ApiGatewayV2httpRequest = serde_json::from_value(json!({
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": format!("/v1/workspaces/{}/operations", stack.demo.workspace_id),
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": { "method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t" },
            "requestId": "r1", "routeKey": "ANY /v1/{proxy+}", "stage": "$default", "timeEpoch": 0
        },
        "isBase64Encoded": false
    }))
    .unwrap();
    let out = tenantops_api::handle(event, &stack.deps).await;
    assert_eq!(out.status_code, 401);
    let body = match out.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => t,
        other => panic!("unexpected body {other:?}"),
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "auth.unauthenticated");
}
