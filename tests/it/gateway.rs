//! The local gateway behaves like API Gateway's JWT authorizer, and the handler itself
//! refuses events that carry no verified caller. It holds the API Lambda's limits: the
//! template's timeout and the 6 MB response payload.

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use axum::body::to_bytes;
use futures::FutureExt;
use serde_json::json;
use tenantops_aws::Store;
use tenantops_local::gateway::{self, Gateway, LAMBDA_RESPONSE_LIMIT};
use tenantops_local::template::{API_FUNCTION, Template};
use tenantops_local::tokens::TokenIssuer;
use tenantops_tests::faults::{DynamoFaults, KillAt};
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

#[tokio::test]
async fn a_handler_past_the_api_timeout_gets_api_gateways_500() {
    let stack = TestStack::new().await;
    // Every DynamoDB call of this API pends from its first GetItem on: the handler is stuck.
    let faults = DynamoFaults::none();
    let mut stuck = faults.kill_at(KillAt {
        operation: "GetItem",
        body_contains: None,
        nth: 1,
        after_sending: false,
    });
    let deps = stack.with_store(Store::new(
        faults.dynamodb(&stack.sdk),
        &stack.resources.table_name,
    ));
    let gateway = Gateway::from_template(deps, stack.tokens.clone()).unwrap();
    assert_eq!(
        gateway.timeout,
        Template::embedded()
            .unwrap()
            .function_timeout(API_FUNCTION)
            .unwrap(),
        "the template's API timeout"
    );
    let gateway = Gateway {
        timeout: Duration::from_secs(1),
        ..gateway
    };

    let path = format!(
        "/v1/workspaces/{}/tenants/{}",
        stack.demo.workspace_id, stack.demo.tenant_id
    );
    let r = stack
        .call_via(gateway, ApiCall::get(path).by(&stack.users().owner))
        .await;

    assert!(
        stuck.fired().now_or_never().is_some(),
        "the handler was stuck in DynamoDB"
    );
    assert_eq!(
        (r.status, r.content_type.as_str(), r.body),
        (
            500,
            "application/json",
            json!({"message": "Internal Server Error"})
        )
    );
}

#[tokio::test]
async fn a_response_over_lambdas_6_mb_is_refused_as_api_gateway_does() {
    let respond = |body: String| async move {
        let mut out = ApiGatewayV2httpResponse::default();
        out.status_code = 200;
        out.body = Some(Body::Text(body));
        let resp = gateway::lambda_response(out);
        let status = resp.status().as_u16();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, bytes.len(), serde_json::from_slice(&bytes).ok())
    };
    // The limit applies to the serialized response event, body included.
    let (status, len, _) = respond("x".repeat(LAMBDA_RESPONSE_LIMIT - 1024)).await;
    assert_eq!((status, len), (200, LAMBDA_RESPONSE_LIMIT - 1024));
    let (status, _, body) = respond("x".repeat(LAMBDA_RESPONSE_LIMIT)).await;
    assert_eq!(
        (status, body),
        (500, Some(json!({"message": "Internal Server Error"})))
    );
}
