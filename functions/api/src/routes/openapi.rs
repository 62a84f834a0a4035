//! `GET /v1/openapi.json`: the API's OpenAPI 3.1 description. It is checked in
//! (`functions/api/openapi.json`) and compiled in, so the Lambda serves exactly the reviewed
//! document; tests/it/openapi.rs holds it to the router's routes and the handlers' responses.

use crate::response::{JSON, Reply};

/// The document, as checked in.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// Unauthenticated, like `/v1/health`: the contract is public, and clients fetch it before
/// they have a token.
pub fn document() -> Reply {
    Reply {
        status: 200,
        content_type: JSON,
        body: DOCUMENT.to_owned(),
        headers: Vec::new(),
    }
}
