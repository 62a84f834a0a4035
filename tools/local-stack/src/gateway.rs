//! A local stand-in for API Gateway (HTTP API, JWT authorizer, payload format 2.0).
//!
//! Routes as the template declares them: `tenantops_api::PUBLIC_ROUTES` (health, the OpenAPI
//! document) without authorization, everything else under `/v1/` behind the JWT
//! authorizer. A missing or invalid token gets API Gateway's
//! own 401 before the handler runs; a verified token's claims are passed in
//! `requestContext.authorizer.jwt.claims`, exactly where the Lambda reads them in AWS.
//!
//! Lambda's limits hold as in AWS: a handler still running at the API function's `Timeout`
//! (from the template) is dropped, and a response over Lambda's 6 MB synchronous payload is
//! refused; the client gets API Gateway's answer to a failed invocation either way.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as EventBody;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tenantops_api::Deps;

use crate::template::{API_FUNCTION, Template, timeout_override};
use crate::tokens::TokenIssuer;

/// API Gateway's HTTP API payload limit.
const GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Lambda's limit on a synchronous invocation's response payload (the serialized response
/// event), 6 MB: "For synchronous invocations, the maximum payload size is 6 MB"
/// (https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html; 6 MiB, as Lambda's error
/// message gives it: 6291456 bytes).
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Overrides the API function's `Timeout` locally (whole seconds).
pub const TIMEOUT_ENV: &str = "TENANTOPS_LOCAL_API_TIMEOUT_S";

#[derive(Debug, Clone)]
pub struct Gateway {
    pub deps: Arc<Deps>,
    pub tokens: TokenIssuer,
    /// The API function's timeout: a handler still running then is dropped.
    pub timeout: Duration,
}

impl Gateway {
    /// A gateway with exactly the template's API function timeout.
    pub fn from_template(deps: Arc<Deps>, tokens: TokenIssuer) -> anyhow::Result<Self> {
        let timeout = Template::embedded()?.function_timeout(API_FUNCTION)?;
        Ok(Self {
            deps,
            tokens,
            timeout,
        })
    }

    /// The template's timeout, unless [`TIMEOUT_ENV`] overrides it.
    pub fn configured(deps: Arc<Deps>, tokens: TokenIssuer) -> anyhow::Result<Self> {
        let mut gateway = Self::from_template(deps, tokens)?;
        if let Some(timeout) = timeout_override(TIMEOUT_ENV)? {
            gateway.timeout = timeout;
        }
        Ok(gateway)
    }
}

pub fn router(gateway: Gateway) -> Router {
    Router::new().fallback(serve).with_state(gateway)
}

async fn serve(State(gw): State<Gateway>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, GATEWAY_BODY_LIMIT).await else {
        return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let path = parts.uri.path().to_owned();
    let route_key = format!("{} {path}", parts.method);
    let public = tenantops_api::PUBLIC_ROUTES.contains(&route_key.as_str());
    let claims = if public {
        None
    } else {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token.and_then(|t| gw.tokens.verify(t)) {
            Some(claims) => Some(claims),
            None => return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized"),
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = EventRequest {
        method: parts.method.as_str(),
        path: &path,
        query: parts.uri.query().unwrap_or(""),
        headers,
        claims,
        body: &body,
    };
    let event = match request.event() {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(error = %err, "could not build the API Gateway event");
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let Ok(out) = tokio::time::timeout(gw.timeout, tenantops_api::handle(event, &gw.deps)).await
    else {
        // The function times out (10 s) well before HTTP API's 30 s integration timeout, so
        // the invocation ends in a Lambda error, which an HTTP API answers 500
        // {"message":"Internal Server Error"}
        // (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html).
        tracing::error!(
            timeout_s = gw.timeout.as_secs_f64(),
            route = %route_key,
            "API invocation timed out and was killed"
        );
        return failed_invocation();
    };
    lambda_response(out)
}

/// The client's response for what the handler returned: as-is, unless Lambda would refuse
/// it for size (over [`LAMBDA_RESPONSE_LIMIT`] serialized), which API Gateway answers like
/// any failed invocation.
pub fn lambda_response(out: ApiGatewayV2httpResponse) -> Response {
    let size = serde_json::to_vec(&out)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > LAMBDA_RESPONSE_LIMIT {
        tracing::error!(
            bytes = size,
            limit = LAMBDA_RESPONSE_LIMIT,
            "API response refused: over Lambda's synchronous payload limit"
        );
        return failed_invocation();
    }
    let status = u16::try_from(out.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match out.body {
        Some(EventBody::Text(t)) => Body::from(t),
        Some(EventBody::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (k, v) in out.headers.iter() {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

/// One HTTP request, as the gateway saw it.
#[derive(Debug)]
pub struct EventRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(String, String)>,
    /// Verified JWT claims; `None` on the unauthenticated route.
    pub claims: Option<serde_json::Map<String, Value>>,
    pub body: &'a [u8],
}

impl EventRequest<'_> {
    /// The payload-v2 event in the shape API Gateway sends it.
    pub fn event(&self) -> Result<ApiGatewayV2httpRequest, serde_json::Error> {
        serde_json::from_value(self.event_json())
    }

    fn event_json(&self) -> Value {
        let public = self.claims.is_none();
        let public_key = format!("{} {}", self.method, self.path);
        let route_key = if public {
            public_key.as_str()
        } else {
            "ANY /v1/{proxy+}"
        };
        let mut headers = serde_json::Map::new();
        for (k, v) in &self.headers {
            let k = k.to_ascii_lowercase();
            // API Gateway joins repeated headers with commas.
            match headers.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(v);
                }
                _ => {
                    headers.insert(k, Value::String(v.clone()));
                }
            }
        }
        let now = chrono::Utc::now();
        let authorizer = self.claims.clone().map(|c| {
            // The HTTP API's authorizer hands claims over as strings, an array as its
            // values space-separated in brackets (`[a b]`).
            let claims: serde_json::Map<String, Value> = c
                .into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Array(values) => format!(
                            "[{}]",
                            values
                                .iter()
                                .map(|v| match v {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                        other => other.to_string(),
                    };
                    (k, Value::String(s))
                })
                .collect();
            json!({ "jwt": { "claims": claims, "scopes": null } })
        });
        let (body, is_base64) = if self.body.is_empty() {
            (Value::Null, false)
        } else {
            match std::str::from_utf8(self.body) {
                Ok(text) => (Value::String(text.to_owned()), false),
                Err(_) => (
                    Value::String(base64::engine::general_purpose::STANDARD.encode(self.body)),
                    true,
                ),
            }
        };
        let user_agent = headers
            .get("user-agent")
            .cloned()
            .unwrap_or(Value::String(String::new()));
        let mut ctx = json!({
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        });
        if let (Some(a), Some(obj)) = (authorizer, ctx.as_object_mut()) {
            obj.insert("authorizer".into(), a);
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": ctx,
            "isBase64Encoded": is_base64,
        });
        if let Some(obj) = event.as_object_mut() {
            if !body.is_null() {
                obj.insert("body".into(), body);
            }
            if !public {
                let proxy = self.path.strip_prefix("/v1/").unwrap_or(self.path);
                obj.insert("pathParameters".into(), json!({ "proxy": proxy }));
            }
        }
        event
    }
}

/// Calls the API handler directly as `sub` (a verified caller), with a JSON body: what the
/// demo seed uses, so that it goes through the same code paths as a client.
pub async fn invoke(
    deps: &Deps,
    method: &str,
    path: &str,
    sub: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), Value::String(sub.to_owned()));
    let request = EventRequest {
        method,
        path,
        query: "",
        headers: vec![("content-type".into(), "application/json".into())],
        claims: Some(claims),
        body: body.as_bytes(),
    };
    let out = tenantops_api::handle(request.event()?, deps).await;
    let body = match out.body {
        Some(EventBody::Text(t)) if !t.is_empty() => serde_json::from_str(&t)?,
        _ => Value::Null,
    };
    Ok((u16::try_from(out.status_code)?, body))
}

/// What an HTTP API answers when the Lambda invocation itself failed (a timeout, a refused
/// response): 500 {"message":"Internal Server Error"}
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html).
fn failed_invocation() -> Response {
    gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// API Gateway's own error shape (not a problem document: the Lambda never ran).
fn gateway_message(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, json!({ "message": message }).to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
