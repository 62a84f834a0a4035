//! API Gateway v2 responses.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, header};
use serde::Serialize;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A response before it becomes an API Gateway event.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Headers beyond the content type and caching ones every reply carries.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn json(status: u16, body: &impl Serialize) -> Reply {
        // Our response types are plain data; serialization cannot fail for them.
        let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
        Reply {
            status,
            content_type: JSON,
            body,
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            content_type: JSON,
            body: String::new(),
            headers: Vec::new(),
        }
    }

    pub fn into_event(self) -> ApiGatewayV2httpResponse {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        let mut out = ApiGatewayV2httpResponse::default();
        out.status_code = i64::from(self.status);
        out.headers = headers;
        out.body = Some(Body::Text(self.body));
        out.is_base64_encoded = false;
        out
    }
}
