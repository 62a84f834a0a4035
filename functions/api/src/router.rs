//! The router: one Lambda, every route. Errors become problem responses here, once.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderValue, Method, header};
use tracing::{Instrument, field};

use crate::Deps;
use crate::error::{ApiError, Resource};
use crate::problem;
use crate::request::ApiRequest;
use crate::response::Reply;
use crate::routes;

/// Every route `route` serves, as API Gateway route keys ("METHOD /path/{param}"). The
/// OpenAPI document (`functions/api/openapi.json`) must describe exactly these;
/// tests/it/openapi.rs checks this list against the match below and the document against it.
pub const ROUTES: &[&str] = &[
    "GET /v1/health",
    "GET /v1/openapi.json",
    "GET /v1/operations/{run}",
    "POST /v1/operations/{run}/cancel",
    "GET /v1/workspaces",
    "POST /v1/workspaces",
    "GET /v1/workspaces/{ws}/operations",
    "GET /v1/workspaces/{ws}/members",
    "PUT /v1/workspaces/{ws}/members/{user}",
    "DELETE /v1/workspaces/{ws}/members/{user}",
    "GET /v1/workspaces/{ws}/audit",
    "GET /v1/workspaces/{ws}/tenants",
    "POST /v1/workspaces/{ws}/tenants",
    "GET /v1/workspaces/{ws}/tenants/{tenant}",
    "PATCH /v1/workspaces/{ws}/tenants/{tenant}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/archive",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/provider-connection",
    "PUT /v1/workspaces/{ws}/tenants/{tenant}/provider-connection",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/onboarding",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/inventory",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/groups",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/directory/role-definitions",
    "GET /v1/me/notifications",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/operations",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "PATCH /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "DELETE /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/run-now",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/backup-schedules/{schedule}/retry",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/backups/{set}/diff/{other}",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/drift",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/accept",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/drift/{report}/revert",
    "GET /v1/workspaces/{ws}",
    "PATCH /v1/workspaces/{ws}",
    "GET /v1/workspaces/{ws}/backup-schedules",
    "POST /v1/workspaces/{ws}/backup-schedules",
    "GET /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "PATCH /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "DELETE /v1/workspaces/{ws}/backup-schedules/{schedule}",
    "POST /v1/workspaces/{ws}/batches",
    "GET /v1/workspaces/{ws}/batches/{batch}",
    "POST /v1/workspaces/{ws}/batches/{batch}/cancel",
    "POST /v1/workspaces/{ws}/batches/{batch}/retry",
    "POST /v1/workspaces/{ws}/batches/{batch}/execute",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/restores",
    "GET /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}",
    "POST /v1/workspaces/{ws}/tenants/{tenant}/restores/{restore}/execute",
    "GET /v1/system/operations",
    "GET /v1/system/operations/{run}",
    "GET /v1/system/workspaces",
    "GET /v1/system/workspaces/{ws}",
    "GET /v1/workspaces/{ws}/webhooks",
    "POST /v1/workspaces/{ws}/webhooks",
    "GET /v1/workspaces/{ws}/webhooks/{webhook}",
    "DELETE /v1/workspaces/{ws}/webhooks/{webhook}",
    "GET /v1/workspaces/{ws}/webhooks/{webhook}/deliveries",
    "POST /v1/workspaces/{ws}/webhooks/{webhook}/test",
];

/// The routes API Gateway serves without the JWT authorizer (the template's `Authorizer:
/// NONE` events; the local gateway opens the same).
pub const PUBLIC_ROUTES: &[&str] = &["GET /v1/health", "GET /v1/openapi.json"];

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
        batch_id = field::Empty,
    );
    async {
        // Boxed and type-erased: the router's future nests every route's, and its type grew
        // too deep for the compiler to lay out inside the Lambda's `main` (a query-depth
        // overflow); a `dyn Future` ends the nesting here.
        let routed: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Reply, ApiError>> + Send + '_>,
        > = Box::pin(route(&req, deps));
        let reply = match routed.await {
            Ok(reply) => reply,
            Err(err) => {
                log_error(&err);
                let mut reply = problem::reply(&err);
                if matches!(err, ApiError::MethodNotAllowed) {
                    // RFC 9110 §15.5.6: a 405 lists the methods the resource has.
                    if let Ok(allow) = HeaderValue::from_str(&allowed_methods(&req.path).join(", "))
                    {
                        reply.headers.push((header::ALLOW, allow));
                    }
                }
                reply
            }
        };
        tracing::info!(status = reply.status, "request served");
        reply.into_event()
    }
    .instrument(span)
    .await
}

async fn route(req: &ApiRequest, deps: &Deps) -> Result<Reply, ApiError> {
    use routes::schedules::Owner;
    use routes::{
        backups, batches, drift, operations, restores, schedules, system, tenant_data, tenants,
        webhooks, workspaces,
    };
    let path = req.path.strip_suffix('/').unwrap_or(&req.path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let m = &req.method;
    match segments.as_slice() {
        ["v1", "health"] => {
            only(m, Method::GET)?;
            Ok(Reply::json(200, &serde_json::json!({ "status": "ok" })))
        }
        ["v1", "openapi.json"] => {
            only(m, Method::GET)?;
            Ok(routes::openapi::document())
        }
        ["v1", "operations", run] => {
            only(m, Method::GET)?;
            operations::view(req, deps, run).await
        }
        ["v1", "operations", run, "cancel"] => {
            only(m, Method::POST)?;
            operations::cancel(req, deps, run).await
        }
        ["v1", "workspaces"] => match *m {
            Method::GET => workspaces::list(req, deps).await,
            Method::POST => workspaces::create(req, deps).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "operations"] => {
            only(m, Method::GET)?;
            operations::list(req, deps, ws).await
        }
        ["v1", "workspaces", ws, "members"] => {
            only(m, Method::GET)?;
            workspaces::members(req, deps, ws).await
        }
        ["v1", "workspaces", ws, "members", user] => match *m {
            Method::PUT => workspaces::change_member(req, deps, ws, user, Some(())).await,
            Method::DELETE => workspaces::change_member(req, deps, ws, user, None).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "audit"] => {
            only(m, Method::GET)?;
            workspaces::audit(req, deps, ws).await
        }
        ["v1", "workspaces", ws, "tenants"] => match *m {
            Method::GET => Box::pin(tenants::list(req, deps, ws)).await,
            Method::POST => tenants::create(req, deps, ws).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "tenants", t] => match *m {
            Method::GET => tenants::view(req, deps, ws, t).await,
            Method::PATCH => tenants::update(req, deps, ws, t, false).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "tenants", t, "archive"] => {
            only(m, Method::POST)?;
            tenants::update(req, deps, ws, t, true).await
        }
        ["v1", "workspaces", ws, "tenants", t, "provider-connection"] => match *m {
            Method::GET => tenants::view_connection(req, deps, ws, t).await,
            Method::PUT => tenants::put_connection(req, deps, ws, t).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "tenants", t, "onboarding"] => {
            only(m, Method::GET)?;
            tenants::onboarding(req, deps, ws, t).await
        }
        ["v1", "workspaces", ws, "tenants", t, "inventory"] => {
            only(m, Method::GET)?;
            tenant_data::inventory(req, deps, ws, t).await
        }
        ["v1", "workspaces", ws, "tenants", t, "directory", "groups"] => {
            only(m, Method::GET)?;
            tenant_data::groups(req, deps, ws, t).await
        }
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "directory",
            "role-definitions",
        ] => {
            only(m, Method::GET)?;
            tenant_data::role_definitions(req, deps, ws, t).await
        }
        ["v1", "me", "notifications"] => {
            only(m, Method::GET)?;
            tenant_data::notifications(req, deps).await
        }
        ["v1", "workspaces", ws, "tenants", t, "backup-schedules"] => match *m {
            Method::GET => schedules::list(req, deps, ws, Owner::Tenant(t)).await,
            Method::POST => schedules::create(req, deps, ws, Owner::Tenant(t)).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "tenants", t, "backup-schedules", id] => match *m {
            Method::GET => schedules::view(req, deps, ws, Owner::Tenant(t), id).await,
            Method::PATCH => schedules::update(req, deps, ws, Owner::Tenant(t), id).await,
            Method::DELETE => schedules::delete(req, deps, ws, Owner::Tenant(t), id).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "backup-schedules",
            id,
            "run-now",
        ] => {
            only(m, Method::POST)?;
            schedules::run_now(req, deps, ws, t, id).await
        }
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "backup-schedules",
            id,
            "retry",
        ] => {
            only(m, Method::POST)?;
            schedules::retry(req, deps, ws, t, id).await
        }
        ["v1", "workspaces", ws, "tenants", t, "backups"] => {
            only(m, Method::GET)?;
            backups::list(req, deps, ws, t).await
        }
        ["v1", "workspaces", ws, "tenants", t, "backups", set] => {
            only(m, Method::GET)?;
            backups::view(req, deps, ws, t, set).await
        }
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "backups",
            a,
            "diff",
            b,
        ] => {
            only(m, Method::GET)?;
            drift::backup_diff(req, deps, ws, t, (a, b)).await
        }
        ["v1", "workspaces", ws, "tenants", t, "drift"] => {
            only(m, Method::GET)?;
            drift::list(req, deps, ws, t).await
        }
        ["v1", "workspaces", ws, "tenants", t, "drift", report] => {
            only(m, Method::GET)?;
            drift::view(req, deps, ws, t, report).await
        }
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "drift",
            report,
            "accept",
        ] => {
            only(m, Method::POST)?;
            drift::accept(req, deps, ws, t, report).await
        }
        // A revert is a restore preview of the report's baseline: the drift module checks
        // the selection, the restores module starts the preview.
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "drift",
            report,
            "revert",
        ] => {
            only(m, Method::POST)?;
            let (body, audit) = drift::revert_selection(req, deps, ws, t, report).await?;
            Box::pin(restores::preview_with(req, deps, ws, t, Some(body), audit)).await
        }
        ["v1", "workspaces", ws, "backup-schedules"] => match *m {
            Method::GET => schedules::list(req, deps, ws, Owner::Workspace).await,
            Method::POST => schedules::create(req, deps, ws, Owner::Workspace).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "backup-schedules", id] => match *m {
            Method::GET => schedules::view(req, deps, ws, Owner::Workspace, id).await,
            Method::PATCH => schedules::update(req, deps, ws, Owner::Workspace, id).await,
            Method::DELETE => schedules::delete(req, deps, ws, Owner::Workspace, id).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "batches"] => {
            only(m, Method::POST)?;
            Box::pin(batches::create(req, deps, ws)).await
        }
        ["v1", "workspaces", ws, "batches", batch] => {
            only(m, Method::GET)?;
            Box::pin(batches::view(req, deps, ws, batch)).await
        }
        ["v1", "workspaces", ws, "batches", batch, "cancel"] => {
            only(m, Method::POST)?;
            Box::pin(batches::cancel(req, deps, ws, batch)).await
        }
        ["v1", "workspaces", ws, "batches", batch, "retry"] => {
            only(m, Method::POST)?;
            Box::pin(batches::retry(req, deps, ws, batch)).await
        }
        ["v1", "workspaces", ws, "batches", batch, "execute"] => {
            only(m, Method::POST)?;
            Box::pin(batches::execute(req, deps, ws, batch)).await
        }
        ["v1", "workspaces", ws] => match *m {
            Method::GET => Box::pin(workspaces::view(req, deps, ws)).await,
            Method::PATCH => workspaces::update_workspace(req, deps, ws).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        // The system plane: anyone but a platform operator meets a missing route, whatever
        // the method. (Boxed: their futures are large, and the router's is the largest arm's.)
        ["v1", "system", "operations"] => {
            system::gate(req, deps, m)?;
            Box::pin(system::list_operations(req, deps)).await
        }
        ["v1", "system", "operations", run] => {
            system::gate(req, deps, m)?;
            Box::pin(system::view_operation(req, deps, run)).await
        }
        ["v1", "system", "workspaces"] => {
            system::gate(req, deps, m)?;
            Box::pin(system::list_workspaces(req, deps)).await
        }
        ["v1", "system", "workspaces", ws] => {
            system::gate(req, deps, m)?;
            Box::pin(system::view_workspace(req, deps, ws)).await
        }
        ["v1", "workspaces", ws, "tenants", t, "restores"] => {
            only(m, Method::POST)?;
            restores::preview(req, deps, ws, t).await
        }
        ["v1", "workspaces", ws, "tenants", t, "restores", id] => {
            only(m, Method::GET)?;
            restores::get(req, deps, ws, t, id).await
        }
        [
            "v1",
            "workspaces",
            ws,
            "tenants",
            t,
            "restores",
            id,
            "execute",
        ] => {
            only(m, Method::POST)?;
            restores::execute(req, deps, ws, t, id).await
        }
        ["v1", "workspaces", ws, "webhooks"] => match *m {
            Method::GET => webhooks::list(req, deps, ws).await,
            Method::POST => Box::pin(webhooks::create(req, deps, ws)).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "webhooks", id] => match *m {
            Method::GET => webhooks::view(req, deps, ws, id).await,
            Method::DELETE => webhooks::delete(req, deps, ws, id).await,
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["v1", "workspaces", ws, "webhooks", id, "deliveries"] => {
            only(m, Method::GET)?;
            webhooks::deliveries(req, deps, ws, id).await
        }
        ["v1", "workspaces", ws, "webhooks", id, "test"] => {
            only(m, Method::POST)?;
            webhooks::test(req, deps, ws, id).await
        }
        ["v1", "workspaces", ws, "tenants", tenant, "operations"] => {
            only(m, Method::POST)?;
            operations::start(req, deps, ws, tenant).await
        }
        _ => {
            // Unknown routes still require a caller, as API Gateway's authorizer would.
            req.caller()?;
            Err(ApiError::NotFound(Resource::Route))
        }
    }
}

/// The methods `ROUTES` serves on `path` (a concrete path: `{param}` segments match any
/// segment), in the table's order.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .filter_map(|key| key.split_once(' '))
        .filter(|(_, template)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') && !s.is_empty() || t == s)
        })
        .map(|(method, _)| method)
        .fold(Vec::new(), |mut methods, m| {
            if !methods.contains(&m) {
                methods.push(m);
            }
            methods
        })
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
        tracing::error!(code = err.code().as_str(), error = %chain, "request failed");
    } else {
        tracing::info!(
            code = err.code().as_str(),
            status = err.status(),
            "request refused"
        );
    }
}
