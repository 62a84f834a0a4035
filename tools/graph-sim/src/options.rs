//! Which OData query options each endpoint tenantops calls accepts, as Microsoft's reference
//! pages document them, and Graph's 400 for any other: one table, one rule per endpoint
//! (collection list, item GET, the sub-collections read below an item, delta, writes), each
//! with the page it comes from.
//!
//! Graph validates the options before it reads anything, so a refused option is refused on
//! an empty collection too. It answers ASP.NET OData's validation messages:
//! `Query option 'Top' is not allowed. To allow it, set the 'AllowedQueryOptions' property on
//! EnableQueryAttribute or QueryValidationSettings.` (seen on
//! `roleManagement/directory/roleDefinitions?$top=1`, issue 13), and for a collection-only
//! option on a single entity `The query specified in the URI is not valid. The requested
//! resource is not a collection. ...`.
//!
//! How the pages are read:
//! - Where a page lists the options ("This method supports the `$filter` ... and `$expand`"),
//!   exactly those (and the paging tokens Graph itself puts in its links).
//! - Intune's pages say only "This method supports the OData Query Parameters to help
//!   customize the response" (some, like the settings-catalog `/settings` list, have no such
//!   section at all). They are modelled as what Intune's lists are known to take: `$select`,
//!   `$expand`, `$filter`, `$top` and the `$skiptoken` of their nextLinks on a list; `$select`
//!   and `$expand` on one object. `$orderby`, `$count`, `$skip` and `$search` are refused
//!   there: no tenantops request may rest on what no page promises.
//! - Creates, updates, deletes and actions (`assign`) carry a body: none of their pages has an
//!   "Optional query parameters" section, so no option is accepted.
//!
//! A path this table does not know is not checked (tests add collections of their own); the
//! walk test in `tests/it/graph_queries.rs` holds every request the worker makes to a rule
//! here ([`documented`]).

/// An OData system query option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    Select,
    Expand,
    Filter,
    OrderBy,
    Top,
    Skip,
    Count,
    Search,
    SkipToken,
    DeltaToken,
}

use Opt::*;

impl Opt {
    const ALL: [Opt; 10] = [
        Select, Expand, Filter, OrderBy, Top, Skip, Count, Search, SkipToken, DeltaToken,
    ];

    /// As OData's `AllowedQueryOptions` spells it, which Graph's message repeats.
    fn name(self) -> &'static str {
        match self {
            Select => "Select",
            Expand => "Expand",
            Filter => "Filter",
            OrderBy => "OrderBy",
            Top => "Top",
            Skip => "Skip",
            Count => "Count",
            Search => "Search",
            SkipToken => "SkipToken",
            DeltaToken => "DeltaToken",
        }
    }

    /// The option a query key names; Graph takes them with or without the `$`, in any case.
    fn of(key: &str) -> Option<Opt> {
        let bare = key.trim_start_matches('$');
        Opt::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(bare))
    }

    /// Options that only a collection can take.
    fn collection_only(self) -> bool {
        matches!(self, Filter | OrderBy | Count | Skip | Top)
    }
}

/// An endpoint's accepted options and the page that documents them.
type Rule = (&'static [Opt], &'static str);

/// Intune lists (collections and the sub-collections below an object); see the module docs.
const INTUNE_LIST: &[Opt] = &[Select, Expand, Filter, Top, SkipToken];
/// One Intune object by id.
const INTUNE_ITEM: &[Opt] = &[Select, Expand];

/// Writes: creates (POST on a collection or a navigation), PATCH, DELETE and actions. Their
/// pages document a request body and no optional query parameters, e.g.
/// https://learn.microsoft.com/graph/api/intune-deviceconfig-deviceconfiguration-assign?view=graph-rest-1.0
/// https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicy-update?view=graph-rest-beta
/// https://learn.microsoft.com/graph/api/conditionalaccesspolicy-update?view=graph-rest-1.0
const WRITES: Rule = (
    &[],
    "https://learn.microsoft.com/graph/api/intune-deviceconfig-deviceconfiguration-assign?view=graph-rest-1.0",
);

/// One collection's endpoints.
struct Endpoint {
    /// The collection path without version.
    collection: &'static str,
    list: Rule,
    item: Rule,
    /// Navigation collections read below one object: (navigation, rule).
    subs: &'static [(&'static str, Rule)],
    /// `GET {collection}/delta`, where the collection has one.
    delta: Option<Rule>,
}

macro_rules! intune {
    ($collection:literal, $list:literal, $item:literal, [$($nav:literal => $doc:literal),* $(,)?]) => {
        Endpoint {
            collection: $collection,
            list: (INTUNE_LIST, $list),
            item: (INTUNE_ITEM, $item),
            subs: &[$(($nav, (INTUNE_LIST, $doc))),*],
            delta: None,
        }
    };
}

/// Every collection of the contract registry (`shared/graph/src/registry.rs`), in its order.
const ENDPOINTS: &[Endpoint] = &[
    intune!(
        "deviceManagement/deviceConfigurations",
        "https://learn.microsoft.com/graph/api/intune-deviceconfig-deviceconfiguration-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-deviceconfig-deviceconfiguration-get?view=graph-rest-1.0",
        []
    ),
    // `/settings` has no "Optional query parameters" section; the Intune portal reads it
    // `?$top=1000` (see the registry's CATALOG_SETTINGS).
    intune!(
        "deviceManagement/configurationPolicies",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicy-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicy-get?view=graph-rest-beta",
        ["settings" => "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationsetting-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/deviceCompliancePolicies",
        "https://learn.microsoft.com/graph/api/intune-deviceconfig-devicecompliancepolicy-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-deviceconfig-devicecompliancepolicy-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceManagement/compliancePolicies",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementcompliancepolicy-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementcompliancepolicy-get?view=graph-rest-beta",
        [
            "settings" => "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationsetting-list?view=graph-rest-beta",
            "assignments" => "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicyassignment-list?view=graph-rest-beta",
        ]
    ),
    intune!(
        "deviceManagement/groupPolicyConfigurations",
        "https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-get?view=graph-rest-beta",
        ["definitionValues" => "https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinitionvalue-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/intents",
        "https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementintent-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementintent-get?view=graph-rest-beta",
        [
            "settings" => "https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementsettinginstance-list?view=graph-rest-beta",
            "assignments" => "https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementintentassignment-list?view=graph-rest-beta",
        ]
    ),
    intune!(
        "deviceManagement/deviceManagementScripts",
        "https://learn.microsoft.com/graph/api/intune-devices-devicemanagementscript-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-devices-devicemanagementscript-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/deviceShellScripts",
        "https://learn.microsoft.com/graph/api/intune-devices-deviceshellscript-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-devices-deviceshellscript-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/deviceCustomAttributeShellScripts",
        "https://learn.microsoft.com/graph/api/intune-devices-devicecustomattributeshellscript-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-devices-devicecustomattributeshellscript-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-devices-devicemanagementscriptassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/deviceHealthScripts",
        "https://learn.microsoft.com/graph/api/intune-devices-devicehealthscript-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-devices-devicehealthscript-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/deviceComplianceScripts",
        "https://learn.microsoft.com/graph/api/intune-devices-devicecompliancescript-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-devices-devicecompliancescript-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-devices-devicehealthscriptassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/deviceEnrollmentConfigurations",
        "https://learn.microsoft.com/graph/api/intune-onboarding-deviceenrollmentconfiguration-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-onboarding-deviceenrollmentconfiguration-get?view=graph-rest-1.0",
        []
    ),
    // The collection is abstract; its pages are the Azure AD join profile's.
    intune!(
        "deviceManagement/windowsAutopilotDeploymentProfiles",
        "https://learn.microsoft.com/graph/api/intune-enrollment-azureadwindowsautopilotdeploymentprofile-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-enrollment-azureadwindowsautopilotdeploymentprofile-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/windowsFeatureUpdateProfiles",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsfeatureupdateprofile-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsfeatureupdateprofile-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/windowsQualityUpdateProfiles",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsqualityupdateprofile-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsqualityupdateprofile-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsqualityupdateprofileassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/windowsDriverUpdateProfiles",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsdriverupdateprofile-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsdriverupdateprofile-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-softwareupdate-windowsdriverupdateprofileassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/assignmentFilters",
        "https://learn.microsoft.com/graph/api/intune-policyset-deviceandappmanagementassignmentfilter-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-policyset-deviceandappmanagementassignmentfilter-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceManagement/roleScopeTags",
        "https://learn.microsoft.com/graph/api/intune-rbac-rolescopetag-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-rbac-rolescopetag-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-rbac-rolescopetagautoassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/reusablePolicySettings",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementreusablepolicysetting-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementreusablepolicysetting-get?view=graph-rest-beta",
        []
    ),
    intune!(
        "deviceAppManagement/managedAppPolicies",
        "https://learn.microsoft.com/graph/api/intune-mam-managedapppolicy-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-mam-managedapppolicy-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/iosManagedAppProtections",
        "https://learn.microsoft.com/graph/api/intune-mam-iosmanagedappprotection-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-mam-iosmanagedappprotection-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/androidManagedAppProtections",
        "https://learn.microsoft.com/graph/api/intune-mam-androidmanagedappprotection-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-mam-androidmanagedappprotection-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/windowsManagedAppProtections",
        "https://learn.microsoft.com/graph/api/intune-mam-windowsmanagedappprotection-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-mam-windowsmanagedappprotection-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-mam-targetedmanagedapppolicyassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceAppManagement/targetedManagedAppConfigurations",
        "https://learn.microsoft.com/graph/api/intune-mam-targetedmanagedappconfiguration-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-mam-targetedmanagedappconfiguration-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/mobileAppConfigurations",
        "https://learn.microsoft.com/graph/api/intune-apps-manageddevicemobileappconfiguration-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-apps-manageddevicemobileappconfiguration-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/mobileApps",
        "https://learn.microsoft.com/graph/api/intune-apps-mobileapp-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-apps-mobileapp-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceAppManagement/policySets",
        "https://learn.microsoft.com/graph/api/intune-policyset-policyset-list?view=graph-rest-beta",
        "https://learn.microsoft.com/graph/api/intune-policyset-policyset-get?view=graph-rest-beta",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-policyset-policysetassignment-list?view=graph-rest-beta"]
    ),
    intune!(
        "deviceManagement/notificationMessageTemplates",
        "https://learn.microsoft.com/graph/api/intune-notification-notificationmessagetemplate-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-notification-notificationmessagetemplate-get?view=graph-rest-1.0",
        []
    ),
    intune!(
        "deviceManagement/termsAndConditions",
        "https://learn.microsoft.com/graph/api/intune-companyterms-termsandconditions-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-companyterms-termsandconditions-get?view=graph-rest-1.0",
        ["assignments" => "https://learn.microsoft.com/graph/api/intune-companyterms-termsandconditionsassignment-list?view=graph-rest-1.0"]
    ),
    intune!(
        "deviceManagement/roleDefinitions",
        "https://learn.microsoft.com/graph/api/intune-rbac-roledefinition-list?view=graph-rest-1.0",
        "https://learn.microsoft.com/graph/api/intune-rbac-roledefinition-get?view=graph-rest-1.0",
        ["roleAssignments" => "https://learn.microsoft.com/graph/api/intune-rbac-roleassignment-list?view=graph-rest-1.0"]
    ),
    // "This method supports the $skip, $top, $count, $filter, $orderby, and $select OData
    // query parameters"; one policy: `$select`.
    Endpoint {
        collection: "identity/conditionalAccess/policies",
        list: (
            &[Skip, Top, Count, Filter, OrderBy, Select, SkipToken],
            "https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies?view=graph-rest-1.0",
        ),
        item: (
            &[Select],
            "https://learn.microsoft.com/graph/api/conditionalaccesspolicy-get?view=graph-rest-1.0",
        ),
        subs: &[],
        delta: None,
    },
    // "This method supports the $count, $filter, $orderby, $select, $skip, and $top OData
    // query parameters"; one location: `$select`.
    Endpoint {
        collection: "identity/conditionalAccess/namedLocations",
        list: (
            &[Count, Filter, OrderBy, Select, Skip, Top, SkipToken],
            "https://learn.microsoft.com/graph/api/conditionalaccessroot-list-namedlocations?view=graph-rest-1.0",
        ),
        item: (
            &[Select],
            "https://learn.microsoft.com/graph/api/namedlocation-get?view=graph-rest-1.0",
        ),
        subs: &[],
        delta: None,
    },
    // The list: "$count, $expand, $filter, $orderby, $search, $select, and $top"; one group:
    // `$select` and `$expand`. Delta: `$select`, a limited `$filter` (`id eq`), and the state
    // tokens; nothing else (https://learn.microsoft.com/graph/api/group-delta, "Query
    // parameters").
    Endpoint {
        collection: "groups",
        list: (
            &[
                Count, Expand, Filter, OrderBy, Search, Select, Top, SkipToken,
            ],
            "https://learn.microsoft.com/graph/api/group-list?view=graph-rest-1.0",
        ),
        item: (
            &[Select, Expand],
            "https://learn.microsoft.com/graph/api/group-get?view=graph-rest-1.0",
        ),
        subs: &[],
        delta: Some((
            &[Select, Filter, SkipToken, DeltaToken],
            "https://learn.microsoft.com/graph/api/group-delta?view=graph-rest-1.0",
        )),
    },
    // "This method supports the $filter (eq and in operators) OData query parameter on id,
    // displayName, and isBuiltIn properties. It also supports $expand on the relationships."
    // Nothing else: Graph answers `$top` with 400 "Query option 'Top' is not allowed", and
    // `$select` is not on the list either. One definition: `$select` and `$expand`.
    Endpoint {
        collection: "roleManagement/directory/roleDefinitions",
        list: (
            &[Filter, Expand, SkipToken],
            "https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions?view=graph-rest-1.0",
        ),
        item: (
            &[Select, Expand],
            "https://learn.microsoft.com/graph/api/unifiedroledefinition-get?view=graph-rest-1.0",
        ),
        subs: &[],
        delta: None,
    },
];

/// The rule for a request (`path` without version, no query), if the table has one.
fn rule(method: &str, path: &str) -> Option<(Rule, bool)> {
    let endpoint = ENDPOINTS
        .iter()
        .filter(|e| path == e.collection || path.starts_with(&format!("{}/", e.collection)))
        .max_by_key(|e| e.collection.len())?;
    if !method.eq_ignore_ascii_case("GET") {
        return Some((WRITES, false));
    }
    let rest: Vec<&str> = path[endpoint.collection.len()..]
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match rest.as_slice() {
        [] => Some((endpoint.list, false)),
        ["delta"] if endpoint.delta.is_some() => endpoint.delta.map(|d| (d, false)),
        [_] => Some((endpoint.item, true)),
        [_, nav] => endpoint
            .subs
            .iter()
            .find(|(n, _)| n == nav)
            .map(|(_, r)| (*r, false)),
        _ => None,
    }
}

/// Checks a request's query options against its endpoint's rule: `Err` is the message of
/// Graph's 400 (code `BadRequest`). Paths without a rule are not checked.
pub(crate) fn check(method: &str, path: &str, query: &str) -> Result<(), String> {
    let Some(((allowed, _), single)) = rule(method, path) else {
        return Ok(());
    };
    for (key, _) in form_urlencoded::parse(query.as_bytes()) {
        let Some(opt) = Opt::of(&key) else {
            continue;
        };
        if allowed.contains(&opt) {
            continue;
        }
        if single && opt.collection_only() {
            return Err("The query specified in the URI is not valid. The requested resource is not a collection. Query options $filter, $orderby, $count, $skip, and $top can be applied only on collections.".to_owned());
        }
        return Err(format!(
            "Query option '{}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.",
            opt.name()
        ));
    }
    Ok(())
}

/// The documentation page of the rule a request falls under, if the table has one. `path`
/// may be a Graph path with or without `/graph/` and version, and with a query.
pub fn documented(method: &str, path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("graph/").unwrap_or(path);
    let path = path
        .strip_prefix("v1.0/")
        .or_else(|| path.strip_prefix("beta/"))
        .unwrap_or(path);
    rule(method, path)
        .map(|((_, doc), _)| doc)
        .or_else(|| crate::audit::documented(method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_cites_a_microsoft_graph_reference_page() {
        for e in ENDPOINTS {
            let docs = [Some(e.list.1), Some(e.item.1), e.delta.map(|d| d.1)]
                .into_iter()
                .flatten()
                .chain(e.subs.iter().map(|(_, r)| r.1));
            for doc in docs {
                assert!(
                    doc.starts_with("https://learn.microsoft.com/graph/api/")
                        && doc.contains("?view=graph-rest-"),
                    "{}: {doc}",
                    e.collection
                );
            }
        }
    }

    #[test]
    fn refused_options_get_graphs_messages() {
        let top = check(
            "GET",
            "roleManagement/directory/roleDefinitions",
            "$top=1&$select=id",
        );
        assert_eq!(
            top,
            Err("Query option 'Top' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.".to_owned())
        );
        assert!(
            check(
                "GET",
                "roleManagement/directory/roleDefinitions",
                "$filter=displayName%20eq%20'Global%20Reader'"
            )
            .is_ok()
        );
        let single = check("GET", "deviceManagement/deviceConfigurations/abc", "$top=1");
        assert!(single.is_err_and(|m| m.contains("not a collection")));
        assert!(
            check(
                "GET",
                "deviceManagement/deviceConfigurations",
                "$orderby=id"
            )
            .is_err()
        );
        assert!(check("GET", "deviceManagement/deviceConfigurations", "top=1").is_ok());
        assert!(
            check(
                "PATCH",
                "deviceManagement/deviceConfigurations/a",
                "$select=id"
            )
            .is_err()
        );
        assert!(check("GET", "groups/delta", "$top=5").is_err());
        assert!(check("GET", "groups", "$top=5&$orderby=displayName").is_ok());
        // Unknown paths and non-OData keys are not judged.
        assert!(check("GET", "users", "$orderby=x").is_ok());
        assert!(check("GET", "groups", "api-version=1").is_ok());
    }

    #[test]
    fn documented_takes_logged_paths() {
        assert!(
            documented(
                "GET",
                "/graph/beta/deviceManagement/intents/1/settings?$top=2"
            )
            .is_some()
        );
        assert!(documented("GET", "v1.0/deviceManagement/intents/1/unknownNav").is_none());
        assert!(
            documented(
                "POST",
                "/graph/v1.0/deviceManagement/deviceConfigurations/1/assign"
            )
            .is_some()
        );
    }
}
