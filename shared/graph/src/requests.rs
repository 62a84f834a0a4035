//! Every Graph request path the worker builds, built here once: the backup's item reads and
//! sub-collections, a restore's writes, the connection check's probes, the groups delta and
//! the audit log a drift check reads.
//! The worker calls these, and so does the walk test (`tests/it/graph_queries.rs`) that sends
//! each of them to graph-sim's model of the query options Microsoft documents, so the two
//! cannot drift apart.

use crate::registry::{Assignments, Budget, ExtraRead, ObjectType};

/// (permission, budget, probe): the smallest read that needs each permission, as
/// `provider_connection.verify` sends them.
pub const PERMISSION_PROBES: &[(&str, Budget, &str)] = &[
    (
        "DeviceManagementConfiguration.Read.All",
        Budget::Intune,
        "v1.0/deviceManagement/deviceConfigurations?$top=1&$select=id",
    ),
    (
        "DeviceManagementApps.Read.All",
        Budget::Intune,
        "v1.0/deviceAppManagement/mobileApps?$top=1&$select=id",
    ),
    (
        "DeviceManagementRBAC.Read.All",
        Budget::Intune,
        "v1.0/deviceManagement/roleDefinitions?$top=1&$select=id",
    ),
    (
        "Group.Read.All",
        Budget::Directory,
        "v1.0/groups?$top=1&$select=id",
    ),
    // Graph refuses `$top` here (400 "Query option 'Top' is not allowed"): the list supports
    // only `$filter` on id, displayName and isBuiltIn (eq, in) and `$expand`, per
    // https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions (optional
    // query parameters). One built-in role by name is the smallest answer it allows.
    (
        "RoleManagement.Read.Directory",
        Budget::Directory,
        "v1.0/roleManagement/directory/roleDefinitions?$filter=displayName eq 'Global Reader'",
    ),
    (
        "Policy.Read.All",
        Budget::ConditionalAccess,
        "v1.0/identity/conditionalAccess/policies?$top=1&$select=id",
    ),
];

/// The group fields a groups sync keeps (the registry's `groups` entry selects the same).
pub const GROUP_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
];

/// The first request of a full groups sync; Graph's own links follow it.
pub fn groups_delta_path() -> String {
    format!("v1.0/groups/delta?$select={}", GROUP_FIELDS.join(","))
}

/// Intune's audit log of changes made in `(since, until]`, for who changed what a drift check
/// found (https://learn.microsoft.com/en-us/graph/api/intune-auditing-auditevent-list; read
/// with `DeviceManagementApps.Read.All`). The page documents no filter on the changed
/// resource, so the window is Graph's filter (on `activityDateTime`, as the Intune portal's
/// own) and the worker matches `resources[].resourceId` itself.
pub fn audit_events_path(
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> String {
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let filter = format!(
        "activityDateTime gt {} and activityDateTime le {}",
        at(since),
        at(until)
    );
    format!(
        "v1.0/deviceManagement/auditEvents?$filter={}",
        encode_query(&filter)
    )
}

/// Collections whose list takes no `$select`: the directory's role definitions list takes
/// only `$filter` and `$expand`
/// (https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions, "Optional
/// query parameters"), so the inventory reads it whole and keeps the selected fields itself.
const LISTS_WITHOUT_SELECT: &[&str] = &["roleManagement/directory/roleDefinitions"];

/// The navigation an `$expand` (or sub-collection) names: `presentationValues($expand=..)`
/// and `definitionValues?$expand=..` are `presentationValues` and `definitionValues`.
pub fn navigation_name(expr: &str) -> &str {
    expr.split(['(', '?']).next().unwrap_or(expr)
}

/// Percent-encodes a query value (everything but unreserved characters and `'`).
pub fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'\'' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ObjectType {
    /// Whether the type's list takes `$select` (see `LISTS_WITHOUT_SELECT`).
    pub(crate) fn list_takes_select(&self) -> bool {
        !LISTS_WITHOUT_SELECT.contains(&self.path)
    }

    /// The collection, where a create is POSTed.
    pub fn collection_path(&self) -> String {
        format!("{}/{}", self.version.as_str(), self.path)
    }

    /// One object: its PATCH, its DELETE, its plain GET.
    pub fn item_path(&self, id: &str) -> String {
        format!("{}/{id}", self.collection_path())
    }

    /// The object's own GET a full backup makes, with the `$expand`s the registry asks for;
    /// `None` when the list's answer is enough.
    pub fn item_read_path(&self, id: &str) -> Option<String> {
        let mut expand: Vec<&str> = self
            .extra_reads
            .iter()
            .filter_map(|r| match r {
                ExtraRead::ExpandOnItem(e) => Some(*e),
                _ => None,
            })
            .collect();
        if self.assignments == Assignments::ExpandPerItem {
            expand.push("assignments");
        }
        if expand.is_empty() && !self.extra_reads.contains(&ExtraRead::ItemContent) {
            return None;
        }
        let mut path = self.item_path(id);
        if !expand.is_empty() {
            path.push_str("?$expand=");
            path.push_str(&expand.join(","));
        }
        Some(path)
    }

    /// The paged sub-collections a full backup reads below one object, in order, each as
    /// (the navigation it fills, its path): the registry's extra reads, then assignments
    /// where they are a separate read.
    pub fn sub_collection_paths(&self, id: &str) -> Vec<(&'static str, String)> {
        let mut paths: Vec<(&'static str, String)> = self
            .extra_reads
            .iter()
            .filter_map(|r| match r {
                ExtraRead::SubCollection(sub) => Some((
                    navigation_name(sub),
                    format!("{}/{sub}", self.item_path(id)),
                )),
                _ => None,
            })
            .collect();
        if self.assignments == Assignments::SubResource {
            paths.push(("assignments", format!("{}/assignments", self.item_path(id))));
        }
        paths
    }

    /// Intune's `assign` action, which replaces an object's assignments.
    pub fn assign_path(&self, id: &str) -> String {
        format!("{}/assign", self.item_path(id))
    }

    /// An administrative template's definition values (listed, POSTed one by one; a value is
    /// deleted at `{this}/{value id}`).
    pub fn definition_values_path(&self, id: &str) -> String {
        format!("{}/definitionValues", self.item_path(id))
    }

    /// The type's objects named `name` in `name_field` (`displayName` or `name`): how a
    /// restore finds the object an earlier attempt created.
    pub fn named_path(&self, name_field: &str, name: &str) -> String {
        let filter = format!("{name_field} eq '{}'", name.replace('\'', "''"));
        format!(
            "{}?$filter={}",
            self.collection_path(),
            encode_query(&filter)
        )
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query("displayName eq 'A&B #1'"),
            "displayName%20eq%20'A%26B%20%231'"
        );
    }

    #[test]
    fn navigation_names_drop_query_options() {
        assert_eq!(
            navigation_name("definitionValues?$expand=definition"),
            "definitionValues"
        );
        assert_eq!(
            navigation_name("scheduledActionsForRule($expand=scheduledActionConfigurations)"),
            "scheduledActionsForRule"
        );
        assert_eq!(navigation_name("settings"), "settings");
    }

    #[test]
    fn item_reads_sub_collections_and_writes_are_the_registrys() {
        let cp = ObjectType::named("compliancePolicies").expect("registered");
        assert_eq!(cp.item_read_path("p"), None);
        assert_eq!(
            cp.sub_collection_paths("p"),
            vec![
                (
                    "settings",
                    "beta/deviceManagement/compliancePolicies/p/settings?$top=1000".to_owned()
                ),
                (
                    "assignments",
                    "beta/deviceManagement/compliancePolicies/p/assignments".to_owned()
                ),
            ]
        );
        let ios = ObjectType::named("iosManagedAppProtections").expect("registered");
        assert_eq!(
            ios.item_read_path("i").as_deref(),
            Some("v1.0/deviceAppManagement/iosManagedAppProtections/i?$expand=apps,assignments")
        );
        let script = ObjectType::named("deviceShellScripts").expect("registered");
        assert_eq!(
            script.item_read_path("s").as_deref(),
            Some("beta/deviceManagement/deviceShellScripts/s")
        );
        assert_eq!(
            script.named_path("displayName", "It's"),
            "beta/deviceManagement/deviceShellScripts?$filter=displayName%20eq%20'It''s'"
        );
        assert_eq!(
            script.assign_path("s"),
            "beta/deviceManagement/deviceShellScripts/s/assign"
        );
        let roles = ObjectType::named("directoryRoleDefinitions").expect("registered");
        assert_eq!(
            roles.list_path(),
            "v1.0/roleManagement/directory/roleDefinitions"
        );
        assert_eq!(
            groups_delta_path(),
            format!(
                "v1.0/groups/delta?$select={}",
                ObjectType::named("groups")
                    .expect("registered")
                    .select
                    .join(",")
            )
        );
    }
}
