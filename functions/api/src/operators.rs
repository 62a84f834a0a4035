//! Who is a platform operator: a deployment names them through one JWT claim and value
//! (template parameters `PlatformOperatorClaim` and `PlatformOperatorValue`). Being one
//! opens the read-only system plane and nothing else: it grants no workspace role.

use std::collections::HashMap;

/// The claim and value that make a caller a platform operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformOperators {
    claim: String,
    value: String,
}

/// The template's default claim (Amazon Cognito user pool groups).
pub const DEFAULT_CLAIM: &str = "cognito:groups";
/// The template's default value of that claim.
pub const DEFAULT_VALUE: &str = "tenantops-platform";

impl PlatformOperators {
    /// Operators are callers whose `claim` holds `value` (alone or among others). An empty
    /// `value` names nobody.
    pub fn new(claim: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            claim: claim.into(),
            value: value.into(),
        }
    }

    /// Nobody is a platform operator.
    pub fn none() -> Self {
        Self::new(DEFAULT_CLAIM, "")
    }

    /// The template's defaults.
    pub fn defaults() -> Self {
        Self::new(DEFAULT_CLAIM, DEFAULT_VALUE)
    }

    /// Whether the verified claims make their bearer an operator. API Gateway's HTTP API
    /// hands every claim over as a string; an array claim arrives as `[a b]` (its values
    /// space-separated in brackets), and some issuers send JSON text (`["a","b"]`) or a
    /// space-separated list (`scope`-like claims): any of them may hold the value.
    pub fn includes(&self, claims: &HashMap<String, String>) -> bool {
        if self.value.is_empty() {
            return false;
        }
        let Some(raw) = claims.get(&self.claim) else {
            return false;
        };
        if let Ok(serde_json::Value::Array(values)) = serde_json::from_str(raw) {
            return values
                .iter()
                .any(|v| v.as_str() == Some(self.value.as_str()));
        }
        let inner = raw
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(raw);
        inner
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|v| v == self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: &str) -> HashMap<String, String> {
        HashMap::from([("cognito:groups".to_owned(), value.to_owned())])
    }

    #[test]
    fn every_form_of_an_array_claim_is_read() {
        let ops = PlatformOperators::defaults();
        for held in [
            "tenantops-platform",
            "[tenantops-platform]",
            "[admins tenantops-platform]",
            r#"["admins","tenantops-platform"]"#,
            "admins,tenantops-platform",
        ] {
            assert!(ops.includes(&claims(held)), "{held}");
        }
        for not in [
            "",
            "[]",
            "tenantops-platform-readers",
            "[admins]",
            r#"["x"]"#,
        ] {
            assert!(!ops.includes(&claims(not)), "{not}");
        }
        assert!(!ops.includes(&HashMap::new()));
        assert!(!PlatformOperators::none().includes(&claims("tenantops-platform")));
        assert!(!PlatformOperators::new("cognito:groups", "").includes(&claims("")));
    }
}
