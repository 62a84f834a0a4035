//! HS256 tokens for the local gateway, with a key generated per stack. In AWS, API Gateway's
//! JWT authorizer verifies the MSP's identity provider tokens instead.

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "https://tenantops.local/";
pub const AUDIENCE: &str = "tenantops-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
}

#[derive(Clone)]
pub struct TokenIssuer {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { key: <redacted> }")
    }
}

impl TokenIssuer {
    /// A new random key (two ULIDs' worth of randomness, 160 bits).
    pub fn generate() -> Self {
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(&ulid::Ulid::new().random().to_be_bytes()[6..]);
        key.extend_from_slice(&ulid::Ulid::new().random().to_be_bytes()[6..]);
        Self { key }
    }

    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .context("the HS256 key is not base64")?;
        Ok(Self { key })
    }

    pub fn key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.key)
    }

    /// A token for `sub`, valid for `ttl_secs`.
    pub fn mint(&self, sub: &str, ttl_secs: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + ttl_secs,
            iat: now,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .context("signing a token")
    }

    /// Verifies signature, expiry, issuer and audience, as API Gateway's JWT authorizer does.
    pub fn verify(&self, token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &DecodingKey::from_secret(&self.key),
            &v,
        )
        .ok()
        .map(|d| d.claims)
    }
}
