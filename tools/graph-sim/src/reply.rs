//! Responses in Graph's and Entra's shapes: the JSON error envelopes and the headers every
//! Graph response carries.

use chrono::Utc;
use serde_json::{Value, json};

/// The media type Graph answers JSON with; clients must not insist on a bare
/// `application/json`.
pub(crate) const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A response before it becomes HTTP (or a `$batch` item).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub(crate) fn no_content() -> Reply {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in whole seconds, when the reply carries one.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.header("Retry-After").and_then(|v| v.parse().ok())
    }
}

/// The identifiers Graph stamps on a request: its own `request-id` and the caller's
/// `client-request-id` (echoed, or generated when the caller sent none).
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

/// A Graph error: `{"error": {"code", "message", "innerError": {...}}}`.
pub(crate) fn graph_error(status: u16, code: &str, message: &str, ids: &RequestIds) -> Reply {
    Reply::json(
        status,
        json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    // Graph writes this without a zone designator.
                    "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": ids.request_id,
                    "client-request-id": ids.client_request_id,
                }
            }
        }),
    )
}

/// An Entra token endpoint error with an AADSTS code, shaped like the real thing (the code
/// sits both in `error_codes` and at the start of `error_description`).
pub(crate) fn sts_error(
    status: u16,
    error: &str,
    aadsts: u32,
    description: &str,
    ids: &RequestIds,
) -> Reply {
    let now = Utc::now();
    let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{aadsts}: {description} Trace ID: {} Correlation ID: {} Timestamp: {}",
                ids.request_id,
                ids.client_request_id,
                now.format("%Y-%m-%d %H:%M:%S%.3fZ")
            ),
            "error_codes": [aadsts],
            "timestamp": timestamp,
            "trace_id": ids.request_id,
            "correlation_id": ids.client_request_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
        }),
    )
}
