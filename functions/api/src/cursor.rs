//! Opaque list cursors. A cursor names the last run of a page and the query it belongs to;
//! the server checks both, so a cursor edited by hand or replayed against another query is a
//! 400 rather than a silently different page. An empty cursor is no cursor: the first page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

const VERSION: u8 = 1;
const MAX_LEN: usize = 2048;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    v: u8,
    q: String,
    after: String,
}

/// A cursor for the page after `after` (an item's sort key) of `query`.
pub fn encode(query: &str, after: impl ToString) -> String {
    let c = Cursor {
        v: VERSION,
        q: query.to_owned(),
        after: after.to_string(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// The position `cursor` names: `None` (the first page) when it is absent or empty, else
/// what [`decode`] reads.
pub fn position<T: std::str::FromStr>(
    cursor: Option<&str>,
    query: &str,
) -> Result<Option<T>, ApiError> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| decode(c, query))
        .transpose()
}

/// The position a cursor names, parsed as `T`, if the cursor belongs to `query`.
fn decode<T: std::str::FromStr>(raw: &str, query: &str) -> Result<T, ApiError> {
    if raw.len() > MAX_LEN {
        return Err(ApiError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| ApiError::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| ApiError::InvalidCursor)?;
    if c.v != VERSION || c.q != query {
        return Err(ApiError::InvalidCursor);
    }
    c.after.parse().map_err(|_| ApiError::InvalidCursor)
}

/// The position the request's `cursor` query parameter names, if it has one (see [`decode`]).
pub fn after<T: std::str::FromStr>(
    query_params: &std::collections::HashMap<&str, &str>,
    query: &str,
) -> Result<Option<T>, ApiError> {
    position(query_params.get("cursor").copied(), query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantops_core::RunId;

    #[test]
    fn a_cursor_round_trips_for_its_own_query_only() {
        let id = RunId::new();
        let c = encode("tenant=|type=", id);
        assert_eq!(decode::<RunId>(&c, "tenant=|type=").ok(), Some(id));
        assert!(decode::<RunId>(&c, "tenant=x|type=").is_err());
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let c = encode("q", RunId::new());
        let mut tampered = c.clone();
        tampered.pop();
        tampered.push(if c.ends_with('A') { 'B' } else { 'A' });
        let d = |x: &str| decode::<RunId>(x, "q").ok();
        assert!(d(&tampered).is_none() || d(&tampered) != d(&c));
        assert!(d("not base64!").is_none());
        assert!(d(&URL_SAFE_NO_PAD.encode(b"{\"v\":1}")).is_none());
    }
}
