//! What Microsoft Graph requires of a write's body, beyond its query options (`options.rs`):
//! a create in a collection of an abstract (polymorphic) type names the concrete type it
//! creates in `@odata.type`. Graph cannot create an instance of the abstract base type, and
//! answers `400 BadRequest` ("Cannot create an abstract class.") when the body has none, and
//! ASP.NET OData's "A type named '...' could not be resolved by the model" when it names no
//! type the model knows (e.g. a misspelt or un-prefixed name).
//!
//! One rule per collection, each with the reference page whose "Request body" section says
//! to include the `@odata.type` of the derived type. A collection this table does not know is
//! not checked.

/// A collection of an abstract type: its path (without version), the abstract base type's
/// name, and the page documenting the create.
struct Polymorphic {
    path: &'static str,
    base: &'static str,
    #[allow(dead_code)] // read by people: the rule's source
    doc: &'static str,
}

const POLYMORPHIC: &[Polymorphic] = &[
    Polymorphic {
        path: "deviceManagement/deviceConfigurations",
        base: "deviceConfiguration",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-deviceconfig-windows10generalconfiguration-create",
    },
    Polymorphic {
        path: "deviceManagement/deviceCompliancePolicies",
        base: "deviceCompliancePolicy",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-deviceconfig-windows10compliancepolicy-create",
    },
    Polymorphic {
        path: "deviceManagement/deviceEnrollmentConfigurations",
        base: "deviceEnrollmentConfiguration",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-onboarding-deviceenrollmentlimitconfiguration-create",
    },
    Polymorphic {
        path: "deviceManagement/windowsAutopilotDeploymentProfiles",
        base: "windowsAutopilotDeploymentProfile",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-enrollment-azureadwindowsautopilotdeploymentprofile-create",
    },
    Polymorphic {
        path: "deviceAppManagement/mobileApps",
        base: "mobileApp",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-apps-win32lobapp-create",
    },
    Polymorphic {
        path: "deviceAppManagement/mobileAppConfigurations",
        base: "managedDeviceMobileAppConfiguration",
        doc: "https://learn.microsoft.com/en-us/graph/api/intune-apps-iosmobileappconfiguration-create",
    },
    Polymorphic {
        path: "deviceAppManagement/managedAppPolicies",
        base: "managedAppPolicy",
        doc: "https://learn.microsoft.com/en-us/graph/api/resources/intune-mam-managedapppolicy",
    },
    Polymorphic {
        path: "identity/conditionalAccess/namedLocations",
        base: "namedLocation",
        doc: "https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-post-namedlocations",
    },
];

/// Checks a create's body (a POST to collection `key`, the path without version): `Err` is
/// the message of Graph's 400 (code `BadRequest`).
pub(crate) fn check_create(
    key: &str,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let Some(rule) = POLYMORPHIC.iter().find(|p| p.path == key) else {
        return Ok(());
    };
    let Some(named) = body.get("@odata.type") else {
        return Err("Cannot create an abstract class.".to_owned());
    };
    let named = named.as_str().unwrap_or_default();
    // Graph takes the name with or without its leading `#`, always namespace-qualified.
    let name = named.trim_start_matches('#');
    let Some(leaf) = name.strip_prefix("microsoft.graph.") else {
        return Err(unresolved(named));
    };
    if leaf.is_empty() || !leaf.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(unresolved(named));
    }
    if leaf == rule.base {
        return Err("Cannot create an abstract class.".to_owned());
    }
    Ok(())
}

fn unresolved(named: &str) -> String {
    format!(
        "A type named '{named}' could not be resolved by the model. When a model is available, each type name must resolve to a valid type."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_polymorphic_create_names_a_concrete_type() {
        let key = "deviceManagement/deviceConfigurations";
        assert!(
            check_create(
                key,
                &body(json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration"}))
            )
            .is_ok()
        );
        assert!(
            check_create(
                key,
                &body(json!({"@odata.type": "microsoft.graph.windows10GeneralConfiguration"}))
            )
            .is_ok()
        );
        assert_eq!(
            check_create(key, &body(json!({"displayName": "x"}))),
            Err("Cannot create an abstract class.".to_owned())
        );
        assert!(
            check_create(
                key,
                &body(json!({"@odata.type": "#microsoft.graph.deviceConfiguration"}))
            )
            .is_err()
        );
        let bad = check_create(
            key,
            &body(json!({"@odata.type": "windows10GeneralConfiguration"})),
        );
        assert!(bad.is_err_and(|m| m.contains("could not be resolved")));
        assert!(check_create(key, &body(json!({"@odata.type": 7}))).is_err());
    }

    #[test]
    fn other_collections_are_not_checked() {
        assert!(check_create("deviceManagement/configurationPolicies", &Map::new()).is_ok());
    }
}
