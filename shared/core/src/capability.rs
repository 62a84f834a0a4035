//! The capability registry: the one place that says which role may do what.
//!
//! Roles are ordered from most to least powerful. A golden test (`golden/capabilities.txt`)
//! pins the whole table so that granting or revoking a capability is always a reviewed diff.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Manager,
    Operator,
    Readonly,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Manager, Role::Operator, Role::Readonly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Operator => "operator",
            Role::Readonly => "readonly",
        }
    }

    pub fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Role::Owner => &[
                WorkspaceView,
                WorkspaceSettings,
                ConnectionView,
                ConnectionVerify,
                InventorySync,
                DirectorySync,
                BackupRun,
                BackupView,
                SchedulesManage,
                RestorePreview,
                RestoreExecute,
                DriftCheck,
                DriftView,
                MembersManage,
                TenantsManage,
                ConnectionManage,
                AuditView,
                WebhookManage,
            ],
            Role::Manager => &[
                WorkspaceView,
                ConnectionView,
                ConnectionVerify,
                InventorySync,
                DirectorySync,
                BackupRun,
                BackupView,
                SchedulesManage,
                RestorePreview,
                RestoreExecute,
                DriftCheck,
                DriftView,
                MembersManage,
                TenantsManage,
                ConnectionManage,
                AuditView,
                WebhookManage,
            ],
            Role::Operator => &[
                WorkspaceView,
                ConnectionView,
                ConnectionVerify,
                InventorySync,
                DirectorySync,
                BackupRun,
                BackupView,
                RestorePreview,
                DriftCheck,
                DriftView,
            ],
            Role::Readonly => &[WorkspaceView, ConnectionView, BackupView],
        }
    }

    /// Higher is more powerful; used for "no one raises their own role".
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Manager => 2,
            Role::Operator => 1,
            Role::Readonly => 0,
        }
    }

    pub fn has(self, capability: Capability) -> bool {
        self.capabilities().contains(&capability)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.chars().take(64).collect()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Capability {
    /// See the workspace and list its runs (each run still needs its own view capability).
    #[serde(rename = "workspace.view")]
    WorkspaceView,
    /// Change the workspace's settings (such as allowing high-risk restores): owners only,
    /// since a setting loosens what every other role may do.
    #[serde(rename = "workspace.settings")]
    WorkspaceSettings,
    /// See provider connections and their verification runs.
    #[serde(rename = "connection.view")]
    ConnectionView,
    #[serde(rename = "connection.verify")]
    ConnectionVerify,
    #[serde(rename = "inventory.sync")]
    InventorySync,
    #[serde(rename = "directory.sync")]
    DirectorySync,
    #[serde(rename = "backup.run")]
    BackupRun,
    /// List backup sets and read their manifests (metadata only, never payloads).
    #[serde(rename = "backup.view")]
    BackupView,
    /// Create, change and delete backup schedules.
    #[serde(rename = "schedules.manage")]
    SchedulesManage,
    /// Compute a restore preview (a dry run: no Graph writes).
    #[serde(rename = "restore.preview")]
    RestorePreview,
    #[serde(rename = "restore.execute")]
    RestoreExecute,
    /// Start a drift check (Graph reads only: the tenant compared with a backup set).
    #[serde(rename = "drift.check")]
    DriftCheck,
    /// Read drift reports and backup-set diffs: they hold field values (never secrets), so
    /// more than a manifest's metadata.
    #[serde(rename = "drift.view")]
    DriftView,
    /// Add, change and remove members (owners additionally manage owners).
    #[serde(rename = "members.manage")]
    MembersManage,
    /// Add, rename and archive customer tenants.
    #[serde(rename = "tenants.manage")]
    TenantsManage,
    /// Store and rotate a tenant's app credentials.
    #[serde(rename = "connection.manage")]
    ConnectionManage,
    #[serde(rename = "audit.view")]
    AuditView,
    /// Register, list and delete webhook subscriptions, read their delivery logs and send
    /// test deliveries.
    #[serde(rename = "webhook.manage")]
    WebhookManage,
}

impl Capability {
    pub const ALL: [Capability; 18] = [
        Capability::WorkspaceView,
        Capability::WorkspaceSettings,
        Capability::ConnectionView,
        Capability::ConnectionVerify,
        Capability::InventorySync,
        Capability::DirectorySync,
        Capability::BackupRun,
        Capability::BackupView,
        Capability::SchedulesManage,
        Capability::RestorePreview,
        Capability::RestoreExecute,
        Capability::DriftCheck,
        Capability::DriftView,
        Capability::MembersManage,
        Capability::TenantsManage,
        Capability::ConnectionManage,
        Capability::AuditView,
        Capability::WebhookManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::WorkspaceView => "workspace.view",
            Capability::WorkspaceSettings => "workspace.settings",
            Capability::ConnectionView => "connection.view",
            Capability::ConnectionVerify => "connection.verify",
            Capability::InventorySync => "inventory.sync",
            Capability::DirectorySync => "directory.sync",
            Capability::BackupRun => "backup.run",
            Capability::BackupView => "backup.view",
            Capability::SchedulesManage => "schedules.manage",
            Capability::RestorePreview => "restore.preview",
            Capability::RestoreExecute => "restore.execute",
            Capability::DriftCheck => "drift.check",
            Capability::DriftView => "drift.view",
            Capability::MembersManage => "members.manage",
            Capability::TenantsManage => "tenants.manage",
            Capability::ConnectionManage => "connection.manage",
            Capability::AuditView => "audit.view",
            Capability::WebhookManage => "webhook.manage",
        }
    }

    /// Every role that holds this capability, most powerful first. The store turns this into
    /// a condition on the membership item, so authorization is part of the start transaction.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.has(self)).collect()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registry rendered as text, one role per line; pinned by the golden test.
pub fn registry_table() -> String {
    Role::ALL
        .iter()
        .map(|r| {
            let caps: Vec<&str> = r.capabilities().iter().map(|c| c.as_str()).collect();
            format!("{}: {}\n", r.as_str(), caps.join(", "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_registry_matches_the_golden_file() {
        crate::check_golden("capabilities.txt", &registry_table());
    }

    #[test]
    fn roles_are_nested_from_owner_down() {
        for pair in Role::ALL.windows(2) {
            for cap in pair[1].capabilities() {
                assert!(
                    pair[0].has(*cap),
                    "{} lacks {} that {} has",
                    pair[0],
                    cap,
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn every_capability_is_held_by_the_owner() {
        for cap in Capability::ALL {
            assert!(Role::Owner.has(cap));
            assert_eq!(cap.roles().first(), Some(&Role::Owner));
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
