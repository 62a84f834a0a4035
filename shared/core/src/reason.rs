//! The reason-code taxonomy: every stable code that a run failure, a problem response or an
//! onboarding block carries. An enum, so an unknown code cannot be constructed; each code has
//! a category, whether it blocks onboarding, whether retrying may help, and a message that is
//! safe to show anyone who may see it (no ids, secrets or payloads). Pinned by
//! `golden/reasons.txt` and documented in the README.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCategory {
    /// The request itself is wrong.
    Request,
    /// Who may do what.
    Access,
    /// Workspaces, members, tenants and connections.
    Administration,
    /// The run machinery (dispatch, workers, leases).
    Platform,
    /// Microsoft Graph answered with a failure.
    Graph,
    /// The customer's app registration or Entra tenant.
    Provider,
    Restore,
    /// A step of tenant onboarding that is not done yet.
    Onboarding,
}

macro_rules! reasons {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal, $category:ident, retryable: $retry:literal,
            blocks_onboarding: $blocks:literal, $message:literal;
    )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($(#[$doc])* $variant,)*
        }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $code,)* }
            }

            pub fn category(self) -> ReasonCategory {
                match self { $(ReasonCode::$variant => ReasonCategory::$category,)* }
            }

            /// Whether doing the same thing again, unchanged, may succeed.
            pub fn retryable(self) -> bool {
                match self { $(ReasonCode::$variant => $retry,)* }
            }

            /// Whether this code, as the outcome of a connection check or an onboarding step,
            /// keeps a tenant from being onboarded.
            pub fn blocks_onboarding(self) -> bool {
                match self { $(ReasonCode::$variant => $blocks,)* }
            }

            /// A message safe to show anyone who may see the failure.
            pub fn message(self) -> &'static str {
                match self { $(ReasonCode::$variant => $message,)* }
            }
        }
    };
}

reasons! {
    RequestMalformedJson = "request.malformed_json", Request, retryable: false, blocks_onboarding: false,
        "The request body is not valid JSON.";
    RequestInvalid = "request.invalid", Request, retryable: false, blocks_onboarding: false,
        "The request body does not have the expected fields and types.";
    RequestTooLarge = "request.too_large", Request, retryable: false, blocks_onboarding: false,
        "The request body is too large.";
    RequestUnsupportedMediaType = "request.unsupported_media_type", Request, retryable: false, blocks_onboarding: false,
        "The request body must be application/json.";
    QueryInvalid = "query.invalid", Request, retryable: false, blocks_onboarding: false,
        "A query parameter is unknown, repeated or malformed.";
    CursorInvalid = "cursor.invalid", Request, retryable: false, blocks_onboarding: false,
        "The cursor was not issued for this query.";
    IdempotencyKeyInvalid = "idempotency_key.invalid", Request, retryable: false, blocks_onboarding: false,
        "Idempotency-Key must be 1 to 255 visible ASCII characters.";
    IdempotencyKeyReused = "idempotency_key.reused", Request, retryable: false, blocks_onboarding: false,
        "This Idempotency-Key was already used for a different request.";
    OperationUnknownType = "operation.unknown_type", Request, retryable: false, blocks_onboarding: false,
        "The operation type is not known.";
    OperationInvalidParams = "operation.invalid_params", Request, retryable: false, blocks_onboarding: false,
        "The operation's parameters are invalid.";
    OperationNotStartable = "operation.not_startable", Request, retryable: false, blocks_onboarding: false,
        "This operation type is not started through this route.";
    RouteNotFound = "route.not_found", Request, retryable: false, blocks_onboarding: false,
        "There is no such route.";
    MethodNotAllowed = "method.not_allowed", Request, retryable: false, blocks_onboarding: false,
        "The route does not accept this method.";
    AuthUnauthenticated = "auth.unauthenticated", Access, retryable: false, blocks_onboarding: false,
        "The request carries no verified caller.";
    AuthForbidden = "auth.forbidden", Access, retryable: false, blocks_onboarding: false,
        "Your role does not allow this.";
    RunNotFound = "run.not_found", Access, retryable: false, blocks_onboarding: false,
        "No run with this id is visible to you.";
    RunAlreadyCompleted = "run.already_completed", Request, retryable: false, blocks_onboarding: false,
        "The run has already completed; only a queued or running run can be cancelled.";
    WorkspaceNotFound = "workspace.not_found", Access, retryable: false, blocks_onboarding: false,
        "No workspace with this id is visible to you.";
    TenantNotFound = "tenant.not_found", Access, retryable: false, blocks_onboarding: false,
        "No tenant with this id exists in this workspace.";
    MemberNotFound = "member.not_found", Administration, retryable: false, blocks_onboarding: false,
        "This user is not a member of the workspace.";
    MemberLastOwner = "member.last_owner", Administration, retryable: false, blocks_onboarding: false,
        "A workspace keeps at least one owner.";
    MemberOwnerRequired = "member.owner_required", Administration, retryable: false, blocks_onboarding: false,
        "Only owners add, change or remove owners.";
    MemberSelfPromotion = "member.self_promotion", Administration, retryable: false, blocks_onboarding: false,
        "Members cannot raise their own role.";
    TenantArchived = "tenant.archived", Administration, retryable: false, blocks_onboarding: true,
        "The tenant is archived and takes no new runs.";
    TenantAlreadyClaimed = "tenant.already_claimed", Administration, retryable: false, blocks_onboarding: true,
        "This Entra tenant is already managed in a workspace.";
    ConnectionNotFound = "connection.not_found", Administration, retryable: false, blocks_onboarding: true,
        "The tenant has no provider connection.";
    ConcurrentChange = "conflict.concurrent_change", Administration, retryable: true, blocks_onboarding: false,
        "Someone changed this at the same time. Read it again and retry.";
    Internal = "internal", Platform, retryable: true, blocks_onboarding: false,
        "The request could not be completed.";
    DispatchFailed = "dispatch.failed", Platform, retryable: true, blocks_onboarding: false,
        "The run could not be handed to a worker. Start it again.";
    RunStale = "run.stale", Platform, retryable: true, blocks_onboarding: false,
        "The run stopped making progress and was ended.";
    WorkerExhausted = "worker.exhausted", Platform, retryable: true, blocks_onboarding: false,
        "Workers failed to process the run repeatedly.";
    WorkerUnsupportedOperation = "worker.unsupported_operation", Platform, retryable: false, blocks_onboarding: false,
        "This worker version cannot run this operation type yet.";
    GraphThrottled = "graph.throttled", Graph, retryable: true, blocks_onboarding: false,
        "Microsoft Graph throttled the requests for too long.";
    GraphPermissionDenied = "graph.permission_denied", Graph, retryable: false, blocks_onboarding: true,
        "The app registration lacks a Microsoft Graph permission.";
    GraphUnsupportedType = "graph.unsupported_type", Graph, retryable: false, blocks_onboarding: false,
        "This object type is not supported.";
    GraphUnavailable = "graph.unavailable", Graph, retryable: true, blocks_onboarding: false,
        "Microsoft Graph was unavailable.";
    GraphRequestRejected = "graph.request_rejected", Graph, retryable: false, blocks_onboarding: false,
        "Microsoft Graph rejected the request as invalid; repeating it will not help.";
    ProviderCredentialsInvalid = "provider.credentials_invalid", Provider, retryable: false, blocks_onboarding: true,
        "The app registration's secret is invalid.";
    ProviderCredentialsExpired = "provider.credentials_expired", Provider, retryable: false, blocks_onboarding: true,
        "The app registration's secret has expired.";
    ProviderAppNotFound = "provider.app_not_found", Provider, retryable: false, blocks_onboarding: true,
        "The app registration was not found in the tenant.";
    ProviderTenantNotFound = "provider.tenant_not_found", Provider, retryable: false, blocks_onboarding: true,
        "The Entra tenant was not found.";
    ProviderPermissionDenied = "provider.permission_denied", Provider, retryable: false, blocks_onboarding: true,
        "The app registration has not been granted admin consent.";
    ScheduleInvalid = "schedule.invalid", Request, retryable: false, blocks_onboarding: false,
        "The schedule does not have the expected fields and types.";
    ScheduleInvalidCadence = "schedule.invalid_cadence", Request, retryable: false, blocks_onboarding: false,
        "The schedule's cron expression or frequency is invalid.";
    ScheduleUnknownTimezone = "schedule.unknown_timezone", Request, retryable: false, blocks_onboarding: false,
        "The schedule's timezone is not an IANA timezone name.";
    ScheduleUnknownType = "schedule.unknown_type", Request, retryable: false, blocks_onboarding: false,
        "The schedule names an object type that cannot be backed up.";
    ScheduleInvalidRetention = "schedule.invalid_retention", Request, retryable: false, blocks_onboarding: false,
        "The schedule's retention is missing or out of range.";
    ScheduleTooFrequent = "schedule.too_frequent", Request, retryable: false, blocks_onboarding: false,
        "The schedule's cadence fires more often than the configured minimum interval allows.";
    ScheduleNotFound = "schedule.not_found", Access, retryable: false, blocks_onboarding: false,
        "No backup schedule with this id exists for this tenant.";
    ScheduleRetryRunInvalid = "schedule.retry_run_invalid", Request, retryable: false, blocks_onboarding: false,
        "The run to retry is not a run of this schedule.";
    ScheduleRetryNotAllowed = "schedule.retry_not_allowed", Request, retryable: false, blocks_onboarding: false,
        "Only a failed or partially succeeded run can be retried.";
    QuotaExceeded = "quota.exceeded", Request, retryable: true, blocks_onboarding: false,
        "The tenant's quota of manual backup starts for this window is used up. Retry after the time given.";
    ScheduleSlotMissed = "schedule.slot_missed", Platform, retryable: false, blocks_onboarding: false,
        "The scheduler reached this slot after its grace window; it was skipped.";
    RestoreMappingUnresolved = "restore.mapping_unresolved", Restore, retryable: false, blocks_onboarding: false,
        "An assignment target could not be mapped in the destination tenant.";
    RestoreNotFound = "restore.not_found", Access, retryable: false, blocks_onboarding: false,
        "No restore with this id exists for this tenant.";
    RestoreBackupSetNotFound = "restore.backup_set_not_found", Access, retryable: false, blocks_onboarding: false,
        "No backup set with this id exists for this tenant.";
    RestoreItemsInvalid = "restore.items_invalid", Request, retryable: false, blocks_onboarding: false,
        "The selected items are not objects of the backup set.";
    RestoreMappingInvalid = "restore.mapping_invalid", Request, retryable: false, blocks_onboarding: false,
        "The mapping does not have the expected shape.";
    RestoreConfirmationInvalid = "restore.confirmation_invalid", Request, retryable: false, blocks_onboarding: false,
        "The confirmation token is not this preview's.";
    RestorePreviewStale = "restore.preview_stale", Restore, retryable: false, blocks_onboarding: false,
        "The preview is too old to execute. Compute a new preview.";
    RestoreInventoryChanged = "restore.inventory_changed", Restore, retryable: false, blocks_onboarding: false,
        "The tenant's inventory changed since the preview. Compute a new preview.";
    RestoreHighRiskDisabled = "restore.high_risk_disabled", Restore, retryable: false, blocks_onboarding: false,
        "High-risk object types are preview-only in this workspace.";
    RestoreTypeNotRestorable = "restore.type_not_restorable", Restore, retryable: false, blocks_onboarding: false,
        "This object type cannot be restored.";
    RestoreAlreadyExecuted = "restore.already_executed", Restore, retryable: false, blocks_onboarding: false,
        "This preview was already executed. Compute a new preview.";
    RestoreSnapshotMissing = "restore.snapshot_missing", Restore, retryable: false, blocks_onboarding: false,
        "A snapshot of the backup set could not be read.";
    RestorePreviewPending = "restore.preview_pending", Restore, retryable: true, blocks_onboarding: false,
        "The preview is still being computed. Poll its run, then confirm.";
    RestoreTooManyItems = "restore.too_many_items", Request, retryable: false, blocks_onboarding: false,
        "At most 500 items may be selected by name. Leave `items` out to preview the whole backup set.";
    RestoreMappingAmbiguous = "restore.mapping_ambiguous", Restore, retryable: false, blocks_onboarding: false,
        "Several objects in the destination tenant have the source target's display name. Map it explicitly or drop it.";
    BackupSetNotFound = "backup.set_not_found", Access, retryable: false, blocks_onboarding: false,
        "No backup set with this id exists for this tenant.";
    BackupStorageFailed = "backup.storage_failed", Platform, retryable: true, blocks_onboarding: false,
        "The backup could not be written to snapshot storage. Run it again.";
    DriftBaselineMissing = "drift.baseline_missing", Request, retryable: false, blocks_onboarding: false,
        "The drift check has no baseline: the tenant has no complete backup set, or the named set does not exist.";
    DriftReportNotFound = "drift.report_not_found", Access, retryable: false, blocks_onboarding: false,
        "The drift report does not exist.";
    DriftAlreadyAccepted = "drift.already_accepted", Request, retryable: false, blocks_onboarding: false,
        "The drift report was accepted already: its backup run is linked from the report.";
    BatchNotFound = "batch.not_found", Access, retryable: false, blocks_onboarding: false,
        "The batch does not exist.";
    BatchInvalidTargets = "batch.invalid_targets", Request, retryable: false, blocks_onboarding: false,
        "The batch's tenants must be \"all\", a list of the workspace's tenant ids or a tag, with exclusions among them.";
    BatchNoTenants = "batch.no_tenants", Request, retryable: false, blocks_onboarding: false,
        "The batch's targets name no active tenant.";
    BatchNothingToRetry = "batch.nothing_to_retry", Request, retryable: false, blocks_onboarding: false,
        "The batch has no failed or refused child in an active tenant to retry.";
    BatchNotConfirmable = "batch.not_confirmable", Request, retryable: false, blocks_onboarding: false,
        "Only a restore batch is confirmed: other batches start at once.";
    BatchConfirmationInvalid = "batch.confirmation_invalid", Request, retryable: false, blocks_onboarding: false,
        "The confirmation token is not the one this restore batch was answered with.";
    BatchPreviewPending = "batch.preview_pending", Request, retryable: true, blocks_onboarding: false,
        "The restore batch's previews are not all finished yet: execute it once its status is awaiting_confirmation.";
    BatchCancelled = "batch.cancelled", Request, retryable: false, blocks_onboarding: false,
        "The batch was cancelled: it cannot be executed.";
    BatchNothingToExecute = "batch.nothing_to_execute", Request, retryable: false, blocks_onboarding: false,
        "No child of the restore batch has a restore to execute: every preview was refused.";
    BatchNotRetryable = "batch.not_retryable", Request, retryable: false, blocks_onboarding: false,
        "A restore batch's executions are not retried: start a new restore batch, whose previews are confirmed again.";
    WebhookNotFound = "webhook.not_found", Access, retryable: false, blocks_onboarding: false,
        "No webhook subscription with this id exists in this workspace.";
    WebhookUrlInvalid = "webhook.url_invalid", Request, retryable: false, blocks_onboarding: false,
        "The webhook URL must be an absolute https URL of a host, without credentials or fragment, at most 2048 characters.";
    WebhookUrlRefused = "webhook.url_refused", Request, retryable: false, blocks_onboarding: false,
        "The webhook URL's host is, or resolves to, a private, loopback, link-local or otherwise internal address.";
    OnboardingConnectionMissing = "onboarding.connection_missing", Onboarding, retryable: false, blocks_onboarding: true,
        "Add the tenant's app registration (provider connection).";
    OnboardingVerificationRequired = "onboarding.verification_required", Onboarding, retryable: false, blocks_onboarding: true,
        "Verify the provider connection.";
    OnboardingVerificationRunning = "onboarding.verification_running", Onboarding, retryable: true, blocks_onboarding: true,
        "The provider connection is being verified.";
    OnboardingInventoryRequired = "onboarding.inventory_required", Onboarding, retryable: false, blocks_onboarding: true,
        "Run the first inventory sync.";
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code `{0}`")]
pub struct UnknownReasonCode(pub String);

impl FromStr for ReasonCode {
    type Err = UnknownReasonCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownReasonCode(s.chars().take(64).collect()))
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The taxonomy rendered as a Markdown table; pinned by the golden test and the README.
pub fn registry_table() -> String {
    let mut out = String::from(
        "| code | category | blocks onboarding | retryable | message |\n|---|---|---|---|---|\n",
    );
    for c in ReasonCode::ALL {
        let category = serde_json::to_value(c.category())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let yes = |b: bool| if b { "yes" } else { "no" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            c.as_str(),
            category,
            yes(c.blocks_onboarding()),
            yes(c.retryable()),
            c.message()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_taxonomy_matches_the_golden_file() {
        crate::check_golden("reasons.md", &registry_table());
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for c in ReasonCode::ALL {
            let json = serde_json::to_string(c).expect("serializes");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            let back: ReasonCode = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, *c);
        }
        assert!(serde_json::from_str::<ReasonCode>("\"made.up\"").is_err());
    }

    #[test]
    fn codes_are_unique_dotted_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for c in ReasonCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            let s = c.as_str();
            assert!(s == "internal" || s.contains('.'), "{s} is not dotted");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            );
        }
    }
}
