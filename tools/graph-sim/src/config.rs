//! What a simulated world contains: tenants, their app registrations and their objects, and
//! the throttling limits. Serializable, so a fixture file is just this as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::generate;

/// The whole simulated world.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub tenants: Vec<SimTenant>,
    pub throttling: Throttling,
    /// Drives every choice the simulator makes (generated data, empty pages, which Intune
    /// throttles omit `Retry-After`, token lifetimes), so runs replay exactly.
    pub seed: u64,
    /// Replaying a create (POST on a collection) with the same `client-request-id` header
    /// returns the object the first call created instead of creating a duplicate.
    ///
    /// Microsoft Graph does NOT do this; tenantops's restore sends a per-item idempotency key
    /// in `client-request-id` and relies on it, so the simulator offers it (default on). Turn it
    /// off to test how a client copes with Graph's real behaviour (a duplicate).
    pub idempotent_creates: bool,
    /// Probability that a list page comes back empty while still carrying a nextLink, as
    /// Graph sometimes does. Never twice in a row at the same position.
    pub empty_page_ratio: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenants: Vec::new(),
            throttling: Throttling::default(),
            seed: 0x7e4a_0715,
            idempotent_creates: true,
            empty_page_ratio: 0.05,
        }
    }
}

/// One customer tenant (an Entra directory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTenant {
    /// Entra tenant GUID, lowercase.
    pub tenant_id: String,
    /// App registrations the token endpoint accepts for this tenant.
    #[serde(default)]
    pub clients: Vec<SimClient>,
    /// Keyed by collection path without version, e.g. `deviceManagement/deviceConfigurations`.
    #[serde(default)]
    pub collections: BTreeMap<String, Collection>,
}

/// An app registration (client credentials) consented in the tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClient {
    pub client_id: String,
    pub client_secret: String,
    /// The secret has passed its end date: the token endpoint answers AADSTS7000222.
    #[serde(default)]
    pub expired: bool,
    /// Application permissions granted (e.g. `DeviceManagementConfiguration.Read.All`);
    /// empty means every permission is granted.
    #[serde(default)]
    pub granted: BTreeSet<String>,
}

impl SimClient {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        SimClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expired: false,
            granted: BTreeSet::new(),
        }
    }
}

/// One Graph collection (entity set) of a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Collection {
    /// Each has an `id` and usually a `displayName` (settings catalog: `name`).
    pub objects: Vec<Value>,
    /// Page size when the client sends no `$top`.
    pub page_size: usize,
    /// Largest `$top` accepted; directory collections answer 400 above it, Intune caps.
    pub max_top: usize,
    /// Navigation collections below one object, keyed by the path after the collection,
    /// e.g. `"<id>/settings"`, `"<id>/assignments"`,
    /// `"<id>/definitionValues/<valueId>/presentationValues"`.
    pub sub_resources: BTreeMap<String, Vec<Value>>,
    /// Page size of sub-resource lists (settings catalog `/settings` pages by 25).
    pub sub_page_size: usize,
    /// Exists only on the beta endpoint: on v1.0 Graph answers 400 "Resource not found for
    /// the segment".
    pub beta_only: bool,
    /// Properties Graph returns only when the object is read by id (e.g. `scriptContent`).
    pub item_only_fields: Vec<String>,
}

impl Default for Collection {
    fn default() -> Self {
        Collection {
            objects: Vec::new(),
            page_size: 100,
            max_top: 999,
            sub_resources: BTreeMap::new(),
            sub_page_size: 25,
            beta_only: false,
            item_only_fields: Vec::new(),
        }
    }
}

impl Collection {
    pub fn with_objects(objects: Vec<Value>) -> Self {
        Collection {
            objects,
            ..Collection::default()
        }
    }
}

/// Token-bucket limits, sized to Microsoft's documented service limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Throttling {
    /// Intune: requests per 20 s per app per tenant.
    pub intune_per_20s: u32,
    /// Intune: writes (POST/PATCH/PUT/DELETE) per 20 s per app per tenant.
    pub intune_writes_per_20s: u32,
    /// Conditional Access: requests per second per tenant (all apps together).
    pub conditional_access_per_s: u32,
    /// Directory (groups, users, role management): resource units per 10 s per app per
    /// tenant (Microsoft: 3,500 small, 5,000 medium, 8,000 large tenants).
    pub directory_per_10s: u32,
    /// Directory: writes per 150 s per app per tenant.
    pub directory_writes_per_150s: u32,
    pub enabled: bool,
}

impl Default for Throttling {
    fn default() -> Self {
        Throttling {
            intune_per_20s: 1000,
            intune_writes_per_20s: 100,
            conditional_access_per_s: 1,
            directory_per_10s: 3500,
            directory_writes_per_150s: 3000,
            enabled: true,
        }
    }
}

/// The collections the demo tenant (and `--demo`) fills, in the order they are generated.
pub const DEMO_COLLECTIONS: &[&str] = &[
    "groups",
    "deviceManagement/deviceConfigurations",
    "deviceManagement/configurationPolicies",
    "deviceManagement/deviceCompliancePolicies",
    "deviceManagement/compliancePolicies",
    "deviceManagement/groupPolicyConfigurations",
    "deviceManagement/intents",
    "deviceManagement/deviceManagementScripts",
    "deviceManagement/deviceShellScripts",
    "deviceManagement/deviceCustomAttributeShellScripts",
    "deviceManagement/deviceHealthScripts",
    "deviceManagement/deviceComplianceScripts",
    "deviceManagement/deviceEnrollmentConfigurations",
    "deviceManagement/windowsAutopilotDeploymentProfiles",
    "deviceManagement/windowsFeatureUpdateProfiles",
    "deviceManagement/windowsQualityUpdateProfiles",
    "deviceManagement/windowsDriverUpdateProfiles",
    "deviceManagement/assignmentFilters",
    "deviceManagement/roleScopeTags",
    "deviceManagement/reusablePolicySettings",
    "deviceAppManagement/managedAppPolicies",
    "deviceAppManagement/iosManagedAppProtections",
    "deviceAppManagement/androidManagedAppProtections",
    "deviceAppManagement/windowsManagedAppProtections",
    "deviceAppManagement/targetedManagedAppConfigurations",
    "deviceAppManagement/mobileAppConfigurations",
    "deviceAppManagement/mobileApps",
    "deviceAppManagement/policySets",
    "deviceManagement/notificationMessageTemplates",
    "deviceManagement/termsAndConditions",
    "deviceManagement/roleDefinitions",
    "identity/conditionalAccess/policies",
    "identity/conditionalAccess/namedLocations",
    "roleManagement/directory/roleDefinitions",
];

impl SimConfig {
    /// One tenant with `n` generated objects in each given collection path, deterministic
    /// from the default seed.
    pub fn generated(tenant_id: &str, client: SimClient, counts: &[(&str, usize)]) -> SimConfig {
        let config = SimConfig::default();
        let tenant = SimTenant::generated(tenant_id, vec![client], counts, config.seed);
        SimConfig {
            tenants: vec![tenant],
            ..config
        }
    }

    /// The demo tenant: `per_collection` objects in each of [`DEMO_COLLECTIONS`].
    pub fn demo(tenant_id: &str, client: SimClient, per_collection: usize) -> SimConfig {
        let counts: Vec<(&str, usize)> = DEMO_COLLECTIONS
            .iter()
            .map(|path| (*path, per_collection))
            .collect();
        SimConfig::generated(tenant_id, client, &counts)
    }

    /// A fixture: this structure as JSON (every field but `tenant_id`, `client_id` and
    /// `client_secret` may be left out).
    pub fn from_fixture(path: &Path) -> anyhow::Result<SimConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading graph-sim fixture {}", path.display()))?;
        let config: SimConfig = serde_json::from_str(&text)
            .with_context(|| format!("parsing graph-sim fixture {}", path.display()))?;
        Ok(config)
    }
}

impl SimTenant {
    /// A tenant with generated objects; collections are generated in the order given, and
    /// `groups` first when present, so assignments can target real group ids.
    pub fn generated(
        tenant_id: &str,
        clients: Vec<SimClient>,
        counts: &[(&str, usize)],
        seed: u64,
    ) -> SimTenant {
        let tenant_id = tenant_id.to_lowercase();
        let mut collections = BTreeMap::new();
        let mut group_ids: Vec<String> = Vec::new();
        let groups_first = counts
            .iter()
            .filter(|(path, _)| *path == "groups")
            .chain(counts.iter().filter(|(path, _)| *path != "groups"));
        for (path, n) in groups_first {
            let collection = generate::collection(seed, &tenant_id, path, *n, &group_ids);
            if *path == "groups" {
                group_ids = collection
                    .objects
                    .iter()
                    .filter_map(|o| o.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect();
            }
            collections.insert((*path).to_owned(), collection);
        }
        // Administrative templates' values bind definitions of the tenant's catalog.
        if collections.contains_key(crate::group_policy::TEMPLATES) {
            collections
                .entry(crate::group_policy::DEFINITIONS.to_owned())
                .or_insert_with(crate::group_policy::builtin_catalog);
        }
        SimTenant {
            tenant_id,
            clients,
            collections,
        }
    }
}
