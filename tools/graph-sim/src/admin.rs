//! Admin routes: change a simulated tenant over HTTP as its administrator would in the Intune
//! or Entra portal, so a running simulator (the local stack's demo tenant) can drift from its
//! backups (`cargo xtask demo-drift`). Not Graph: no token, no throttling, no faults, not in
//! the request log. Tests in-process use [`crate::GraphSim::with_tenant`] instead.
//!
//! - `GET /admin/tenants/{tenant}/{collection}`: `{"value": [objects]}`, whole objects in
//!   their stored order (`collection` is the path without version, slashes and all:
//!   `deviceManagement/deviceConfigurations`).
//! - `GET /admin/tenants/{tenant}/{collection}/{id}/{navigation}`: `{"value": [...]}`, what
//!   hangs below an object (`assignments`, `settings`).
//! - `PATCH /admin/tenants/{tenant}/{collection}/{id}` `{properties}`: sets each property (a
//!   policy's settings are properties of device configurations and compliance policies) and
//!   stamps the object as the portal's save does (`lastModifiedDateTime` or
//!   `modifiedDateTime` now, an integer `version` + 1); 200 with the object.
//! - `DELETE /admin/tenants/{tenant}/{collection}/{id}`: removes the object and what hangs
//!   below it (assignments, settings); 204.
//!
//! Refusals are Graph-shaped error envelopes: 404 for an unknown tenant, collection or
//! object, 400 for a body that is not a JSON object or that names `id` or
//! `createdDateTime`, 405 for another method.

use serde_json::{Map, Value};

use crate::config::SimTenant;
use crate::reply::{Reply, RequestIds, graph_error};
use crate::sim::{Sim, intune_now};

/// `rest` is the path after `/admin/`.
pub(crate) fn handle(
    sim: &mut Sim,
    method: &str,
    rest: &str,
    body: &[u8],
    ids: &RequestIds,
) -> Reply {
    let not_found = |what: &str| graph_error(404, "NotFound", what, ids);
    let Some((tenant_id, path)) = rest
        .strip_prefix("tenants/")
        .and_then(|r| r.split_once('/'))
    else {
        return not_found(
            "graph-sim's admin routes are /admin/tenants/{tenant}/{collection}[/{id}].",
        );
    };
    if !sim.has_tenant(tenant_id) {
        return not_found(&format!("No simulated tenant {tenant_id}."));
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    sim.with_tenant(tenant_id, |tenant| {
        let Some((collection, rest)) = split_collection(tenant, &segments) else {
            return not_found(&format!("The tenant has no collection at {path}."));
        };
        match (method, rest) {
            ("GET", []) => {
                let objects = tenant
                    .collections
                    .get(&collection)
                    .map(|c| c.objects.clone())
                    .unwrap_or_default();
                Reply::json(200, serde_json::json!({ "value": objects }))
            }
            ("GET", [id, nav @ ..]) if !nav.is_empty() => {
                let key = std::iter::once(*id)
                    .chain(nav.iter().copied())
                    .collect::<Vec<_>>()
                    .join("/");
                match tenant
                    .collections
                    .get(&collection)
                    .and_then(|c| c.sub_resources.get(&key))
                {
                    Some(items) => Reply::json(200, serde_json::json!({ "value": items })),
                    None => not_found(&format!("No {key} below {collection}.")),
                }
            }
            ("PATCH", [id]) => patch(tenant, &collection, id, body, ids),
            ("DELETE", [id]) => delete(tenant, &collection, id, ids),
            _ => graph_error(
                405,
                "MethodNotAllowed",
                "Admin routes: GET a collection or what is below an object, PATCH or DELETE an object.",
                ids,
            ),
        }
    })
}

/// The longest leading run of segments that names one of the tenant's collections, and the
/// segments after it.
fn split_collection<'s>(
    tenant: &SimTenant,
    segments: &'s [&'s str],
) -> Option<(String, &'s [&'s str])> {
    (1..=segments.len()).rev().find_map(|n| {
        let key = segments[..n].join("/");
        tenant
            .collections
            .contains_key(&key)
            .then(|| (key, &segments[n..]))
    })
}

fn patch(
    tenant: &mut SimTenant,
    collection: &str,
    id: &str,
    body: &[u8],
    ids: &RequestIds,
) -> Reply {
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => fields,
        _ => return graph_error(400, "BadRequest", "The body must be a JSON object.", ids),
    };
    if fields.contains_key("id") || fields.contains_key("createdDateTime") {
        return graph_error(
            400,
            "BadRequest",
            "id and createdDateTime cannot be changed.",
            ids,
        );
    }
    let Some(object) = find(tenant, collection, id) else {
        return graph_error(
            404,
            "NotFound",
            &format!("No object {id} in {collection}."),
            ids,
        );
    };
    for (name, value) in fields {
        object.insert(name, value);
    }
    for stamp in ["lastModifiedDateTime", "modifiedDateTime"] {
        if object.contains_key(stamp) {
            object.insert(stamp.into(), Value::String(intune_now()));
        }
    }
    if let Some(version) = object.get("version").and_then(Value::as_u64) {
        object.insert("version".into(), Value::from(version + 1));
    }
    Reply::json(200, Value::Object(object.clone()))
}

fn delete(tenant: &mut SimTenant, collection: &str, id: &str, ids: &RequestIds) -> Reply {
    let Some(c) = tenant.collections.get_mut(collection) else {
        return graph_error(
            404,
            "NotFound",
            &format!("No collection {collection}."),
            ids,
        );
    };
    let before = c.objects.len();
    c.objects
        .retain(|o| o.get("id").and_then(Value::as_str) != Some(id));
    if c.objects.len() == before {
        return graph_error(
            404,
            "NotFound",
            &format!("No object {id} in {collection}."),
            ids,
        );
    }
    let below = format!("{id}/");
    c.sub_resources.retain(|k, _| !k.starts_with(&below));
    Reply::no_content()
}

fn find<'t>(
    tenant: &'t mut SimTenant,
    collection: &str,
    id: &str,
) -> Option<&'t mut Map<String, Value>> {
    tenant
        .collections
        .get_mut(collection)?
        .objects
        .iter_mut()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))?
        .as_object_mut()
}
