//! The API's one error type. Every failure a route can meet becomes one of these, and each
//! maps to a status and a stable problem code exactly once, here.

use aws_lambda_events::http::{HeaderName, HeaderValue, header};
use tenantops_aws::{Rejection, SecretsError, SnapshotError, StoreError, WriteError};
use tenantops_core::membership::MembershipError;
use tenantops_core::{Capability, OperationType, ReasonCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Run,
    Workspace,
    Tenant,
    Route,
    Member,
    Connection,
    Schedule,
    BackupSet,
    DriftReport,
    Batch,
    Webhook,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request carries no verified caller")]
    Unauthenticated,
    #[error("{0:?} not found")]
    NotFound(Resource),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the caller's role lacks {0}")]
    Forbidden(Capability),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body is invalid: {0}")]
    InvalidBody(String),
    #[error("unknown operation type `{0}`")]
    UnknownOperationType(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0} runs are not started through this route")]
    NotStartableHere(OperationType),
    #[error("the body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the cursor is not one this API issued for this query")]
    InvalidCursor,
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("the tenant is archived")]
    TenantArchived,
    #[error("membership change refused: {0}")]
    Membership(MembershipError),
    #[error("this Entra tenant is already managed in a workspace")]
    TenantAlreadyClaimed,
    #[error("the item changed concurrently")]
    ConcurrentChange,
    #[error("invalid schedule: {0}")]
    Schedule(tenantops_core::schedule::ScheduleError),
    #[error("the run to retry is not a run of this schedule")]
    RetryRunInvalid,
    #[error("only a failed or partially succeeded run can be retried")]
    RetryNotAllowed,
    /// A cancel of a run that completed otherwise (`run.already_completed`).
    #[error("the run cannot be cancelled: {0}")]
    NotCancellable(ReasonCode),
    /// The tenant's start quota for these runs is used up until its window ends.
    #[error("the tenant's start quota is used up; retry after {retry_after_secs} s")]
    QuotaExceeded { retry_after_secs: u64 },
    /// A restore refused with its own reason code (see [`ApiError::status`] for the mapping).
    #[error("restore refused: {0}")]
    Restore(ReasonCode),
    #[error("the drift report was accepted already")]
    DriftAlreadyAccepted,
    /// A batch's `tenants` or `exclude` that is not one of its forms (`batch.invalid_targets`).
    #[error("{0}")]
    BatchTargets(String),
    /// A batch refused with its own reason code (`batch.no_tenants`).
    #[error("batch refused: {0}")]
    Batch(ReasonCode),
    /// A webhook URL refused with its reason code (`webhook.url_invalid`, `url_refused`).
    #[error("{1}")]
    Webhook(ReasonCode, String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// An internal error that has no source error, only an explanation for the log.
    pub fn internal_message(what: &'static str) -> Self {
        ApiError::Internal(what.into())
    }

    /// A refused conditional write as the API's answer; `needed` is the capability the
    /// write's member guard asked for.
    pub fn rejection(r: Rejection, needed: Capability) -> Self {
        match r {
            Rejection::NotMember => ApiError::NotFound(Resource::Workspace),
            Rejection::MissingCapability(_) => ApiError::Forbidden(needed),
            Rejection::TenantNotFound => ApiError::NotFound(Resource::Tenant),
            Rejection::TenantArchived => ApiError::TenantArchived,
            Rejection::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            Rejection::AlreadyClaimed => ApiError::TenantAlreadyClaimed,
            Rejection::Conflict => ApiError::ConcurrentChange,
            Rejection::LastOwner => ApiError::Membership(MembershipError::LastOwner),
            // Only a route that passed preconditions knows what each one means.
            Rejection::Precondition(_) => {
                ApiError::internal_message("a start precondition failed outside its route")
            }
            Rejection::QuotaExceeded { retry_after_secs } => {
                ApiError::QuotaExceeded { retry_after_secs }
            }
        }
    }

    /// A guarded write's failure as the API's answer; `needed` is the capability its member
    /// guard asked for.
    pub fn write(e: WriteError, needed: Capability) -> Self {
        match e {
            WriteError::Rejected(r) => ApiError::rejection(r, needed),
            WriteError::Store(e) => e.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthenticated => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Forbidden(_) => 403,
            ApiError::MalformedJson(_)
            | ApiError::InvalidQuery(_)
            | ApiError::InvalidCursor
            | ApiError::InvalidIdempotencyKey => 400,
            ApiError::InvalidBody(_)
            | ApiError::UnknownOperationType(_)
            | ApiError::InvalidParams(_)
            | ApiError::NotStartableHere(_)
            | ApiError::BatchTargets(_)
            | ApiError::Batch(ReasonCode::BatchNoTenants)
            | ApiError::Webhook(..)
            | ApiError::IdempotencyKeyReused => 422,
            // The batch's state refuses it (nothing failed to retry, previews pending, a token
            // that is not this batch's: 409, as for a restore's).
            ApiError::Batch(_) => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Schedule(_) => 400,
            // The body is well formed; the run it names is not one of this schedule's.
            ApiError::RetryRunInvalid => 409,
            ApiError::RetryNotAllowed | ApiError::NotCancellable(_) => 409,
            ApiError::DriftAlreadyAccepted => 409,
            ApiError::UnsupportedMediaType => 415,
            ApiError::TenantArchived
            | ApiError::TenantAlreadyClaimed
            | ApiError::ConcurrentChange
            | ApiError::Membership(MembershipError::LastOwner) => 409,
            ApiError::Membership(MembershipError::NotMember) => 404,
            ApiError::Membership(_) => 403,
            ApiError::QuotaExceeded { .. } => 429,
            ApiError::Restore(code) => match code {
                ReasonCode::RestoreNotFound | ReasonCode::RestoreBackupSetNotFound => 404,
                ReasonCode::RestoreTooManyItems | ReasonCode::RestoreMappingInvalid => 400,
                // Well-formed requests the state refuses: items the set does not hold, a
                // token that is not this preview's (409, as the document says).
                _ => 409,
            },
            ApiError::Internal(_) => 500,
        }
    }

    /// The stable problem code clients branch on, from the reason-code taxonomy.
    pub fn code(&self) -> ReasonCode {
        use ReasonCode as R;
        match self {
            ApiError::Unauthenticated => R::AuthUnauthenticated,
            ApiError::NotFound(Resource::Run) => R::RunNotFound,
            ApiError::NotFound(Resource::Workspace) => R::WorkspaceNotFound,
            ApiError::NotFound(Resource::Tenant) => R::TenantNotFound,
            ApiError::NotFound(Resource::Route) => R::RouteNotFound,
            ApiError::NotFound(Resource::Member) => R::MemberNotFound,
            ApiError::NotFound(Resource::Connection) => R::ConnectionNotFound,
            ApiError::NotFound(Resource::Schedule) => R::ScheduleNotFound,
            ApiError::NotFound(Resource::BackupSet) => R::BackupSetNotFound,
            ApiError::NotFound(Resource::DriftReport) => R::DriftReportNotFound,
            ApiError::NotFound(Resource::Batch) => R::BatchNotFound,
            ApiError::NotFound(Resource::Webhook) => R::WebhookNotFound,
            ApiError::Webhook(code, _) => *code,
            ApiError::BatchTargets(_) => R::BatchInvalidTargets,
            ApiError::Batch(code) => *code,
            ApiError::Schedule(e) => e.code(),
            ApiError::RetryRunInvalid => R::ScheduleRetryRunInvalid,
            ApiError::RetryNotAllowed => R::ScheduleRetryNotAllowed,
            ApiError::DriftAlreadyAccepted => R::DriftAlreadyAccepted,
            ApiError::NotCancellable(code) => *code,
            ApiError::MethodNotAllowed => R::MethodNotAllowed,
            ApiError::Forbidden(_) => R::AuthForbidden,
            ApiError::MalformedJson(_) => R::RequestMalformedJson,
            ApiError::InvalidBody(_) => R::RequestInvalid,
            ApiError::UnknownOperationType(_) => R::OperationUnknownType,
            ApiError::InvalidParams(_) => R::OperationInvalidParams,
            ApiError::NotStartableHere(_) => R::OperationNotStartable,
            ApiError::PayloadTooLarge { .. } => R::RequestTooLarge,
            ApiError::UnsupportedMediaType => R::RequestUnsupportedMediaType,
            ApiError::InvalidQuery(_) => R::QueryInvalid,
            ApiError::InvalidCursor => R::CursorInvalid,
            ApiError::InvalidIdempotencyKey => R::IdempotencyKeyInvalid,
            ApiError::IdempotencyKeyReused => R::IdempotencyKeyReused,
            ApiError::TenantArchived => R::TenantArchived,
            ApiError::Membership(MembershipError::Forbidden) => R::AuthForbidden,
            ApiError::Membership(MembershipError::OwnerRequired) => R::MemberOwnerRequired,
            ApiError::Membership(MembershipError::SelfPromotion) => R::MemberSelfPromotion,
            ApiError::Membership(MembershipError::LastOwner) => R::MemberLastOwner,
            ApiError::Membership(MembershipError::NotMember) => R::MemberNotFound,
            ApiError::TenantAlreadyClaimed => R::TenantAlreadyClaimed,
            ApiError::ConcurrentChange => R::ConcurrentChange,
            ApiError::Restore(code) => *code,
            ApiError::QuotaExceeded { .. } => R::QuotaExceeded,
            ApiError::Internal(_) => R::Internal,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "Authentication required",
            ApiError::NotFound(Resource::Run) => "Run not found",
            ApiError::NotFound(Resource::Workspace) => "Workspace not found",
            ApiError::NotFound(Resource::Tenant) => "Tenant not found",
            ApiError::NotFound(Resource::Route) => "No such route",
            ApiError::NotFound(Resource::Member) => "Member not found",
            ApiError::NotFound(Resource::Connection) => "Provider connection not found",
            ApiError::NotFound(Resource::Schedule) => "Backup schedule not found",
            ApiError::NotFound(Resource::BackupSet) => "Backup set not found",
            ApiError::NotFound(Resource::DriftReport) => "Drift report not found",
            ApiError::NotFound(Resource::Batch) => "Batch not found",
            ApiError::NotFound(Resource::Webhook) => "Webhook not found",
            ApiError::Webhook(ReasonCode::WebhookUrlRefused, _) => "Webhook URL refused",
            ApiError::Webhook(..) => "Invalid webhook URL",
            ApiError::BatchTargets(_) => "Invalid batch targets",
            ApiError::Batch(_) => "Batch refused",
            ApiError::Schedule(_) => "Invalid backup schedule",
            ApiError::RetryRunInvalid => "Not a run of this schedule",
            ApiError::RetryNotAllowed => "Run not retryable",
            ApiError::DriftAlreadyAccepted => "Drift report already accepted",
            ApiError::NotCancellable(_) => "Run not cancellable",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::Forbidden(_) => "Not allowed",
            ApiError::MalformedJson(_) => "Malformed JSON",
            ApiError::InvalidBody(_) => "Invalid request body",
            ApiError::UnknownOperationType(_) => "Unknown operation type",
            ApiError::InvalidParams(_) => "Invalid operation parameters",
            ApiError::NotStartableHere(_) => "Operation not startable here",
            ApiError::PayloadTooLarge { .. } => "Request body too large",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::InvalidQuery(_) => "Invalid query",
            ApiError::InvalidCursor => "Invalid cursor",
            ApiError::InvalidIdempotencyKey => "Invalid Idempotency-Key",
            ApiError::IdempotencyKeyReused => "Idempotency-Key reused",
            ApiError::TenantArchived => "Tenant archived",
            ApiError::Membership(MembershipError::NotMember) => "Member not found",
            ApiError::Membership(MembershipError::LastOwner) => "Last owner",
            ApiError::Membership(_) => "Membership change not allowed",
            ApiError::TenantAlreadyClaimed => "Tenant already managed",
            ApiError::ConcurrentChange => "Concurrent change",
            ApiError::Restore(_) => "Restore refused",
            ApiError::QuotaExceeded { .. } => "Quota exceeded",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// What the client reads. 5xx details are generic; the full chain goes to the log.
    pub fn detail(&self) -> String {
        match self {
            ApiError::NotFound(Resource::Run) => {
                "No run with this id is visible to you.".to_owned()
            }
            ApiError::NotFound(Resource::Workspace) => {
                "No workspace with this id is visible to you.".to_owned()
            }
            ApiError::NotFound(Resource::Tenant) => {
                "No tenant with this id exists in this workspace.".to_owned()
            }
            ApiError::Forbidden(cap) => format!("Your role does not grant `{cap}`."),
            ApiError::Internal(_) => "The request could not be completed.".to_owned(),
            ApiError::QuotaExceeded { retry_after_secs } => format!(
                "{} Retry after {retry_after_secs} seconds.",
                self.code().message()
            ),
            ApiError::Membership(_)
            | ApiError::Restore(_)
            | ApiError::NotCancellable(_)
            | ApiError::TenantAlreadyClaimed
            | ApiError::ConcurrentChange
            | ApiError::DriftAlreadyAccepted
            | ApiError::Batch(_)
            | ApiError::NotFound(_) => self.code().message().to_owned(),
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// Headers the problem response carries besides its content type: `Retry-After` (whole
    /// seconds) when waiting is the remedy.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            ApiError::QuotaExceeded { retry_after_secs } => {
                vec![(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs))]
            }
            _ => Vec::new(),
        }
    }
}

/// The table failed: nothing the client can fix.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// Secrets Manager failed (the API only writes connection secrets).
impl From<SecretsError> for ApiError {
    fn from(e: SecretsError) -> Self {
        ApiError::internal(e)
    }
}

/// The API reads snapshots only for restore previews: a snapshot it cannot read refuses the
/// preview. The client learns only the code; the cause is logged here.
impl From<SnapshotError> for ApiError {
    fn from(e: SnapshotError) -> Self {
        tracing::error!(error = %e, "could not read a snapshot for a preview");
        ApiError::Restore(ReasonCode::RestoreSnapshotMissing)
    }
}
