//! Reason codes: the stable, dotted codes that run failures carry. An enum, so an unknown code
//! cannot be constructed; each code has a category, a retryable flag and a safe message.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    #[serde(rename = "dispatch.failed")]
    DispatchFailed,
    #[serde(rename = "run.stale")]
    RunStale,
    #[serde(rename = "worker.exhausted")]
    WorkerExhausted,
    #[serde(rename = "graph.throttled")]
    GraphThrottled,
    #[serde(rename = "graph.permission_denied")]
    GraphPermissionDenied,
    #[serde(rename = "graph.unsupported_type")]
    GraphUnsupportedType,
    #[serde(rename = "graph.unavailable")]
    GraphUnavailable,
    #[serde(rename = "provider.credentials_invalid")]
    ProviderCredentialsInvalid,
    #[serde(rename = "provider.credentials_expired")]
    ProviderCredentialsExpired,
    #[serde(rename = "provider.app_not_found")]
    ProviderAppNotFound,
    #[serde(rename = "provider.tenant_not_found")]
    ProviderTenantNotFound,
    #[serde(rename = "provider.permission_denied")]
    ProviderPermissionDenied,
    #[serde(rename = "restore.mapping_unresolved")]
    RestoreMappingUnresolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCategory {
    Platform,
    Graph,
    Provider,
    Restore,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 13] = [
        ReasonCode::DispatchFailed,
        ReasonCode::RunStale,
        ReasonCode::WorkerExhausted,
        ReasonCode::GraphThrottled,
        ReasonCode::GraphPermissionDenied,
        ReasonCode::GraphUnsupportedType,
        ReasonCode::GraphUnavailable,
        ReasonCode::ProviderCredentialsInvalid,
        ReasonCode::ProviderCredentialsExpired,
        ReasonCode::ProviderAppNotFound,
        ReasonCode::ProviderTenantNotFound,
        ReasonCode::ProviderPermissionDenied,
        ReasonCode::RestoreMappingUnresolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::DispatchFailed => "dispatch.failed",
            ReasonCode::RunStale => "run.stale",
            ReasonCode::WorkerExhausted => "worker.exhausted",
            ReasonCode::GraphThrottled => "graph.throttled",
            ReasonCode::GraphPermissionDenied => "graph.permission_denied",
            ReasonCode::GraphUnsupportedType => "graph.unsupported_type",
            ReasonCode::GraphUnavailable => "graph.unavailable",
            ReasonCode::ProviderCredentialsInvalid => "provider.credentials_invalid",
            ReasonCode::ProviderCredentialsExpired => "provider.credentials_expired",
            ReasonCode::ProviderAppNotFound => "provider.app_not_found",
            ReasonCode::ProviderTenantNotFound => "provider.tenant_not_found",
            ReasonCode::ProviderPermissionDenied => "provider.permission_denied",
            ReasonCode::RestoreMappingUnresolved => "restore.mapping_unresolved",
        }
    }

    pub fn category(self) -> ReasonCategory {
        match self {
            ReasonCode::DispatchFailed | ReasonCode::RunStale | ReasonCode::WorkerExhausted => {
                ReasonCategory::Platform
            }
            ReasonCode::GraphThrottled
            | ReasonCode::GraphPermissionDenied
            | ReasonCode::GraphUnsupportedType
            | ReasonCode::GraphUnavailable => ReasonCategory::Graph,
            ReasonCode::ProviderCredentialsInvalid
            | ReasonCode::ProviderCredentialsExpired
            | ReasonCode::ProviderAppNotFound
            | ReasonCode::ProviderTenantNotFound
            | ReasonCode::ProviderPermissionDenied => ReasonCategory::Provider,
            ReasonCode::RestoreMappingUnresolved => ReasonCategory::Restore,
        }
    }

    /// Whether starting the same run again, unchanged, may succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ReasonCode::DispatchFailed
                | ReasonCode::RunStale
                | ReasonCode::WorkerExhausted
                | ReasonCode::GraphThrottled
                | ReasonCode::GraphUnavailable
        )
    }

    /// A message safe to show anyone who may see the run: no ids, secrets or payloads.
    pub fn message(self) -> &'static str {
        match self {
            ReasonCode::DispatchFailed => {
                "The run could not be handed to a worker. Start it again."
            }
            ReasonCode::RunStale => "The run stopped making progress and was ended.",
            ReasonCode::WorkerExhausted => "Workers failed to process the run repeatedly.",
            ReasonCode::GraphThrottled => "Microsoft Graph throttled the requests for too long.",
            ReasonCode::GraphPermissionDenied => {
                "The app registration lacks a Microsoft Graph permission."
            }
            ReasonCode::GraphUnsupportedType => "This object type is not supported.",
            ReasonCode::GraphUnavailable => "Microsoft Graph was unavailable.",
            ReasonCode::ProviderCredentialsInvalid => "The app registration's secret is invalid.",
            ReasonCode::ProviderCredentialsExpired => "The app registration's secret has expired.",
            ReasonCode::ProviderAppNotFound => "The app registration was not found in the tenant.",
            ReasonCode::ProviderTenantNotFound => "The Entra tenant was not found.",
            ReasonCode::ProviderPermissionDenied => {
                "The app registration has not been granted admin consent."
            }
            ReasonCode::RestoreMappingUnresolved => {
                "An assignment target could not be mapped in the destination tenant."
            }
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str() {
        for c in ReasonCode::ALL {
            let json = serde_json::to_string(&c).expect("serializes");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            let back: ReasonCode = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, c);
        }
        assert!(serde_json::from_str::<ReasonCode>("\"made.up\"").is_err());
    }
}
