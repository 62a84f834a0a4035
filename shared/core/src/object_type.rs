//! The object-type catalogue: every Intune and Entra object type tenantops knows, and what
//! the product does with it (backup, restore, risk, throttling budget). It is the one source
//! of those facts: the Graph contract registry (`shared/graph`) adds how each type is read and
//! written and takes these facts from here at compile time; schedules and restores read them
//! here; the README's type table is held to [`catalogue_table`] by a tidy test.

use std::fmt;

/// Which of Microsoft's throttling budgets a type's requests count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Intune: 1,000 requests and 100 writes per 20 s per app per tenant.
    Intune,
    /// Conditional Access: 1 request per second per tenant.
    ConditionalAccess,
    /// Directory (groups, roles): resource units per app per tenant.
    Directory,
}

/// What a wrong restore of the type can break; high-risk types are preview-only unless the
/// workspace enables them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// How a snapshot of the type is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMethod {
    /// POST to the collection to create, PATCH the item to update.
    PostPatch,
    /// Settings-catalog style: POST with settings inline; a PATCH leaves the settings alone.
    PostWithSettings,
    /// Not restorable (read-only inventory).
    NotSupported,
}

/// Whether one part of a restore is done, and why not (or not all of it) when it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Yes,
    Partly(&'static str),
    No(&'static str),
    /// The type has nothing of the kind.
    NotApplicable(&'static str),
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Yes => f.write_str("yes"),
            Support::Partly(why) => write!(f, "partly: {why}"),
            Support::No(why) => write!(f, "no: {why}"),
            Support::NotApplicable(why) => write!(f, "n/a: {why}"),
        }
    }
}

/// What a restore brings back of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    Supported {
        method: RestoreMethod,
        /// An update of an object that still exists (a create always writes everything).
        update: Support,
        assignments: Support,
    },
    /// Not restorable, and why.
    NotSupported(&'static str),
}

impl Restore {
    pub const fn method(self) -> RestoreMethod {
        match self {
            Restore::Supported { method, .. } => method,
            Restore::NotSupported(_) => RestoreMethod::NotSupported,
        }
    }

    pub const fn is_supported(self) -> bool {
        matches!(self, Restore::Supported { .. })
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTypeFacts {
    /// The type's name, as clients, params and the contract registry name it.
    pub name: &'static str,
    pub budget: Budget,
    /// Part of backups (and of the default backup scope).
    pub backup: bool,
    pub risk: Risk,
    pub restore: Restore,
}

const fn supported(update: Support, assignments: Support) -> Restore {
    Restore::Supported {
        method: RestoreMethod::PostPatch,
        update,
        assignments,
    }
}

/// Settings-catalog policies: created with their settings inline, updated by a PUT of the
/// policy with its settings (which replaces them).
const SETTINGS_CATALOG: Restore = Restore::Supported {
    method: RestoreMethod::PostWithSettings,
    update: Support::Yes,
    assignments: Support::Yes,
};

const FULL: Restore = supported(Support::Yes, Support::Yes);
const NO_ASSIGNMENTS: Support = Support::NotApplicable("the type has no assignments");
const UNASSIGNED: Restore = supported(Support::Yes, NO_ASSIGNMENTS);

macro_rules! catalogue {
    ($($name:literal: $budget:ident, backup: $backup:literal, $risk:ident, $restore:expr;)*) => {
        /// The catalogue, in the contract registry's order.
        pub const CATALOGUE: &[ObjectTypeFacts] = &[$(ObjectTypeFacts {
            name: $name,
            budget: Budget::$budget,
            backup: $backup,
            risk: Risk::$risk,
            restore: $restore,
        },)*];
    };
}

catalogue! {
    "deviceConfigurations": Intune, backup: true, Medium, FULL;
    "configurationPolicies": Intune, backup: true, Medium, SETTINGS_CATALOG;
    // Scheduled actions rewritten with `scheduleActionsForRules`.
    "deviceCompliancePolicies": Intune, backup: true, Medium, FULL;
    "compliancePolicies": Intune, backup: true, Medium, SETTINGS_CATALOG;
    // Definition values rewritten with `updateDefinitionValues`.
    "groupPolicyConfigurations": Intune, backup: true, Medium, FULL;
    // Settings rewritten with `updateSettings`.
    "intents": Intune, backup: true, High, FULL;
    "deviceManagementScripts": Intune, backup: true, High, FULL;
    "deviceShellScripts": Intune, backup: true, High, FULL;
    "deviceCustomAttributeShellScripts": Intune, backup: true, High, FULL;
    "deviceHealthScripts": Intune, backup: true, High, FULL;
    "deviceComplianceScripts": Intune, backup: true, High, FULL;
    "deviceEnrollmentConfigurations": Intune, backup: true, High, FULL;
    "windowsAutopilotDeploymentProfiles": Intune, backup: true, Medium, FULL;
    "windowsFeatureUpdateProfiles": Intune, backup: true, Medium, FULL;
    "windowsQualityUpdateProfiles": Intune, backup: true, Medium, FULL;
    "windowsDriverUpdateProfiles": Intune, backup: true, Medium, FULL;
    "assignmentFilters": Intune, backup: true, Low, UNASSIGNED;
    "roleScopeTags": Intune, backup: true, Medium, FULL;
    "reusablePolicySettings": Intune, backup: true, Low, UNASSIGNED;
    "managedAppPolicies": Intune, backup: false, Low, Restore::NotSupported("a read-only listing of every app policy; each platform's type is restored instead");
    "iosManagedAppProtections": Intune, backup: true, Medium, FULL;
    "androidManagedAppProtections": Intune, backup: true, Medium, FULL;
    "windowsManagedAppProtections": Intune, backup: true, Medium, FULL;
    "targetedManagedAppConfigurations": Intune, backup: true, Medium, FULL;
    "mobileAppConfigurations": Intune, backup: true, Medium, FULL;
    "mobileApps": Intune, backup: true, Low, Restore::NotSupported("app content and binaries are not in a backup");
    // Items rewritten with the set's `update` action.
    "policySets": Intune, backup: true, Medium, FULL;
    // Localized messages rewritten one by one (by locale).
    "notificationMessageTemplates": Intune, backup: true, Low, UNASSIGNED;
    "termsAndConditions": Intune, backup: true, Medium, FULL;
    "intuneRoleDefinitions": Intune, backup: true, High, supported(Support::Yes, Support::No("role assignments are backed up but not written back"));
    "conditionalAccessPolicies": ConditionalAccess, backup: true, High, supported(Support::Yes, Support::NotApplicable("targets are conditions inside the policy, written with it"));
    "namedLocations": ConditionalAccess, backup: true, Medium, UNASSIGNED;
    "groups": Directory, backup: false, Low, Restore::NotSupported("directory objects are cached for mapping, not backed up");
    "directoryRoleDefinitions": Directory, backup: false, Low, Restore::NotSupported("directory objects are cached for mapping, not backed up");
}

const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The facts of a type known at compile time; a name missing from the catalogue stops the
/// build (the contract registry declares its entries through this).
pub const fn facts(name: &str) -> &'static ObjectTypeFacts {
    let mut i = 0;
    while i < CATALOGUE.len() {
        if same_name(CATALOGUE[i].name, name) {
            return &CATALOGUE[i];
        }
        i += 1;
    }
    panic!("an object type missing from the catalogue")
}

const BACKUP_COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < CATALOGUE.len() {
        if CATALOGUE[i].backup {
            n += 1;
        }
        i += 1;
    }
    n
};

const BACKUP_NAMES: [&str; BACKUP_COUNT] = {
    let mut out = [""; BACKUP_COUNT];
    let (mut n, mut i) = (0, 0);
    while i < CATALOGUE.len() {
        if CATALOGUE[i].backup {
            out[n] = CATALOGUE[i].name;
            n += 1;
        }
        i += 1;
    }
    out
};

/// Every object type a backup covers by default, in catalogue order.
pub const BACKUP_TYPES: &[&str] = &BACKUP_NAMES;

impl ObjectTypeFacts {
    /// Looks a type up by name; unknown names are `None` (and must fail safe).
    pub fn named(name: &str) -> Option<&'static ObjectTypeFacts> {
        CATALOGUE.iter().find(|t| t.name == name)
    }
}

/// The catalogue as a Markdown table: the README's object-type table, held to it by a test.
pub fn catalogue_table() -> String {
    let mut out = String::from(
        "| type | backup | restore: create | restore: update in place | restore: assignments | risk | budget |\n\
         |---|---|---|---|---|---|---|\n",
    );
    // An unrestorable type's update and assignment cells are empty: its create cell says why.
    let cell = |s: Option<Support>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
    for t in CATALOGUE {
        let (create, update, assignments) = match t.restore {
            Restore::Supported {
                update,
                assignments,
                ..
            } => (Support::Yes, Some(update), Some(assignments)),
            Restore::NotSupported(why) => (Support::No(why), None, None),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {:?} | {:?} |\n",
            t.name,
            if t.backup { "yes" } else { "no" },
            create,
            cell(update),
            cell(assignments),
            t.risk,
            t.budget,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for t in CATALOGUE {
            assert!(seen.insert(t.name), "{} twice", t.name);
            assert_eq!(ObjectTypeFacts::named(t.name), Some(t));
            assert_eq!(facts(t.name), t);
        }
        assert!(ObjectTypeFacts::named("DeviceConfigurations").is_none());
    }

    #[test]
    fn backup_types_are_the_catalogues_backup_entries_in_order() {
        let expected: Vec<&str> = CATALOGUE
            .iter()
            .filter(|t| t.backup)
            .map(|t| t.name)
            .collect();
        assert_eq!(BACKUP_TYPES, expected.as_slice());
        assert!(BACKUP_TYPES.contains(&"deviceConfigurations"));
        assert!(!BACKUP_TYPES.contains(&"groups"));
    }

    #[test]
    fn every_unrestorable_type_says_why() {
        for t in CATALOGUE {
            if let Restore::NotSupported(why) = t.restore {
                assert!(!why.is_empty(), "{}", t.name);
            }
        }
    }
}
