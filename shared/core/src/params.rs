//! Per-type start parameters. Every parameter has a default, so `{"type": T}` alone starts a
//! run of any type that users may start through the operations route.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::operation::{OperationType, TypeParams};

// The params structs and `OperationParams` are declared with their types in
// `operation/types.rs`; they are re-exported here, where callers have always found them.
pub use crate::operation::{
    BackupRetryParams, BackupRunNowParams, BackupScheduledParams, DirectoryGroupsSyncParams,
    DirectoryRoleDefinitionsSyncParams, DriftCheckParams, DriftScheduledParams,
    InventorySyncParams, OperationParams, ProviderConnectionVerifyParams, RestoreExecuteParams,
    RestorePreviewParams,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("`params` must be a JSON object")]
    NotAnObject,
    #[error("invalid params for {operation}: {reason}")]
    Invalid {
        operation: OperationType,
        reason: String,
    },
}

/// The default provider connection of a tenant.
pub const DEFAULT_CONNECTION_ID: &str = "default";
const MAX_SCOPE_TYPES: usize = 100;

/// Absent or `null` params mean "all defaults"; anything else must be a JSON object.
pub(crate) fn object_or_defaults(params: Option<Value>) -> Result<Value, ParamsError> {
    match params {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ParamsError::NotAnObject),
    }
}

/// Reads `value` as `operation`'s params struct and runs the type's own checks.
pub(crate) fn typed<P: DeserializeOwned + TypeParams>(
    operation: OperationType,
    value: Value,
) -> Result<P, ParamsError> {
    let invalid = |reason: String| ParamsError::Invalid { operation, reason };
    let p: P = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    p.validate().map_err(invalid)?;
    Ok(p)
}

/// RFC 3339 with whole seconds and `Z`: the one spelling of a schedule slot in identities.
pub fn slot_string(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub(crate) fn validate_scope_types(types: &[String]) -> Result<(), String> {
    if types.is_empty() {
        return Err("types must not be empty; omit it to cover every type".into());
    }
    if types.len() > MAX_SCOPE_TYPES {
        return Err(format!("at most {MAX_SCOPE_TYPES} types"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in types {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b));
        if !ok {
            return Err("each type is 1 to 128 of letters, digits, '.', '_', '/', '-'".into());
        }
        if !seen.insert(t) {
            return Err(format!("type `{t}` is listed twice"));
        }
    }
    Ok(())
}

/// Whole numbers as JSON Schema reads them: `164` and `164.0` are the same integer (a number
/// whose fractional part is zero is an integer, JSON Schema 2020-12 §6.1.1 / validation
/// `type: integer`), so a client that writes either is understood alike. `164.5` is not one.
pub mod whole_number {
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    struct Whole(u32);

    impl<'de> Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Whole;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a whole number from 0 to 4294967295")
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                    u32::try_from(v)
                        .map(Whole)
                        .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                    u32::try_from(v)
                        .map(Whole)
                        .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                    if v.is_finite() && v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v)
                    {
                        // Exact: a whole f64 within u32's range converts without loss.
                        Ok(Whole(v as u32))
                    } else {
                        Err(E::invalid_value(de::Unexpected::Float(v), &self))
                    }
                }
            }
            d.deserialize_any(V)
        }
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Whole::deserialize(d).map(|w| w.0)
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<Whole>::deserialize(d).map(|o| o.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct N {
            #[serde(default, deserialize_with = "super::whole_number::option")]
            n: Option<u32>,
        }
        let n = |json: &str| serde_json::from_str::<N>(json).map(|v| v.n).ok();
        assert_eq!(n(r#"{"n": 164}"#), Some(Some(164)));
        assert_eq!(n(r#"{"n": 164.0}"#), Some(Some(164)));
        assert_eq!(n(r#"{"n": null}"#), Some(None));
        assert_eq!(n(r#"{}"#), Some(None));
        for bad in [
            r#"{"n": 164.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 1e20}"#,
            r#"{"n": "1"}"#,
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn every_user_startable_type_starts_with_no_params() {
        use crate::operation::StartSurface;
        for t in OperationType::ALL {
            if t.spec().start_surface == StartSurface::OperationsRoute {
                assert!(OperationParams::parse(t, None).is_ok(), "{t}");
                assert!(OperationParams::parse(t, Some(json!({}))).is_ok(), "{t}");
            }
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let p = OperationParams::parse(OperationType::ProviderConnectionVerify, None)
            .expect("defaults");
        assert_eq!(p.to_value(), json!({"connection_id": "default"}));
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_rejected() {
        assert!(
            OperationParams::parse(OperationType::InventorySync, Some(json!({"typo": 1}))).is_err()
        );
        assert!(
            OperationParams::parse(
                OperationType::DirectoryGroupsSync,
                Some(json!({"full": "yes"}))
            )
            .is_err()
        );
        assert_eq!(
            OperationParams::parse(OperationType::InventorySync, Some(json!([1]))),
            Err(ParamsError::NotAnObject)
        );
        assert!(
            OperationParams::parse(
                OperationType::InventorySync,
                Some(json!({"types": ["a", "a"]}))
            )
            .is_err()
        );
        assert!(
            OperationParams::parse(
                OperationType::ProviderConnectionVerify,
                Some(json!({"connection_id": "Not A Slug"}))
            )
            .is_err()
        );
    }
}
