//! Opaque list cursors. A cursor names the last run of a page and the query it belongs to;
//! the server checks both, so a cursor edited by hand or replayed against another query is a
//! 400 rather than a silently different page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tenantops_core::RunId;

use crate::error::ApiError;

const VERSION: u8 = 1;
const MAX_LEN: usize = 512;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    v: u8,
    q: String,
    after: RunId,
}

pub fn encode(query: &str, after: RunId) -> String {
    let c = Cursor {
        v: VERSION,
        q: query.to_owned(),
        after,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub fn decode(raw: &str, query: &str) -> Result<RunId, ApiError> {
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
    Ok(c.after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_own_query_only() {
        let id = RunId::new();
        let c = encode("tenant=|type=", id);
        assert_eq!(decode(&c, "tenant=|type=").ok(), Some(id));
        assert!(decode(&c, "tenant=x|type=").is_err());
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let c = encode("q", RunId::new());
        let mut tampered = c.clone();
        tampered.pop();
        tampered.push(if c.ends_with('A') { 'B' } else { 'A' });
        assert!(
            decode(&tampered, "q").is_err() || decode(&tampered, "q").ok() != decode(&c, "q").ok()
        );
        assert!(decode("not base64!", "q").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode(b"{\"v\":1}"), "q").is_err());
    }
}
