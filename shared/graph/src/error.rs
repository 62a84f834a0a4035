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
            GraphError::NotFound
            | GraphError::SyncStateNotFound
            | GraphError::Unavailable
            | GraphError::BadResponse => ReasonCode::GraphUnavailable,
        }
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
