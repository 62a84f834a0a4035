//! A preview of a restore into another tenant of the workspace: what the two tenants' caches
//! hold of the targets an object may refer to (directory groups, and the inventories of
//! assignment filters, scope tags and named locations), read once per preview, and each
//! item's targets mapped from the source's names to the destination's objects
//! ([`tenantops_core::restore_map`]). Used by [`crate::preview`].

use serde_json::Value;
use tenantops_aws::{InventoryItem, keys};
use tenantops_core::backup::ManifestEntry;
use tenantops_core::restore::{Mapping, TargetResolution};
use tenantops_core::restore_map::{self, Directory, Names};
use tenantops_core::{TenantId, WorkspaceId};

use crate::job::{Deps, Stop};

/// Both tenants' targets.
pub(crate) struct Across {
    source: Directory,
    destination: Directory,
}

impl Across {
    /// The targets of one object of the source's backup set, as the destination will have them.
    pub(crate) fn targets(
        &self,
        entry: &ManifestEntry,
        snapshot: &Value,
        mapping: &Mapping,
    ) -> Vec<TargetResolution> {
        let refs = restore_map::references(&entry.assignments, snapshot);
        restore_map::resolve_across(&refs, &self.source, &self.destination, mapping)
    }
}

pub(crate) async fn load(
    deps: &Deps,
    ws: WorkspaceId,
    source: TenantId,
    destination: TenantId,
) -> Result<Across, Stop> {
    Ok(Across {
        source: directory(deps, ws, source).await?,
        destination: directory(deps, ws, destination).await?,
    })
}

/// One tenant's cached targets: what its last sync saw (objects it saw deleted left out).
async fn directory(deps: &Deps, ws: WorkspaceId, tenant: TenantId) -> Result<Directory, Stop> {
    let groups = deps.store.directory(keys::groups_of(ws, tenant)).await?;
    let live = |items: Vec<InventoryItem>| -> Vec<(String, String)> {
        items
            .into_iter()
            .filter(|i| !i.deleted)
            .map(|i| (i.object_id, i.name))
            .collect()
    };
    let filters = live(
        deps.store
            .inventory(ws, tenant, "assignmentFilters")
            .await?,
    );
    let tags = live(deps.store.inventory(ws, tenant, "roleScopeTags").await?);
    let locations = live(deps.store.inventory(ws, tenant, "namedLocations").await?);
    let names =
        |v: &[(String, String)]| Names::new(v.iter().map(|(i, n)| (i.as_str(), n.as_str())));
    Ok(Directory {
        groups: Names::new(
            groups
                .iter()
                .map(|g| (g.id.as_str(), g.display_name.as_str())),
        ),
        filters: names(&filters),
        scope_tags: names(&tags),
        named_locations: names(&locations),
    })
}
