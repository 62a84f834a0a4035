//! HS256 tokens for the local gateway, with a key generated per stack. In AWS, API Gateway's
//! JWT authorizer verifies the MSP's identity provider tokens instead.

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "https://tenantops.local/";
pub const AUDIENCE: &str = "tenantops-api";
/// The claim and value the local stack's platform operator carries (the template's
/// defaults for `PlatformOperatorClaim` and `PlatformOperatorValue`).
pub const PLATFORM_GROUP_CLAIM: &str = "cognito:groups";
pub const PLATFORM_GROUP: &str = "tenantops-platform";

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
        self.mint_with(sub, ttl_secs, serde_json::Map::new())
    }

    /// A token for `sub` carrying `extra` claims too (e.g. a platform operator's group).
    pub fn mint_with(
        &self,
        sub: &str,
        ttl_secs: i64,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + ttl_secs,
            iat: now,
        };
        let mut all = match serde_json::to_value(&claims).context("claims")? {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        for (k, v) in extra {
            all.entry(k).or_insert(v);
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &all,
            &EncodingKey::from_secret(&self.key),
        )
        .context("signing a token")
    }

    /// A platform operator's token for `sub`: the template's default claim and value
    /// (`cognito:groups` holding `tenantops-platform`), as a Cognito user pool issues it.
    pub fn mint_platform_operator(&self, sub: &str, ttl_secs: i64) -> anyhow::Result<String> {
        let mut extra = serde_json::Map::new();
        extra.insert(
            PLATFORM_GROUP_CLAIM.into(),
            serde_json::json!([PLATFORM_GROUP]),
        );
        self.mint_with(sub, ttl_secs, extra)
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
