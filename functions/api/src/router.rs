//! The router: one Lambda, every route. Errors become problem responses here, once.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::Method;
use tracing::{Instrument, field};

use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::problem;
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::routes;

/// Handles one API Gateway v2 event.
pub async fn handle(event: ApiGatewayV2httpRequest, deps: &Deps) -> ApiGatewayV2httpResponse {
    let request_id = event.request_context.request_id.clone().unwrap_or_default();
    let req = ApiRequest::from_event(event);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method,
        path = %req.path,
        caller = field::Empty,
        run_id = field::Empty,
    );
    async {
        let reply = match route(&req, deps).await {
            Ok(reply) => reply,
            Err(err) => {
                log_error(&err);
                problem::reply(&err)
            }
        };
        tracing::info!(status = reply.status, "request served");
        reply.into_event()
    }
    .instrument(span)
    .await
}

async fn route(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    let path = req.path.strip_suffix('/').unwrap_or(&req.path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let m = &req.method;
    match segments.as_slice() {
        ["v1", "health"] => {
            only(m, Method::GET).map(|()| Reply::json(200, &serde_json::json!({ "status": "ok" })))
        }
        ["v1", "operations", run] => {
            only(m, Method::GET)?;
            routes::operations::view(req, deps, run).await
        }
        ["v1", "workspaces", ws, "operations"] => {
            only(m, Method::GET)?;
            routes::operations::list(req, deps, ws).await
        }
        ["v1", "workspaces", ws, "tenants", tenant, "operations"] => {
            only(m, Method::POST)?;
            routes::operations::start(req, deps, ws, tenant).await
        }
        _ => {
            // Unknown routes still require a caller, as API Gateway's authorizer would.
            req.caller()?;
            Err(ApiError::NotFound(Resource::Route))
        }
    }
}

fn only(actual: &Method, allowed: Method) -> Result<(), ApiError> {
    if *actual == allowed {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Client errors are routine (info); server errors carry their whole source chain, logged
/// once here and never sent to the client.
fn log_error(err: &ApiError) {
    if err.status() >= 500 {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(code = err.code(), error = %chain, "request failed");
    } else {
        tracing::info!(code = err.code(), status = err.status(), "request refused");
    }
}
