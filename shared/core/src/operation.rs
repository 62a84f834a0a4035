//! The operation-type registry: every kind of run, its identity rule and its capabilities.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::capability::Capability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationType {
    InventorySync,
    DirectoryGroupsSync,
    DirectoryRoleDefinitionsSync,
    ProviderConnectionVerify,
    BackupScheduleRunNow,
    BackupScheduleRetry,
    BackupScheduleScheduled,
    RestoreExecute,
}

/// How a start request maps to a run (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityRule {
    /// One active run per identity; a start while one is active returns it.
    DeterministicWhileActive,
    /// A new run per request, unless the client repeats an `Idempotency-Key`.
    UniquePerClick,
    /// At most one run per identity, ever.
    Strict,
}

/// Where a type may be started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSurface {
    /// `POST .../operations` with `{type, params}`.
    OperationsRoute,
    /// Only through its own route, which checks what the generic route cannot (a restore's
    /// confirmation token, the run a retry refers to).
    DedicatedRoute,
    /// Never by a user: the scheduler creates these.
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationSpec {
    pub identity_rule: IdentityRule,
    pub start_capability: Capability,
    pub view_capability: Capability,
    pub start_surface: StartSurface,
    pub label: &'static str,
}

impl OperationType {
    pub const ALL: [OperationType; 8] = [
        OperationType::InventorySync,
        OperationType::DirectoryGroupsSync,
        OperationType::DirectoryRoleDefinitionsSync,
        OperationType::ProviderConnectionVerify,
        OperationType::BackupScheduleRunNow,
        OperationType::BackupScheduleRetry,
        OperationType::BackupScheduleScheduled,
        OperationType::RestoreExecute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::InventorySync => "inventory.sync",
            OperationType::DirectoryGroupsSync => "directory_groups.sync",
            OperationType::DirectoryRoleDefinitionsSync => "directory_role_definitions.sync",
            OperationType::ProviderConnectionVerify => "provider_connection.verify",
            OperationType::BackupScheduleRunNow => "backup_schedule.run_now",
            OperationType::BackupScheduleRetry => "backup_schedule.retry",
            OperationType::BackupScheduleScheduled => "backup_schedule.scheduled",
            OperationType::RestoreExecute => "restore.execute",
        }
    }

    pub fn spec(self) -> OperationSpec {
        use Capability as C;
        use IdentityRule::*;
        use StartSurface::*;
        let (identity_rule, start_capability, start_surface, label) = match self {
            OperationType::InventorySync => (
                DeterministicWhileActive,
                C::InventorySync,
                OperationsRoute,
                "Inventory sync",
            ),
            OperationType::DirectoryGroupsSync => (
                DeterministicWhileActive,
                C::DirectorySync,
                OperationsRoute,
                "Directory groups sync",
            ),
            OperationType::DirectoryRoleDefinitionsSync => (
                DeterministicWhileActive,
                C::DirectorySync,
                OperationsRoute,
                "Directory role definitions sync",
            ),
            OperationType::ProviderConnectionVerify => (
                DeterministicWhileActive,
                C::ConnectionVerify,
                OperationsRoute,
                "Provider connection check",
            ),
            OperationType::BackupScheduleRunNow => {
                (UniquePerClick, C::BackupRun, OperationsRoute, "Backup now")
            }
            OperationType::BackupScheduleRetry => {
                (UniquePerClick, C::BackupRun, DedicatedRoute, "Backup retry")
            }
            OperationType::BackupScheduleScheduled => {
                (Strict, C::BackupRun, System, "Scheduled backup")
            }
            OperationType::RestoreExecute => (
                DeterministicWhileActive,
                C::RestoreExecute,
                DedicatedRoute,
                "Restore",
            ),
        };
        // Read-only members may watch connection checks (onboarding shows them) but not start
        // them; every other run is viewed with the capability that starts it.
        let view_capability = match self {
            OperationType::ProviderConnectionVerify => C::ConnectionView,
            _ => start_capability,
        };
        OperationSpec {
            identity_rule,
            start_capability,
            view_capability,
            start_surface,
            label,
        }
    }

    /// Types whose runs a caller holding `has` may view.
    pub fn viewable_with(has: impl Fn(Capability) -> bool) -> Vec<OperationType> {
        Self::ALL
            .into_iter()
            .filter(|t| has(t.spec().view_capability))
            .collect()
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation type `{0}`")]
pub struct UnknownOperationType(pub String);

impl FromStr for OperationType {
    type Err = UnknownOperationType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownOperationType(s.chars().take(64).collect()))
    }
}

impl Serialize for OperationType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The registry rendered as text, one type per line; pinned by the golden test.
pub fn registry_table() -> String {
    OperationType::ALL
        .iter()
        .map(|t| {
            let s = t.spec();
            format!(
                "{} | {:?} | start={} | view={} | {:?} | {}\n",
                t.as_str(),
                s.identity_rule,
                s.start_capability,
                s.view_capability,
                s.start_surface,
                s.label
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_registry_matches_the_golden_file() {
        crate::check_golden("operations.txt", &registry_table());
    }

    #[test]
    fn type_names_round_trip() {
        for t in OperationType::ALL {
            assert_eq!(t.as_str().parse::<OperationType>(), Ok(t));
            let json = serde_json::to_string(&t).expect("serializes");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert!("inventory.Sync".parse::<OperationType>().is_err());
    }

    #[test]
    fn readonly_members_view_connection_checks_but_start_nothing() {
        use crate::capability::Role;
        let viewable = OperationType::viewable_with(|c| Role::Readonly.has(c));
        assert_eq!(viewable, vec![OperationType::ProviderConnectionVerify]);
        for t in OperationType::ALL {
            assert!(!Role::Readonly.has(t.spec().start_capability), "{t}");
        }
    }
}
