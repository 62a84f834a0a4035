//! The contract registry: every Microsoft Graph object type tenantops touches, and how.
//!
//! All Graph work goes through an entry here; a type that is not here is refused before any
//! call (`graph.unsupported_type`). A golden test (`golden/registry.txt`) pins the table.

use std::fmt;

/// Graph API version of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// How an object's assignments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignments {
    /// The type has none.
    None,
    /// `$expand=assignments` on the list request.
    ExpandOnList,
    /// `$expand=assignments` on each item's GET.
    ExpandPerItem,
    /// `GET {item}/assignments`, paged.
    SubResource,
}

/// A read beyond the list that a full backup of an object needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraRead {
    /// A paged sub-collection of each item, e.g. `/settings` of a settings-catalog policy.
    SubCollection(&'static str),
    /// An `$expand` on each item's GET, e.g. `scheduledActionsForRule(...)`.
    ExpandOnItem(&'static str),
    /// The item's own GET carries content the list leaves out (script bodies).
    ItemContent,
}

/// How a snapshot of the type is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMethod {
    /// POST to the collection to create, PATCH the item to update.
    PostPatch,
    /// Settings-catalog style: POST with settings inline, PUT-like replace of settings.
    PostWithSettings,
    /// Not restorable (read-only inventory).
    NotSupported,
}

/// What a wrong restore of the type can break; high-risk types are preview-only unless the
/// workspace enables them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// Which of Microsoft's throttling budgets a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Intune: 1,000 requests and 100 writes per 20 s per app per tenant.
    Intune,
    /// Conditional Access: 1 request per second per tenant.
    ConditionalAccess,
    /// Directory (groups, roles): resource units per app per tenant.
    Directory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectType {
    /// The registry key, as clients and params name it.
    pub name: &'static str,
    /// Collection path without version, e.g. `deviceManagement/deviceConfigurations`.
    pub path: &'static str,
    pub version: ApiVersion,
    /// `$select` for inventory listings; the inventory keeps only these fields.
    pub select: &'static [&'static str],
    pub assignments: Assignments,
    pub extra_reads: &'static [ExtraRead],
    pub restore: RestoreMethod,
    pub risk: Risk,
    pub budget: Budget,
    /// Part of backups (and of the default backup scope).
    pub backup: bool,
}

const NAMED: &[&str] = &["id", "displayName", "description", "lastModifiedDateTime"];
const VERSIONED: &[&str] = &[
    "id",
    "displayName",
    "description",
    "lastModifiedDateTime",
    "version",
];
const CATALOG: &[&str] = &[
    "id",
    "name",
    "description",
    "platforms",
    "technologies",
    "settingCount",
    "lastModifiedDateTime",
];
const SETTINGS: &[ExtraRead] = &[ExtraRead::SubCollection("settings")];
const SCRIPT: &[ExtraRead] = &[ExtraRead::ItemContent];

macro_rules! registry {
    ($($name:literal => $path:literal, $version:ident, $select:expr, $assign:ident, $extra:expr,
        $restore:ident, $risk:ident, $budget:ident, backup: $backup:literal;)*) => {
        /// The registry, in a stable order.
        pub const REGISTRY: &[ObjectType] = &[$(ObjectType {
            name: $name,
            path: $path,
            version: ApiVersion::$version,
            select: $select,
            assignments: Assignments::$assign,
            extra_reads: $extra,
            restore: RestoreMethod::$restore,
            risk: Risk::$risk,
            budget: Budget::$budget,
            backup: $backup,
        },)*];
    };
}

registry! {
    "deviceConfigurations" => "deviceManagement/deviceConfigurations", V1, VERSIONED, ExpandOnList, &[], PostPatch, Medium, Intune, backup: true;
    "configurationPolicies" => "deviceManagement/configurationPolicies", Beta, CATALOG, SubResource, SETTINGS, PostWithSettings, Medium, Intune, backup: true;
    "deviceCompliancePolicies" => "deviceManagement/deviceCompliancePolicies", V1, VERSIONED, ExpandOnList, &[ExtraRead::ExpandOnItem("scheduledActionsForRule($expand=scheduledActionConfigurations)")], PostPatch, Medium, Intune, backup: true;
    "compliancePolicies" => "deviceManagement/compliancePolicies", Beta, CATALOG, SubResource, SETTINGS, PostWithSettings, Medium, Intune, backup: true;
    "groupPolicyConfigurations" => "deviceManagement/groupPolicyConfigurations", Beta, NAMED, SubResource, &[ExtraRead::SubCollection("definitionValues?$expand=definition,presentationValues($expand=presentation)")], PostPatch, Medium, Intune, backup: true;
    "intents" => "deviceManagement/intents", Beta, NAMED, SubResource, SETTINGS, PostPatch, High, Intune, backup: true;
    "deviceManagementScripts" => "deviceManagement/deviceManagementScripts", Beta, NAMED, SubResource, SCRIPT, PostPatch, High, Intune, backup: true;
    "deviceShellScripts" => "deviceManagement/deviceShellScripts", Beta, NAMED, SubResource, SCRIPT, PostPatch, High, Intune, backup: true;
    "deviceCustomAttributeShellScripts" => "deviceManagement/deviceCustomAttributeShellScripts", Beta, NAMED, SubResource, SCRIPT, PostPatch, High, Intune, backup: true;
    "deviceHealthScripts" => "deviceManagement/deviceHealthScripts", Beta, NAMED, SubResource, SCRIPT, PostPatch, High, Intune, backup: true;
    "deviceComplianceScripts" => "deviceManagement/deviceComplianceScripts", Beta, NAMED, SubResource, SCRIPT, PostPatch, High, Intune, backup: true;
    "deviceEnrollmentConfigurations" => "deviceManagement/deviceEnrollmentConfigurations", V1, VERSIONED, SubResource, &[], PostPatch, High, Intune, backup: true;
    "windowsAutopilotDeploymentProfiles" => "deviceManagement/windowsAutopilotDeploymentProfiles", Beta, NAMED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "windowsFeatureUpdateProfiles" => "deviceManagement/windowsFeatureUpdateProfiles", Beta, NAMED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "windowsQualityUpdateProfiles" => "deviceManagement/windowsQualityUpdateProfiles", Beta, NAMED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "windowsDriverUpdateProfiles" => "deviceManagement/windowsDriverUpdateProfiles", Beta, NAMED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "assignmentFilters" => "deviceManagement/assignmentFilters", Beta, NAMED, None, &[], PostPatch, Low, Intune, backup: true;
    "roleScopeTags" => "deviceManagement/roleScopeTags", Beta, NAMED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "reusablePolicySettings" => "deviceManagement/reusablePolicySettings", Beta, NAMED, None, &[], PostPatch, Low, Intune, backup: true;
    "managedAppPolicies" => "deviceAppManagement/managedAppPolicies", V1, VERSIONED, None, &[], NotSupported, Low, Intune, backup: false;
    "iosManagedAppProtections" => "deviceAppManagement/iosManagedAppProtections", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")], PostPatch, Medium, Intune, backup: true;
    "androidManagedAppProtections" => "deviceAppManagement/androidManagedAppProtections", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")], PostPatch, Medium, Intune, backup: true;
    "windowsManagedAppProtections" => "deviceAppManagement/windowsManagedAppProtections", Beta, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")], PostPatch, Medium, Intune, backup: true;
    "targetedManagedAppConfigurations" => "deviceAppManagement/targetedManagedAppConfigurations", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")], PostPatch, Medium, Intune, backup: true;
    "mobileAppConfigurations" => "deviceAppManagement/mobileAppConfigurations", V1, VERSIONED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "mobileApps" => "deviceAppManagement/mobileApps", V1, NAMED, SubResource, &[], NotSupported, Low, Intune, backup: true;
    "policySets" => "deviceAppManagement/policySets", Beta, NAMED, SubResource, &[ExtraRead::ExpandOnItem("items")], PostPatch, Medium, Intune, backup: true;
    "notificationMessageTemplates" => "deviceManagement/notificationMessageTemplates", V1, NAMED, None, &[ExtraRead::ExpandOnItem("localizedNotificationMessages")], PostPatch, Low, Intune, backup: true;
    "termsAndConditions" => "deviceManagement/termsAndConditions", V1, VERSIONED, SubResource, &[], PostPatch, Medium, Intune, backup: true;
    "intuneRoleDefinitions" => "deviceManagement/roleDefinitions", V1, NAMED, None, &[ExtraRead::SubCollection("roleAssignments")], PostPatch, High, Intune, backup: true;
    "conditionalAccessPolicies" => "identity/conditionalAccess/policies", V1, &["id", "displayName", "state", "modifiedDateTime"], None, &[], PostPatch, High, ConditionalAccess, backup: true;
    "namedLocations" => "identity/conditionalAccess/namedLocations", V1, &["id", "displayName", "modifiedDateTime"], None, &[], PostPatch, Medium, ConditionalAccess, backup: true;
    "groups" => "groups", V1, &["id", "displayName", "mailNickname", "securityEnabled", "groupTypes"], None, &[], NotSupported, Low, Directory, backup: false;
    "directoryRoleDefinitions" => "roleManagement/directory/roleDefinitions", V1, &["id", "displayName", "description", "isBuiltIn", "isEnabled"], None, &[], NotSupported, Low, Directory, backup: false;
}

impl ObjectType {
    /// Looks a type up by its registry name; unknown names are `None` (and must fail safe).
    pub fn named(name: &str) -> Option<&'static ObjectType> {
        REGISTRY.iter().find(|t| t.name == name)
    }

    /// Types an inventory sync covers: every Intune and Conditional Access type (groups and
    /// directory role definitions have their own syncs).
    pub fn inventory() -> impl Iterator<Item = &'static ObjectType> {
        REGISTRY.iter().filter(|t| t.budget != Budget::Directory)
    }

    /// The list URL path (version and collection) with the inventory `$select`.
    pub fn list_path(&self) -> String {
        let mut q = format!(
            "{}/{}?$select={}",
            self.version.as_str(),
            self.path,
            self.select.join(",")
        );
        if self.assignments == Assignments::ExpandOnList {
            q.push_str("&$expand=assignments");
        }
        q
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The registry as text, one type per line; pinned by the golden test.
pub fn registry_table() -> String {
    REGISTRY
        .iter()
        .map(|t| {
            format!(
                "{} | {} {} | select={} | assignments={:?} | extra={:?} | restore={:?} | risk={:?} | budget={:?} | backup={}\n",
                t.name,
                t.version.as_str(),
                t.path,
                t.select.join(","),
                t.assignments,
                t.extra_reads,
                t.restore,
                t.risk,
                t.budget,
                t.backup
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_backup_types_are_the_registrys_backup_types() {
        // The API validates schedule scopes against core's list (it cannot see the registry).
        let registry: Vec<&str> = REGISTRY
            .iter()
            .filter(|t| t.backup)
            .map(|t| t.name)
            .collect();
        assert_eq!(registry, tenantops_core::schedule::BACKUP_TYPES);
    }

    #[test]
    fn registry_matches_the_golden_file() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/registry.txt");
        let actual = registry_table();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &actual).expect("writing the golden file");
            return;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            actual, golden,
            "the registry changed: review, then UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn the_registry_covers_at_least_thirty_unique_types() {
        assert!(REGISTRY.len() >= 30);
        let mut names = std::collections::HashSet::new();
        let mut paths = std::collections::HashSet::new();
        for t in REGISTRY {
            assert!(names.insert(t.name), "{} twice", t.name);
            assert!(paths.insert(t.path), "{} twice", t.path);
            assert!(t.select.contains(&"id"), "{} selects no id", t.name);
        }
    }

    #[test]
    fn unknown_types_are_not_found() {
        assert!(ObjectType::named("deviceConfigurations").is_some());
        assert!(ObjectType::named("../../users").is_none());
        assert!(ObjectType::named("DeviceConfigurations").is_none());
    }

    #[test]
    fn list_paths_carry_version_select_and_assignment_expansion() {
        let t = ObjectType::named("deviceConfigurations").expect("registered");
        assert_eq!(
            t.list_path(),
            "v1.0/deviceManagement/deviceConfigurations?$select=id,displayName,description,lastModifiedDateTime,version&$expand=assignments"
        );
    }
}
