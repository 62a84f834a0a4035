//! Store errors keep the SDK error as their source and answer questions about it; nothing
//! here stringifies an SDK error.

use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A DynamoDB call failed; `source` is the SDK error.
    #[error("DynamoDB {operation} failed")]
    Dynamo {
        operation: &'static str,
        code: Option<String>,
        #[source]
        source: BoxError,
    },
    /// An item could not be mapped to or from its record.
    #[error("item mapping failed for {what}")]
    Mapping {
        what: &'static str,
        #[source]
        source: serde_dynamo::Error,
    },
    /// A transaction kept colliding with concurrent ones.
    #[error("DynamoDB {operation} kept conflicting with concurrent transactions")]
    Contention { operation: &'static str },
    /// An item would exceed what the store allows itself below DynamoDB's 400 KB (refused
    /// before it is sent).
    #[error("{what} of {bytes} bytes is over the item size limit")]
    ItemTooLarge { what: &'static str, bytes: usize },
    /// A conditional transition found the run in a state that does not allow it.
    #[error("run transition refused: the run is not in an allowed state")]
    TransitionRefused,
}

impl StoreError {
    pub(crate) fn dynamo<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        StoreError::Dynamo {
            operation,
            code,
            source: Box::new(err),
        }
    }

    pub(crate) fn mapping(what: &'static str, source: serde_dynamo::Error) -> Self {
        StoreError::Mapping { what, source }
    }

    /// The DynamoDB error code (`ConditionalCheckFailedException`, `ThrottlingException`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::Dynamo { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn is_condition_check_failed(&self) -> bool {
        matches!(self, StoreError::TransitionRefused)
            || self.code() == Some("ConditionalCheckFailedException")
    }

    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
            )
        )
    }
}
