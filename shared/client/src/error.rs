//! The client's errors: the API's RFC 9457 problems, typed, and what went wrong on the way.

use std::fmt;

use serde::{Deserialize, Serialize};
use tenantops_core::RunId;

/// An RFC 9457 problem document as the API answers it (`components/schemas/Problem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `https://tenantops.dev/problems/{code}`.
    #[serde(rename = "type", default)]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable reason code to branch on (README: reason codes).
    pub code: String,
    /// `auth.forbidden`: the capability the caller's role lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// `dispatch.failed`: the run that was created and then failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// `dispatch.failed`: that run's viewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    /// `Retry-After` in seconds, when the answer had one (a 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {} [{}]",
            self.title, self.status, self.detail, self.code
        )
    }
}

/// What a call can end in other than the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered a problem document.
    #[error("{0}")]
    Problem(Box<Problem>),
    /// An error status without a problem document (API Gateway's own 401 `{"message"}`, a
    /// proxy in between).
    #[error("the API answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("`{0}` is not an http(s) URL of the API")]
    BaseUrl(String),
    #[error("the request to {url} failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the answer of {route} is not what the API's document describes: {source}")]
    Body {
        route: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A link the API gave does not lead where the client expected (its route's template).
    #[error("the link `{link}` is not a path of {route}")]
    Link { link: String, route: &'static str },
}

impl Error {
    /// The problem document, when the API answered one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem(p) => Some(&**p),
            _ => None,
        }
    }

    /// The HTTP status the API answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Problem(p) => Some(p.status),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
