//! Graph errors, classified by status and Graph error `code` (never by message), each with
//! the reason code a run failure carries.

use std::time::Duration;

use tenantops_core::ReasonCode;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Token acquisition failed; the reason says why (credentials invalid or expired, app or
    /// tenant not found, ...).
    #[error("token request refused ({reason})")]
    Token { reason: ReasonCode },
    /// Throttled for longer than the handback threshold: give the work back to the queue and
    /// resume after `retry_after`.
    #[error("throttled; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    #[error("permission denied")]
    PermissionDenied,
    #[error("not found")]
    NotFound,
    /// A delta link expired (`syncStateNotFound`); a full sync is needed.
    #[error("delta sync state expired")]
    SyncStateNotFound,
    /// 5xx or a transport failure that retries did not cure.
    #[error("Microsoft Graph unavailable")]
    Unavailable,
    /// A 4xx other than 401, 403, 404 and 429: Graph refused the request itself (an
    /// unsupported query option, a malformed body, a conflict). Repeating it cannot help, and
    /// it is not Graph being unavailable. `code` is Graph's error code, sanitized.
    #[error("Microsoft Graph rejected the request ({status} {})", code.as_deref().unwrap_or("no code"))]
    Rejected { status: u16, code: Option<String> },
    /// An answer that does not parse as Graph JSON.
    #[error("unexpected response from Microsoft Graph")]
    BadResponse,
    #[error("object type `{0}` is not in the contract registry")]
    UnsupportedType(String),
}

impl GraphError {
    /// The reason code a run failure for this error carries.
    pub fn reason(&self) -> ReasonCode {
        match self {
            GraphError::Token { reason } => *reason,
            GraphError::Throttled { .. } => ReasonCode::GraphThrottled,
            GraphError::PermissionDenied => ReasonCode::GraphPermissionDenied,
            GraphError::UnsupportedType(_) => ReasonCode::GraphUnsupportedType,
            GraphError::Rejected { .. } => ReasonCode::GraphRequestRejected,
            GraphError::NotFound
            | GraphError::SyncStateNotFound
            | GraphError::Unavailable
            | GraphError::BadResponse => ReasonCode::GraphUnavailable,
        }
    }
}

impl GraphError {
    /// Graph's refusal of a request with `status` and the error body's `code`: the code is
    /// kept only as a short identifier (Graph's codes are words like `BadRequest` or
    /// `Request_UnsupportedQuery`), so nothing else of the body (which may echo the request)
    /// travels with it.
    pub fn rejected(status: u16, code: Option<&str>) -> GraphError {
        let code = code
            .filter(|c| {
                !c.is_empty()
                    && c.len() <= 64
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
            })
            .map(str::to_owned);
        GraphError::Rejected { status, code }
    }

    /// A run failure for this error: the reason's own message, and for a rejected request
    /// Graph's status and error code after it.
    pub fn failure(&self) -> tenantops_core::Failure {
        let mut failure = tenantops_core::Failure::of(self.reason());
        if let GraphError::Rejected { status, code } = self {
            failure.message = format!(
                "{} (HTTP {status}, {})",
                failure.message,
                code.as_deref().unwrap_or("no error code")
            );
        }
        failure
    }
}

/// Maps an STS (`login.microsoftonline.com`) error body to a reason, by its AADSTS code.
pub fn token_reason(body: &serde_json::Value) -> ReasonCode {
    let codes: Vec<i64> = body
        .get("error_codes")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    let has = |c: i64| codes.contains(&c);
    if has(7000215) {
        ReasonCode::ProviderCredentialsInvalid
    } else if has(7000222) {
        ReasonCode::ProviderCredentialsExpired
    } else if has(700016) {
        ReasonCode::ProviderAppNotFound
    } else if has(90002) {
        ReasonCode::ProviderTenantNotFound
    } else if has(65001) {
        ReasonCode::ProviderPermissionDenied
    } else {
        ReasonCode::ProviderCredentialsInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rejected_request_keeps_only_a_clean_graph_error_code() {
        let e = GraphError::rejected(400, Some("Request_UnsupportedQuery"));
        assert_eq!(e.reason(), ReasonCode::GraphRequestRejected);
        assert!(!e.reason().retryable());
        assert!(
            e.failure()
                .message
                .ends_with("(HTTP 400, Request_UnsupportedQuery)")
        );
        for dirty in ["", "a b", "<script>", "x=secret&y", &"A".repeat(65)] {
            let GraphError::Rejected { code, .. } = GraphError::rejected(400, Some(dirty)) else {
                unreachable!()
            };
            assert_eq!(code, None, "{dirty:?} is not kept");
        }
    }

    #[test]
    fn sts_errors_map_by_their_aadsts_code() {
        for (code, reason) in [
            (7000215, ReasonCode::ProviderCredentialsInvalid),
            (7000222, ReasonCode::ProviderCredentialsExpired),
            (700016, ReasonCode::ProviderAppNotFound),
            (90002, ReasonCode::ProviderTenantNotFound),
        ] {
            let body = json!({"error": "invalid_client", "error_description": format!("AADSTS{code}: ..."), "error_codes": [code]});
            assert_eq!(token_reason(&body), reason);
        }
    }
}
