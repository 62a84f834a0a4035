//! Per-type start parameters. Every parameter has a default, so `{"type": T}` alone starts a
//! run of any type that users may start through the operations route.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ulid::Ulid;

use crate::ids::RunId;
use crate::operation::OperationType;

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

/// The default provider connection of a tenant (DESIGN.md §3).
pub const DEFAULT_CONNECTION_ID: &str = "default";
const MAX_SCOPE_TYPES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySyncParams {
    /// Object types to list; `None` covers every type in the contract registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryGroupsSyncParams {
    /// Ignore the stored delta link and read every group.
    #[serde(default)]
    pub full: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRoleDefinitionsSyncParams {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConnectionVerifyParams {
    #[serde(default = "default_connection")]
    pub connection_id: String,
}

fn default_connection() -> String {
    DEFAULT_CONNECTION_ID.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRunNowParams {
    /// The schedule whose scope to back up; `None` is an ad-hoc backup of every backup-capable type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_schedule_id: Option<Ulid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRetryParams {
    pub backup_schedule_id: Ulid,
    /// The failed or partially succeeded run this retries.
    pub run_id: RunId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupScheduledParams {
    pub backup_schedule_id: Ulid,
    pub scheduled_for: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreExecuteParams {
    pub restore_id: Ulid,
}

/// Validated parameters, one variant per operation type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationParams {
    InventorySync(InventorySyncParams),
    DirectoryGroupsSync(DirectoryGroupsSyncParams),
    DirectoryRoleDefinitionsSync(DirectoryRoleDefinitionsSyncParams),
    ProviderConnectionVerify(ProviderConnectionVerifyParams),
    BackupScheduleRunNow(BackupRunNowParams),
    BackupScheduleRetry(BackupRetryParams),
    BackupScheduleScheduled(BackupScheduledParams),
    RestoreExecute(RestoreExecuteParams),
}

impl OperationParams {
    /// Validates `params` (absent or `null` means "all defaults") for `operation`.
    pub fn parse(operation: OperationType, params: Option<Value>) -> Result<Self, ParamsError> {
        let value = match params {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(ParamsError::NotAnObject),
        };
        let invalid = |reason: String| ParamsError::Invalid { operation, reason };
        fn typed<T: serde::de::DeserializeOwned>(
            v: Value,
            invalid: impl Fn(String) -> ParamsError,
        ) -> Result<T, ParamsError> {
            serde_json::from_value(v).map_err(|e| invalid(e.to_string()))
        }
        let parsed = match operation {
            OperationType::InventorySync => {
                let p: InventorySyncParams = typed(value, invalid)?;
                if let Some(types) = &p.types {
                    validate_scope_types(types).map_err(invalid)?;
                }
                Self::InventorySync(p)
            }
            OperationType::DirectoryGroupsSync => Self::DirectoryGroupsSync(typed(value, invalid)?),
            OperationType::DirectoryRoleDefinitionsSync => {
                Self::DirectoryRoleDefinitionsSync(typed(value, invalid)?)
            }
            OperationType::ProviderConnectionVerify => {
                let p: ProviderConnectionVerifyParams = typed(value, invalid)?;
                if !is_slug(&p.connection_id) {
                    return Err(invalid(
                        "connection_id must be 1 to 64 of a-z, 0-9, '-' and '_'".into(),
                    ));
                }
                Self::ProviderConnectionVerify(p)
            }
            OperationType::BackupScheduleRunNow => {
                Self::BackupScheduleRunNow(typed(value, invalid)?)
            }
            OperationType::BackupScheduleRetry => Self::BackupScheduleRetry(typed(value, invalid)?),
            OperationType::BackupScheduleScheduled => {
                Self::BackupScheduleScheduled(typed(value, invalid)?)
            }
            OperationType::RestoreExecute => Self::RestoreExecute(typed(value, invalid)?),
        };
        Ok(parsed)
    }

    pub fn operation(&self) -> OperationType {
        match self {
            Self::InventorySync(_) => OperationType::InventorySync,
            Self::DirectoryGroupsSync(_) => OperationType::DirectoryGroupsSync,
            Self::DirectoryRoleDefinitionsSync(_) => OperationType::DirectoryRoleDefinitionsSync,
            Self::ProviderConnectionVerify(_) => OperationType::ProviderConnectionVerify,
            Self::BackupScheduleRunNow(_) => OperationType::BackupScheduleRunNow,
            Self::BackupScheduleRetry(_) => OperationType::BackupScheduleRetry,
            Self::BackupScheduleScheduled(_) => OperationType::BackupScheduleScheduled,
            Self::RestoreExecute(_) => OperationType::RestoreExecute,
        }
    }

    /// The normalized params as stored on the run (defaults filled in, keys sorted).
    pub fn to_value(&self) -> Value {
        let v = match self {
            Self::InventorySync(p) => serde_json::to_value(p),
            Self::DirectoryGroupsSync(p) => serde_json::to_value(p),
            Self::DirectoryRoleDefinitionsSync(p) => serde_json::to_value(p),
            Self::ProviderConnectionVerify(p) => serde_json::to_value(p),
            Self::BackupScheduleRunNow(p) => serde_json::to_value(p),
            Self::BackupScheduleRetry(p) => serde_json::to_value(p),
            Self::BackupScheduleScheduled(p) => serde_json::to_value(p),
            Self::RestoreExecute(p) => serde_json::to_value(p),
        };
        // Plain structs of strings, bools and ids always serialize.
        v.unwrap_or(Value::Null)
    }
}

/// RFC 3339 with whole seconds and `Z`: the one spelling of a schedule slot in identities.
pub fn slot_string(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn validate_scope_types(types: &[String]) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
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
