//! RFC 9457 problem details: `type`, `title`, `status`, `detail`, plus our stable `code`.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::response::{PROBLEM_JSON, Reply};

/// Problem type URIs name the code, so clients may branch on either.
pub const TYPE_BASE: &str = "https://tenantops.dev/problems/";

pub fn reply(err: &ApiError) -> Reply {
    let mut body = Map::new();
    body.insert(
        "type".into(),
        json!(format!("{TYPE_BASE}{}", err.code().as_str())),
    );
    body.insert("title".into(), json!(err.title()));
    body.insert("status".into(), json!(err.status()));
    body.insert("detail".into(), json!(err.detail()));
    body.insert("code".into(), json!(err.code().as_str()));
    if let ApiError::Forbidden(cap) = err {
        body.insert("capability".into(), json!(cap.as_str()));
    }
    Reply {
        status: err.status(),
        content_type: PROBLEM_JSON,
        body: Value::Object(body).to_string(),
        headers: err.headers(),
    }
}

#[cfg(test)]
mod tests {
    /// The document's `ReasonCode` enum is the registry, so a client generated from it knows
    /// every code a problem or a run failure can carry.
    #[test]
    fn the_documents_reason_codes_are_the_registry() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).expect("the document");
        let listed: Vec<&str> = doc["components"]["schemas"]["ReasonCode"]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let registry: Vec<&str> = tenantops_core::ReasonCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(listed, registry);
    }
}
