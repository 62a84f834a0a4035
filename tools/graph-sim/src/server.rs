//! The HTTP face: one axum fallback that hands each request to the simulator under its lock
//! and turns the reply into a response with Graph's headers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;

use crate::RecordedRequest;
use crate::reply::{GRAPH_JSON, Reply, graph_error};
use crate::sim::{Call, Sim};

/// Largest request body accepted (a `$batch` of 20 restores stays far below this).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Shared {
    sim: Mutex<Sim>,
    /// Latency added before every request is served, in milliseconds (0: none).
    delay_ms: AtomicU64,
}

impl Shared {
    pub(crate) fn new(sim: Sim) -> Shared {
        Shared {
            sim: Mutex::new(sim),
            delay_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// The simulator; a panic in a test's `with_tenant` closure must not wedge the server.
    pub(crate) fn sim(&self) -> MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let delay = shared.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        // Outside the simulator's lock: delayed requests overlap as Graph's would.
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let method = parts.method.as_str().to_ascii_uppercase();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let headers = parts.headers;
    let sent_client_request_id = header(&headers, "client-request-id");
    let mut sim = shared.sim();
    let ids = sim.new_ids(sent_client_request_id.as_deref());

    // Entra answers plain JSON; Graph answers OData JSON.
    let mut content_type = GRAPH_JSON;
    let reply = if let Some(rest) = path.strip_prefix("/login/") {
        content_type = "application/json; charset=utf-8";
        let tenant_segment = rest.split('/').next().unwrap_or_default().to_owned();
        let (reply, client_id) = if rest == format!("{tenant_segment}/oauth2/v2.0/token") {
            sim.token(&method, &tenant_segment, &body, &ids)
        } else {
            (
                graph_error(
                    404,
                    "NotFound",
                    "graph-sim serves only the v2.0 token endpoint.",
                    &ids,
                ),
                None,
            )
        };
        sim.record(RecordedRequest {
            at: Utc::now(),
            method: method.clone(),
            path: path.clone(),
            query,
            tenant_id: Some(tenant_segment.to_lowercase()),
            client_id,
            status: reply.status,
            retry_after: None,
            client_request_id: sent_client_request_id,
            budget: None,
            batch_item_id: None,
            inside_retry_after: false,
        });
        reply
            .with_header("x-ms-request-id", ids.request_id.clone())
            .with_header("client-request-id", ids.client_request_id.clone())
    } else if let Some(rest) = path.strip_prefix("/graph/") {
        let (version, graph_path) = rest.split_once('/').unwrap_or((rest, ""));
        let reply = match sim.authenticate(header(&headers, "authorization").as_deref(), &ids) {
            Err(reply) => {
                sim.record(RecordedRequest {
                    at: Utc::now(),
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    tenant_id: None,
                    client_id: None,
                    status: reply.status,
                    retry_after: None,
                    client_request_id: sent_client_request_id,
                    budget: None,
                    batch_item_id: None,
                    inside_retry_after: false,
                });
                reply
            }
            Ok(caller) if version != "v1.0" && version != "beta" => {
                let reply = graph_error(
                    400,
                    "BadRequest",
                    &format!("Invalid version: {version}"),
                    &ids,
                );
                sim.record(RecordedRequest {
                    at: Utc::now(),
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    tenant_id: Some(caller.tenant_id),
                    client_id: Some(caller.client_id),
                    status: reply.status,
                    retry_after: None,
                    client_request_id: sent_client_request_id,
                    budget: None,
                    batch_item_id: None,
                    inside_retry_after: false,
                });
                reply
            }
            Ok(caller) if graph_path == "$batch" && method == "POST" => {
                let reply = sim.batch(&caller, version, &body, &ids);
                sim.record(RecordedRequest {
                    at: Utc::now(),
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    tenant_id: Some(caller.tenant_id),
                    client_id: Some(caller.client_id),
                    status: reply.status,
                    retry_after: None,
                    client_request_id: sent_client_request_id,
                    budget: None,
                    batch_item_id: None,
                    inside_retry_after: false,
                });
                reply
            }
            Ok(caller) => {
                let json_body = if body.is_empty() {
                    None
                } else {
                    serde_json::from_slice(&body).ok()
                };
                let call = Call {
                    method: &method,
                    version,
                    path: graph_path.trim_end_matches('/'),
                    query: &query,
                    consistency_eventual: header(&headers, "consistencylevel")
                        .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
                    body: json_body,
                    ids: ids.clone(),
                };
                sim.graph(&caller, call, sent_client_request_id, None)
            }
        };
        reply
            .with_header("request-id", ids.request_id.clone())
            .with_header("client-request-id", ids.client_request_id.clone())
            .with_header(
                "x-ms-ags-diagnostic",
                r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"003","RoleInstance":"AM2PEPF0001A3B5"}}"#,
            )
            .with_header("Cache-Control", "no-cache")
            .with_header("Strict-Transport-Security", "max-age=31536000")
    } else if let Some(rest) = path.strip_prefix("/admin/") {
        content_type = "application/json; charset=utf-8";
        crate::admin::handle(&mut sim, &method, rest, &body, &ids)
    } else {
        graph_error(
            404,
            "NotFound",
            "graph-sim serves /graph, /login and /admin.",
            &ids,
        )
    };
    drop(sim);
    into_response(reply, content_type)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn into_response(reply: Reply, content_type: &'static str) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &reply.body {
        Some(body) => {
            let mut response = Response::new(Body::from(body.to_string()));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
