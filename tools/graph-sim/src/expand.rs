//! Which navigations `$expand` may name, per collection, and what Graph answers when it does:
//! inline items, a silently empty array, a smaller page, or a 400.
//!
//! `$expand` names a navigation property of the entity
//! (<https://learn.microsoft.com/graph/query-parameters#expand-parameter>: "Not all
//! relationships and resources support the `$expand` query parameter"); the navigations
//! below are the ones the Intune resource pages list as relationships
//! (<https://learn.microsoft.com/graph/api/resources/intune-graph-overview>). A name the entity
//! does not have is refused as Graph's OData layer refuses it, e.g.
//! `400 BadRequest: Parsing OData Select and Expand failed: Could not find a property named
//! 'relationships' on type 'microsoft.graph.deviceManagementConfigurationPolicy'.`
//! (<https://github.com/microsoft/intune-my-macs/issues/41>).

use crate::config::Collection;

/// Entity type and navigations of each simulated collection; a navigation the generator
/// filled for a collection's objects counts too.
const NAVIGATIONS: &[(&str, &str, &[&str])] = &[
    (
        "deviceManagement/deviceConfigurations",
        "deviceConfiguration",
        &["assignments", "deviceStatuses", "userStatuses"],
    ),
    (
        "deviceManagement/configurationPolicies",
        "deviceManagementConfigurationPolicy",
        &["assignments", "settings"],
    ),
    (
        "deviceManagement/deviceCompliancePolicies",
        "deviceCompliancePolicy",
        &["assignments", "scheduledActionsForRule", "deviceStatuses"],
    ),
    (
        "deviceManagement/compliancePolicies",
        "deviceManagementCompliancePolicy",
        &["assignments", "settings", "scheduledActionsForRule"],
    ),
    (
        "deviceManagement/groupPolicyConfigurations",
        "groupPolicyConfiguration",
        &["assignments", "definitionValues"],
    ),
    // The administrative templates' catalog (group_policy.rs).
    // https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicydefinition?view=graph-rest-beta
    (
        "deviceManagement/groupPolicyDefinitions",
        "groupPolicyDefinition",
        &[
            "category",
            "definitionFile",
            "presentations",
            "nextVersionDefinition",
            "previousVersionDefinition",
        ],
    ),
    (
        "deviceManagement/intents",
        "deviceManagementIntent",
        &["assignments", "settings", "categories"],
    ),
    (
        "deviceManagement/deviceManagementScripts",
        "deviceManagementScript",
        &["assignments", "groupAssignments", "deviceRunStates"],
    ),
    (
        "deviceManagement/deviceShellScripts",
        "deviceShellScript",
        &["assignments", "groupAssignments", "deviceRunStates"],
    ),
    (
        "deviceManagement/deviceCustomAttributeShellScripts",
        "deviceCustomAttributeShellScript",
        &["assignments", "groupAssignments", "deviceRunStates"],
    ),
    (
        "deviceManagement/deviceHealthScripts",
        "deviceHealthScript",
        &["assignments", "deviceRunStates"],
    ),
    (
        "deviceManagement/deviceComplianceScripts",
        "deviceComplianceScript",
        &["assignments", "deviceRunStates"],
    ),
    (
        "deviceManagement/deviceEnrollmentConfigurations",
        "deviceEnrollmentConfiguration",
        &["assignments"],
    ),
    (
        "deviceManagement/windowsAutopilotDeploymentProfiles",
        "windowsAutopilotDeploymentProfile",
        &["assignments", "assignedDevices"],
    ),
    (
        "deviceManagement/windowsFeatureUpdateProfiles",
        "windowsFeatureUpdateProfile",
        &["assignments"],
    ),
    (
        "deviceManagement/windowsQualityUpdateProfiles",
        "windowsQualityUpdateProfile",
        &["assignments"],
    ),
    (
        "deviceManagement/windowsDriverUpdateProfiles",
        "windowsDriverUpdateProfile",
        &["assignments", "driverInventories"],
    ),
    // Filters have no assignments of their own (they narrow other objects' assignments).
    (
        "deviceManagement/assignmentFilters",
        "deviceAndAppManagementAssignmentFilter",
        &[],
    ),
    (
        "deviceManagement/roleScopeTags",
        "roleScopeTag",
        &["assignments"],
    ),
    (
        "deviceManagement/reusablePolicySettings",
        "deviceManagementReusablePolicySetting",
        &["referencingConfigurationPolicies"],
    ),
    (
        "deviceAppManagement/iosManagedAppProtections",
        "iosManagedAppProtection",
        &["apps", "assignments", "deploymentSummary"],
    ),
    (
        "deviceAppManagement/androidManagedAppProtections",
        "androidManagedAppProtection",
        &["apps", "assignments", "deploymentSummary"],
    ),
    (
        "deviceAppManagement/windowsManagedAppProtections",
        "windowsManagedAppProtection",
        &["apps", "assignments"],
    ),
    (
        "deviceAppManagement/targetedManagedAppConfigurations",
        "targetedManagedAppConfiguration",
        &["apps", "assignments", "deploymentSummary"],
    ),
    (
        "deviceAppManagement/mobileAppConfigurations",
        "managedDeviceMobileAppConfiguration",
        &["assignments"],
    ),
    (
        "deviceAppManagement/mobileApps",
        "mobileApp",
        &["assignments", "categories"],
    ),
    (
        "deviceAppManagement/policySets",
        "policySet",
        &["assignments", "items"],
    ),
    (
        "deviceManagement/notificationMessageTemplates",
        "notificationMessageTemplate",
        &["localizedNotificationMessages"],
    ),
    (
        "deviceManagement/termsAndConditions",
        "termsAndConditions",
        &["assignments", "acceptanceStatuses"],
    ),
    (
        "deviceManagement/roleDefinitions",
        "roleDefinition",
        &["roleAssignments"],
    ),
];

/// What an `$expand` of one navigation puts into an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// The navigation's items, inline.
    Inline,
    /// An empty array whatever the object holds: Graph answers
    /// `groupPolicyConfigurations?$expand=definitionValues` so
    /// (<https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/1521>); the
    /// values are read from `/definitionValues` instead.
    Empty,
}

/// The entity type's name as Graph's errors spell it.
fn entity(key: &str) -> String {
    NAVIGATIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, entity, _)| (*entity).to_owned())
        .unwrap_or_else(|| crate::generate::singular(key.rsplit('/').next().unwrap_or(key)))
}

/// Whether objects of the collection at `key` have the navigation `name` (even if empty).
pub(crate) fn has_navigation(key: &str, collection: &Collection, name: &str) -> bool {
    NAVIGATIONS
        .iter()
        .any(|(k, _, navs)| *k == key && navs.contains(&name))
        || collection
            .sub_resources
            .keys()
            .any(|k| k.split_once('/').is_some_and(|(_, nav)| nav == name))
}

/// How `$expand={name}` is answered on the collection at `key`: `Err` is the 400's message.
pub(crate) fn expansion(
    key: &str,
    collection: &Collection,
    name: &str,
) -> Result<Expansion, String> {
    if !has_navigation(key, collection, name) {
        return Err(format!(
            "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.{}'.",
            entity(key)
        ));
    }
    if key == "deviceManagement/groupPolicyConfigurations" && name == "definitionValues" {
        return Ok(Expansion::Empty);
    }
    Ok(Expansion::Inline)
}

/// Checks every name of an `$expand` before anything is read, as Graph parses the query
/// first: a refused name is refused whatever page or object is asked for.
pub(crate) fn check(key: &str, collection: &Collection, names: &[String]) -> Result<(), String> {
    names
        .iter()
        .try_for_each(|name| expansion(key, collection, name).map(|_| ()))
}

/// The most objects a list page carries when these navigations are expanded, if fewer than
/// asked. Settings-catalog lists that expand `settings` shrink their pages to fit the
/// payload, whatever `$top` says: about 1 to 2 policies a page on a real tenant (Microsoft
/// documents no figure; observed and written down in the RKSolutions PowerShell module's
/// findings, "`$expand=settings` is hard-capped on cosmos endpoints"). Two a page here.
pub(crate) fn page_cap(key: &str, names: &[String]) -> Option<usize> {
    let catalog = matches!(
        key,
        "deviceManagement/configurationPolicies" | "deviceManagement/compliancePolicies"
    );
    (catalog && names.iter().any(|n| n == "settings")).then_some(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_refuses_a_navigation_the_entity_lacks_with_its_odata_message() {
        let empty = Collection::default();
        assert_eq!(
            expansion("deviceManagement/assignmentFilters", &empty, "assignments"),
            Err("Parsing OData Select and Expand failed: Could not find a property named 'assignments' on type 'microsoft.graph.deviceAndAppManagementAssignmentFilter'.".to_owned())
        );
        assert_eq!(
            expansion("deviceManagement/configurationPolicies", &empty, "settings"),
            Ok(Expansion::Inline)
        );
        assert_eq!(
            expansion(
                "deviceManagement/groupPolicyConfigurations",
                &empty,
                "definitionValues"
            ),
            Ok(Expansion::Empty)
        );
        assert!(expansion("deviceManagement/roleDefinitions", &empty, "assignments").is_err());
    }

    #[test]
    fn only_settings_catalog_lists_expanding_settings_shrink_their_pages() {
        let settings = vec!["settings".to_owned()];
        let assignments = vec!["assignments".to_owned()];
        assert_eq!(
            page_cap("deviceManagement/configurationPolicies", &settings),
            Some(2)
        );
        assert_eq!(
            page_cap("deviceManagement/configurationPolicies", &assignments),
            None
        );
        assert_eq!(page_cap("deviceManagement/intents", &settings), None);
    }
}
