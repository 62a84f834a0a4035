//! What the handler reads from an API Gateway v2 event.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::Method;
use base64::Engine;
use tenantops_core::UserId;

use std::collections::HashMap;

use crate::error::{ApiError, Resource};
use crate::operators::PlatformOperators;

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    /// Raw query pairs, in order, percent-decoded.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Option<Vec<u8>>,
    /// The JWT `sub` API Gateway verified; `None` on unauthenticated routes.
    caller: Option<String>,
    /// Every verified claim, as API Gateway hands them over (strings).
    claims: HashMap<String, String>,
}

impl ApiRequest {
    pub fn from_event(event: ApiGatewayV2httpRequest) -> ApiRequest {
        let ctx = event.request_context;
        let claims: HashMap<String, String> = ctx
            .authorizer
            .and_then(|a| a.jwt)
            .map(|jwt| jwt.claims.into_iter().collect())
            .unwrap_or_default();
        let caller = claims.get("sub").cloned();
        // A header that is present is never read as absent: bytes that are not visible ASCII
        // are kept (lossily), so the header's own check refuses them with a 400 instead of a
        // non-ASCII `Idempotency-Key` silently meaning "no key".
        let header = |name: &str| {
            event
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let body = event.body.map(|b| {
            if event.is_base64_encoded {
                // Undecodable base64 becomes bytes that fail JSON parsing, a 400.
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .unwrap_or_else(|_| b.into_bytes())
            } else {
                b.into_bytes()
            }
        });
        let query = event
            .raw_query_string
            .as_deref()
            .map(parse_query)
            .unwrap_or_default();
        ApiRequest {
            method: ctx.http.method,
            path: event.raw_path.unwrap_or_else(|| "/".to_owned()),
            query,
            content_type: header("content-type"),
            idempotency_key: header("idempotency-key"),
            body,
            caller,
            claims,
        }
    }

    /// The verified caller, or 401.
    pub fn caller(&self) -> Result<UserId, ApiError> {
        self.caller
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or(ApiError::Unauthenticated)
    }

    /// The verified caller, if a platform operator; anyone else (a workspace owner too) gets
    /// the missing route's 404, so the system plane is invisible to them.
    pub fn platform_operator(&self, operators: &PlatformOperators) -> Result<UserId, ApiError> {
        let caller = self.caller()?;
        if operators.includes(&self.claims) {
            Ok(caller)
        } else {
            Err(ApiError::NotFound(Resource::Route))
        }
    }

    /// The JSON body: size and media type checked, then parsed.
    pub fn json_body(&self) -> Result<serde_json::Value, ApiError> {
        let body = self.body.as_deref().unwrap_or_default();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if let Some(ct) = &self.content_type {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if mime != "application/json" && !mime.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedJson("the body is empty".into()));
        }
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
    }
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_split_and_decoded() {
        assert_eq!(
            parse_query("a=1&b=x%2By+z&c&d=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x+y z".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into()),
            ]
        );
    }
}
