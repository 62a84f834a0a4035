//! Tenant tags: the short labels an MSP groups its customer tenants by ("gold", "eu-west",
//! "pilot"), so that a list (and later a batch or a schedule) can name a group instead of
//! every tenant. One rule, here; the OpenAPI document states the same pattern and limit, and
//! a test holds it to these constants.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most tags a tenant carries.
pub const MAX_TAGS: usize = 20;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// The rule as the OpenAPI document states it. Lower case only, so that two spellings of one
/// label can never split a group.
pub const TAG_PATTERN: &str = "^[a-z0-9][a-z0-9._:-]{0,31}$";

/// One valid tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error(
        "a tag must be 1 to 32 characters of lower-case letters, digits, `.`, `_`, `:` or `-`, \
         starting with a letter or digit"
    )]
    Invalid,
    #[error("a tenant carries at most 20 tags")]
    TooMany,
    #[error("each tag may be named once")]
    Repeated,
}

impl Tag {
    pub fn parse(raw: &str) -> Result<Tag, TagError> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | '-')
        });
        if first_ok && rest_ok && raw.len() <= MAX_TAG_CHARS {
            Ok(Tag(raw.to_owned()))
        } else {
            Err(TagError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Tag::parse(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's whole set of tags, as a client sends it: each valid, none twice, at most
/// [`MAX_TAGS`]. Kept sorted, so that one set has one stored form.
pub fn parse_tags<S: AsRef<str>>(raw: &[S]) -> Result<Vec<Tag>, TagError> {
    if raw.len() > MAX_TAGS {
        return Err(TagError::TooMany);
    }
    let mut tags = raw
        .iter()
        .map(|s| Tag::parse(s.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    tags.sort();
    let before = tags.len();
    tags.dedup();
    if tags.len() != before {
        return Err(TagError::Repeated);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_documented_pattern() {
        for ok in [
            "gold",
            "eu-west",
            "a",
            "tier:1",
            "x.y_z",
            "0",
            &"a".repeat(32),
        ] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Gold",
            "-lead",
            ".lead",
            "with space",
            "é",
            "a/b",
            &"a".repeat(33),
        ] {
            assert_eq!(Tag::parse(bad), Err(TagError::Invalid), "{bad}");
        }
    }

    #[test]
    fn a_set_is_sorted_bounded_and_without_repeats() {
        let tags = parse_tags(&["pilot", "eu", "gold"]);
        let names: Vec<String> = tags.iter().flatten().map(Tag::to_string).collect();
        assert_eq!(names, ["eu", "gold", "pilot"]);
        assert_eq!(parse_tags(&["eu", "eu"]), Err(TagError::Repeated));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert_eq!(parse_tags(&many), Err(TagError::TooMany));
        assert_eq!(parse_tags(&many[..MAX_TAGS]).map(|t| t.len()), Ok(MAX_TAGS));
        assert_eq!(parse_tags::<&str>(&[]), Ok(Vec::new()));
    }

    #[test]
    fn a_stored_tag_that_breaks_the_rule_does_not_deserialize() {
        assert!(serde_json::from_str::<Tag>("\"Gold\"").is_err());
        assert_eq!(
            serde_json::from_str::<Tag>("\"gold\"").ok(),
            Tag::parse("gold").ok()
        );
    }
}
