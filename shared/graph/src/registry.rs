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
// Settings-catalog settings: the policy's own `/settings` list, 1,000 a page (the Intune
// portal's own read), so one request reads a policy of up to 1,000 settings where the default
// page of 25 took several. Not `$expand=settings` on the list: Intune then shrinks the list's
// pages to fit the payload (about 1 to 2 policies a page, whatever `$top` says), and a type's
// pages are read one after another while per-policy reads run side by side.
// https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationsetting-list?view=graph-rest-beta
const CATALOG_SETTINGS: &[ExtraRead] = &[ExtraRead::SubCollection("settings?$top=1000")];
const SETTINGS: &[ExtraRead] = &[ExtraRead::SubCollection("settings")];
// Script bodies (`scriptContent`, `detectionScriptContent`, `remediationScriptContent`) are
// null in list answers and come only with the script's own GET, so each script is read once
// by id; `$expand` cannot carry them (they are properties, not navigations). Microsoft's
// reference does not say so; observed: https://github.com/Micke-K/IntuneManagement/issues/100
// ("only available when a single object is retrieved").
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

// How each type is read for a backup. `ExpandOnList` puts `$expand=assignments` on the list
// (`assignments` is a navigation of each of these types, and `$expand` reads a navigation
// inline: https://learn.microsoft.com/graph/query-parameters#expand-parameter); the URL
// beside each says where Microsoft (or, marked "known", well-used public tooling) reads the
// type that way. A type without such a source keeps its separate reads.
registry! {
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Filters/AssociatedFilter_Get.ps1 (deviceConfigurations?$expand=assignments)
    "deviceConfigurations" => "deviceManagement/deviceConfigurations", V1, VERSIONED, ExpandOnList, &[];
    // On the list, not per item: expanding a single policy's assignments comes back empty for
    // endpoint-security templates, the list's are right:
    // https://github.com/microsoftgraph/msgraph-sdk-powershell/issues/3337
    "configurationPolicies" => "deviceManagement/configurationPolicies", Beta, CATALOG, ExpandOnList, CATALOG_SETTINGS;
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Filters/AssociatedFilter_Get.ps1 (list), and the
    // per-item expand of scheduledActionsForRule: https://github.com/microsoftgraph/powershell-intune-samples/blob/master/RBAC/RBAC_ScopeTags_PolicyAssign.ps1
    "deviceCompliancePolicies" => "deviceManagement/deviceCompliancePolicies", V1, VERSIONED, ExpandOnList, &[ExtraRead::ExpandOnItem("scheduledActionsForRule($expand=scheduledActionConfigurations)")];
    // No source reads this list with `$expand=assignments`: assignments stay a separate read.
    "compliancePolicies" => "deviceManagement/compliancePolicies", Beta, CATALOG, SubResource, CATALOG_SETTINGS;
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Filters/AssociatedFilter_Get.ps1 (groupPolicyConfigurations?$expand=assignments).
    // Definition values stay a sub-collection: `$expand=definitionValues` answers an empty
    // array (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/1521).
    "groupPolicyConfigurations" => "deviceManagement/groupPolicyConfigurations", Beta, NAMED, ExpandOnList, &[ExtraRead::SubCollection("definitionValues?$expand=definition,presentationValues($expand=presentation)")];
    // No source reads the (legacy) intents list with `$expand`: separate reads.
    "intents" => "deviceManagement/intents", Beta, NAMED, SubResource, SETTINGS;
    // Known: deviceManagementScripts?$expand=assignments (Microsoft's sample expands the list's
    // older navigation, groupAssignments:
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/DeviceConfiguration/DeviceManagementScripts_Get.ps1).
    // The body still needs the script's own GET (see SCRIPT).
    "deviceManagementScripts" => "deviceManagement/deviceManagementScripts", Beta, NAMED, ExpandOnList, SCRIPT;
    // Known: deviceShellScripts?$expand=assignments.
    "deviceShellScripts" => "deviceManagement/deviceShellScripts", Beta, NAMED, ExpandOnList, SCRIPT;
    // No source: separate reads.
    "deviceCustomAttributeShellScripts" => "deviceManagement/deviceCustomAttributeShellScripts", Beta, NAMED, SubResource, SCRIPT;
    // Known: deviceHealthScripts?$expand=assignments (remediations).
    "deviceHealthScripts" => "deviceManagement/deviceHealthScripts", Beta, NAMED, ExpandOnList, SCRIPT;
    // No source: separate reads.
    "deviceComplianceScripts" => "deviceManagement/deviceComplianceScripts", Beta, NAMED, SubResource, SCRIPT;
    // Known: deviceEnrollmentConfigurations?$expand=assignments (enrollment restrictions, ESP).
    "deviceEnrollmentConfigurations" => "deviceManagement/deviceEnrollmentConfigurations", V1, VERSIONED, ExpandOnList, &[];
    // Known: windowsAutopilotDeploymentProfiles?$expand=assignments.
    "windowsAutopilotDeploymentProfiles" => "deviceManagement/windowsAutopilotDeploymentProfiles", Beta, NAMED, ExpandOnList, &[];
    // Known: windowsFeatureUpdateProfiles?$expand=assignments.
    "windowsFeatureUpdateProfiles" => "deviceManagement/windowsFeatureUpdateProfiles", Beta, NAMED, ExpandOnList, &[];
    // No source for the quality and driver update profiles: separate reads.
    "windowsQualityUpdateProfiles" => "deviceManagement/windowsQualityUpdateProfiles", Beta, NAMED, SubResource, &[];
    "windowsDriverUpdateProfiles" => "deviceManagement/windowsDriverUpdateProfiles", Beta, NAMED, SubResource, &[];
    "assignmentFilters" => "deviceManagement/assignmentFilters", Beta, NAMED, None, &[];
    "roleScopeTags" => "deviceManagement/roleScopeTags", Beta, NAMED, SubResource, &[];
    "reusablePolicySettings" => "deviceManagement/reusablePolicySettings", Beta, NAMED, None, &[];
    "managedAppPolicies" => "deviceAppManagement/managedAppPolicies", V1, VERSIONED, None, &[];
    // Each protection is read by id anyway (for its apps): its assignments come with that GET,
    // as in Microsoft's sample (`$expand=deploymentSummary,apps,assignments`):
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/AppProtectionPolicy/ManagedAppPolicy_Get.ps1
    "iosManagedAppProtections" => "deviceAppManagement/iosManagedAppProtections", V1, VERSIONED, ExpandPerItem, &[ExtraRead::ExpandOnItem("apps")];
    "androidManagedAppProtections" => "deviceAppManagement/androidManagedAppProtections", V1, VERSIONED, ExpandPerItem, &[ExtraRead::ExpandOnItem("apps")];
    // No source for Windows protections: separate reads.
    "windowsManagedAppProtections" => "deviceAppManagement/windowsManagedAppProtections", Beta, VERSIONED, SubResource, &[ExtraRead::ExpandOnItem("apps")];
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Applications/MobileAppConfiguration_Get.ps1 (`('{id}')?$expand=apps,assignments`)
    "targetedManagedAppConfigurations" => "deviceAppManagement/targetedManagedAppConfigurations", V1, VERSIONED, ExpandPerItem, &[ExtraRead::ExpandOnItem("apps")];
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Applications/MobileAppConfiguration_Get.ps1 (mobileAppConfigurations?$expand=assignments)
    "mobileAppConfigurations" => "deviceAppManagement/mobileAppConfigurations", V1, VERSIONED, ExpandOnList, &[];
    // https://github.com/microsoftgraph/powershell-intune-samples/blob/master/Filters/AssociatedFilter_Get.ps1 (mobileApps?$expand=assignments)
    "mobileApps" => "deviceAppManagement/mobileApps", V1, NAMED, ExpandOnList, &[];
    // No source for policy sets, terms and conditions, notification templates, role
    // definitions and scope tags: their reads are unchanged.
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

    /// The inventory's list URL path (version and collection) with its `$select`, where the
    /// list takes one (`requests.rs`). No `$expand`: the inventory keeps only the selected
    /// fields, so expanded assignments would only make its pages heavier.
    pub fn list_path(&self) -> String {
        if !self.list_takes_select() {
            return self.collection_path();
        }
        format!(
            "{}?$select={}",
            self.collection_path(),
            self.select.join(",")
        )
    }

    /// The backup's list URL path: every property (no `$select`), and assignments inline
    /// where the registry reads them on the list.
    pub fn backup_list_path(&self) -> String {
        let mut path = format!("{}/{}", self.version.as_str(), self.path);
        if self.assignments == Assignments::ExpandOnList {
            path.push_str("?$expand=assignments");
        }
        path
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
    fn inventory_lists_select_and_backup_lists_expand_assignments_where_the_list_can() {
        let t = ObjectType::named("deviceConfigurations").expect("registered");
        assert_eq!(
            t.list_path(),
            "v1.0/deviceManagement/deviceConfigurations?$select=id,displayName,description,lastModifiedDateTime,version"
        );
        assert_eq!(
            t.backup_list_path(),
            "v1.0/deviceManagement/deviceConfigurations?$expand=assignments"
        );
        let tags = ObjectType::named("roleScopeTags").expect("registered");
        assert_eq!(
            tags.backup_list_path(),
            "beta/deviceManagement/roleScopeTags"
        );
    }
}
