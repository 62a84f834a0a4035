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

// What the product does with each type (backup, restorability, risk, budget) is the object-type
// catalogue's (`tenantops_core::object_type`); this registry adds how Graph reads and writes it.
pub use tenantops_core::object_type::{Budget, ObjectTypeFacts, RestoreMethod, Risk};

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
    /// The catalogue's facts, and copies of the ones every request path reads (taken from
    /// the catalogue at compile time, never declared here).
    pub facts: &'static ObjectTypeFacts,
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
    ($($name:literal => $path:literal, $version:ident, $select:expr, $assign:ident, $extra:expr;)*) => {
        /// The registry, in the catalogue's order. A name missing from the catalogue does not
        /// compile.
        pub const REGISTRY: &[ObjectType] = &[$(ObjectType {
            name: $name,
            path: $path,
            version: ApiVersion::$version,
            select: $select,
            assignments: Assignments::$assign,
            extra_reads: $extra,
            facts: tenantops_core::object_type::facts($name),
            restore: tenantops_core::object_type::facts($name).restore.method(),
            risk: tenantops_core::object_type::facts($name).risk,
            budget: tenantops_core::object_type::facts($name).budget,
            backup: tenantops_core::object_type::facts($name).backup,
        },)*];
    };
}

registry! {
    "deviceConfigurations" => "deviceManagement/deviceConfigurations", V1, VERSIONED, ExpandOnList, &[];
    "configurationPolicies" => "deviceManagement/configurationPolicies", Beta, CATALOG, SubResource, SETTINGS;
    "deviceCompliancePolicies" => "deviceManagement/deviceCompliancePolicies", V1, VERSIONED, ExpandOnList, &[ExtraRead::ExpandOnItem("scheduledActionsForRule($expand=scheduledActionConfigurations)")];
    "compliancePolicies" => "deviceManagement/compliancePolicies", Beta, CATALOG, SubResource, SETTINGS;
    "groupPolicyConfigurations" => "deviceManagement/groupPolicyConfigurations", Beta, NAMED, SubResource, &[ExtraRead::SubCollection("definitionValues?$expand=definition,presentationValues($expand=presentation)")];
    "intents" => "deviceManagement/intents", Beta, NAMED, SubResource, SETTINGS;
    "deviceManagementScripts" => "deviceManagement/deviceManagementScripts", Beta, NAMED, SubResource, SCRIPT;
    "deviceShellScripts" => "deviceManagement/deviceShellScripts", Beta, NAMED, SubResource, SCRIPT;
    "deviceCustomAttributeShellScripts" => "deviceManagement/deviceCustomAttributeShellScripts", Beta, NAMED, SubResource, SCRIPT;
    "deviceHealthScripts" => "deviceManagement/deviceHealthScripts", Beta, NAMED, SubResource, SCRIPT;
    "deviceComplianceScripts" => "deviceManagement/deviceComplianceScripts", Beta, NAMED, SubResource, SCRIPT;
    "deviceEnrollmentConfigurations" => "deviceManagement/deviceEnrollmentConfigurations", V1, VERSIONED, SubResource, &[];
    "windowsAutopilotDeploymentProfiles" => "deviceManagement/windowsAutopilotDeploymentProfiles", Beta, NAMED, SubResource, &[];
    "windowsFeatureUpdateProfiles" => "deviceManagement/windowsFeatureUpdateProfiles", Beta, NAMED, SubResource, &[];
    "windowsQualityUpdateProfiles" => "deviceManagement/windowsQualityUpdateProfiles", Beta, NAMED, SubResource, &[];
    "windowsDriverUpdateProfiles" => "deviceManagement/windowsDriverUpdateProfiles", Beta, NAMED, SubResource, &[];
    "assignmentFilters" => "deviceManagement/assignmentFilters", Beta, NAMED, None, &[];
    "roleScopeTags" => "deviceManagement/roleScopeTags", Beta, NAMED, SubResource, &[];
    "reusablePolicySettings" => "deviceManagement/reusablePolicySettings", Beta, NAMED, None, &[];
    "managedAppPolicies" => "deviceAppManagement/managedAppPolicies", V1, VERSIONED, None, &[];
    "iosManagedAppProtections" => "deviceAppManagement/iosManagedAppProtections", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")];
    "androidManagedAppProtections" => "deviceAppManagement/androidManagedAppProtections", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")];
    "windowsManagedAppProtections" => "deviceAppManagement/windowsManagedAppProtections", Beta, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")];
    "targetedManagedAppConfigurations" => "deviceAppManagement/targetedManagedAppConfigurations", V1, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")];
    "mobileAppConfigurations" => "deviceAppManagement/mobileAppConfigurations", V1, VERSIONED, SubResource, &[];
    "mobileApps" => "deviceAppManagement/mobileApps", V1, NAMED, SubResource, &[];
    "policySets" => "deviceAppManagement/policySets", Beta, NAMED, SubResource, &[ExtraRead::ExpandOnItem("items")];
    "notificationMessageTemplates" => "deviceManagement/notificationMessageTemplates", V1, NAMED, None, &[ExtraRead::ExpandOnItem("localizedNotificationMessages")];
    "termsAndConditions" => "deviceManagement/termsAndConditions", V1, VERSIONED, SubResource, &[];
    "intuneRoleDefinitions" => "deviceManagement/roleDefinitions", V1, NAMED, None, &[ExtraRead::SubCollection("roleAssignments")];
    "conditionalAccessPolicies" => "identity/conditionalAccess/policies", V1, &["id", "displayName", "state", "modifiedDateTime"], None, &[];
    "namedLocations" => "identity/conditionalAccess/namedLocations", V1, &["id", "displayName", "modifiedDateTime"], None, &[];
    "groups" => "groups", V1, &["id", "displayName", "mailNickname", "securityEnabled", "groupTypes"], None, &[];
    "directoryRoleDefinitions" => "roleManagement/directory/roleDefinitions", V1, &["id", "displayName", "description", "isBuiltIn", "isEnabled"], None, &[];
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
    fn the_registry_covers_the_catalogue_in_its_order() {
        let registry: Vec<&str> = REGISTRY.iter().map(|t| t.name).collect();
        let catalogue: Vec<&str> = tenantops_core::object_type::CATALOGUE
            .iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(registry, catalogue);
        let backups: Vec<&str> = REGISTRY
            .iter()
            .filter(|t| t.backup)
            .map(|t| t.name)
            .collect();
        assert_eq!(backups, tenantops_core::object_type::BACKUP_TYPES);
    }

    #[test]
    fn a_type_without_assignments_restores_none() {
        use tenantops_core::object_type::{Restore, Support};
        for t in REGISTRY {
            if let Restore::Supported { assignments, .. } = t.facts.restore {
                let restores_some = matches!(assignments, Support::Yes | Support::Partly(_));
                assert_eq!(
                    restores_some,
                    t.assignments != Assignments::None,
                    "{}: the catalogue's assignments and how Graph reads them disagree",
                    t.name
                );
            }
        }
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
