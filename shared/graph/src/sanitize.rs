//! Scrubbing text that may carry secrets before it reaches a log line, a run or an event:
//! bearer tokens, JWTs, client secrets and assertions, and secret-looking query parameters.
//! Graph and STS error *messages* are never stored at all (failures carry the reason code's
//! own message); this is the second line, for whatever is logged.

use std::sync::LazyLock;

use regex::Regex;

const REDACTED: &str = "[redacted]";

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // Authorization headers and bearer tokens.
        r"(?i)bearer\s+[A-Za-z0-9\-._~+/]+=*",
        // JWTs (three base64url parts, the first starting with eyJ).
        r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*",
        // key=value and "key": "value" for secret-bearing keys.
        r#"(?i)(client_secret|client_assertion|access_token|refresh_token|id_token|password|secret|sig|code)("?\s*[:=]\s*"?)[^"&\s,}]+"#,
    ]
    .iter()
    .filter_map(|p| Regex::new(p).ok())
    .collect()
});

/// `text` with every secret-looking part replaced by `[redacted]`.
pub fn sanitize(text: &str) -> String {
    let mut out = text.to_owned();
    for (i, re) in PATTERNS.iter().enumerate() {
        out = if i == 2 {
            re.replace_all(&out, format!("${{1}}${{2}}{REDACTED}").as_str())
                .into_owned()
        } else {
            re.replace_all(&out, REDACTED).into_owned()
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_and_secrets_are_redacted() {
        let s = sanitize(
            "Authorization: Bearer abc.def-ghi client_secret=hunter2&scope=x {\"client_secret\": \"p@ss\"} token eyJhbGciOi.eyJzdWIiOi.sig",
        );
        for leaked in ["abc.def-ghi", "hunter2", "p@ss", "eyJhbGciOi"] {
            assert!(!s.contains(leaked), "{leaked} survived: {s}");
        }
        assert!(s.contains("scope=x"), "harmless parts stay: {s}");
    }

    proptest! {
        #[test]
        fn a_planted_secret_never_survives(secret in "[A-Za-z0-9]{8,40}") {
            for carrier in [
                format!("client_secret={secret}"),
                format!("{{\"error\":\"x\",\"client_secret\":\"{secret}\"}}"),
                format!("Bearer {secret}"),
                format!("client_assertion={secret}&x=1"),
            ] {
                prop_assert!(!sanitize(&carrier).contains(&secret), "{}", carrier);
            }
        }
    }
}
