//! Writing one restore item to Microsoft Graph: the snapshot split into the object's own
//! properties, its settings or definition values and its assignments; a create sent once and
//! adopted by name after a lost answer, an update PATCHed; assignments replaced with `/assign`.
//! Used by [`crate::restore`], which owns the items' records and the run.

use reqwest::Method;
use serde_json::{Map, Value, json};
use tenantops_aws::StoreError;
use tenantops_aws::restores::{ItemLease, RestoreItem};
use tenantops_core::ReasonCode;
use tenantops_core::restore::{Action, rewrite_assignments};
use tenantops_core::restore_map::rewrite_references;
use tenantops_graph::registry::{Assignments, ExtraRead, ObjectType};
use tenantops_graph::{Credentials, GraphError};

use crate::job::{Deps, Stop};
use tenantops_graph::requests::navigation_name;

/// Navigations written after the object itself rather than inline.
const VALUES: &str = "definitionValues";

/// What writing an item needs.
pub(crate) struct Ctx<'a> {
    pub(crate) deps: &'a Deps,
    pub(crate) creds: &'a Credentials,
    /// Ids earlier items of this restore wrote: never adopted for another item (two
    /// snapshots may share a name).
    pub(crate) written: &'a [String],
}

#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// This item failed; the others go on.
    Item(ReasonCode),
    /// The run must stop (handback on a long throttle, lost lease, store failure).
    Stop(Stop),
}

impl From<GraphError> for WriteFailure {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Throttled { retry_after } => {
                WriteFailure::Stop(Stop::HandBack(retry_after))
            }
            other => WriteFailure::Item(other.reason()),
        }
    }
}

impl From<StoreError> for WriteFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TransitionRefused => WriteFailure::Stop(Stop::Fail(ReasonCode::RunStale)),
            other => WriteFailure::Stop(Stop::from(other)),
        }
    }
}

/// The snapshot split into what is written where.
struct Parts {
    /// The object's own properties (with settings inline for settings-catalog types).
    body: Map<String, Value>,
    assignments: Vec<Value>,
    /// Administrative templates' definition values, written after the object.
    values: Vec<Value>,
    /// On an update, the navigations a PATCH does not carry (settings, scheduled actions,
    /// ...), for [`crate::restore_inplace`].
    navs: Map<String, Value>,
}

fn split(snapshot: Value, ty: &ObjectType, action: Action) -> Parts {
    let mut body = match snapshot {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let take = |body: &mut Map<String, Value>, k: &str| match body.remove(k) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let assignments = take(&mut body, "assignments");
    let values = take(&mut body, VALUES);
    let mut navs = Map::new();
    if action == Action::Update {
        // A PATCH carries the object's own properties, collections of complex values among
        // them (an app configuration's `customSettings`, a custom profile's `omaSettings`);
        // the navigations a backup read besides the object are not patchable.
        for read in ty.extra_reads {
            let name = match read {
                ExtraRead::SubCollection(s) | ExtraRead::ExpandOnItem(s) => navigation_name(s),
                ExtraRead::ItemContent => continue,
            };
            if let Some(v) = body.remove(name) {
                navs.insert(name.to_owned(), v);
            }
        }
    }
    Parts {
        body,
        assignments,
        values,
        navs,
    }
}

pub(crate) async fn write(
    lease: &ItemLease<'_>,
    item: &RestoreItem,
    resumed: bool,
    ty: &ObjectType,
    ctx: &Ctx<'_>,
) -> Result<String, WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let bytes = deps.snapshots.get(&item.snapshot_key).await.map_err(|e| {
        tracing::error!(error = %e, "could not read the snapshot");
        WriteFailure::Item(ReasonCode::RestoreSnapshotMissing)
    })?;
    let snapshot: Value = serde_json::from_slice(&bytes)
        .map_err(|_| WriteFailure::Item(ReasonCode::RestoreSnapshotMissing))?;
    let name_field = if snapshot.get("displayName").is_some() {
        "displayName"
    } else {
        "name"
    };
    let mut parts = split(snapshot, ty, item.action);
    // A restore into another tenant names the destination's scope tags, groups and named
    // locations in the object itself too.
    rewrite_references(&mut parts.body, &item.targets);
    let collection = ty.collection_path();

    let id = match item.action {
        Action::Update => {
            crate::restore_inplace::update(
                ty,
                &item.object_id,
                parts.body.clone(),
                &parts.navs,
                &parts.values,
                ctx,
            )
            .await?;
            item.object_id.clone()
        }
        Action::Create | Action::SkipUnchanged => {
            let mut id = item.written_id.clone();
            if id.is_none() && resumed {
                id = adopt(item, ty, name_field, ctx).await?;
            }
            let id = match id {
                Some(id) => id,
                None => {
                    let created = deps
                        .graph
                        .write_once(
                            creds,
                            ty.budget,
                            Method::POST,
                            &collection,
                            Some(&Value::Object(parts.body.clone())),
                        )
                        .await;
                    let id = match created {
                        Ok(v) => v
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or(WriteFailure::Item(ReasonCode::GraphUnavailable))?,
                        // The create may have happened: look before deciding it did not.
                        Err(GraphError::Unavailable) => adopt(item, ty, name_field, ctx)
                            .await?
                            .ok_or(WriteFailure::Item(ReasonCode::GraphUnavailable))?,
                        Err(e) => return Err(e.into()),
                    };
                    deps.store
                        .record_restore_step(lease, item.index, &id, "created")
                        .await?;
                    id
                }
            };
            if !parts.values.is_empty() && item.step.as_deref() != Some("values") {
                write_values(&id, &parts.values, resumed, ty, ctx).await?;
                deps.store
                    .record_restore_step(lease, item.index, &id, "values")
                    .await?;
            }
            id
        }
    };

    if ty.assignments != Assignments::None
        && (item.action == Action::Update || !parts.assignments.is_empty())
    {
        let assignments = rewrite_assignments(&parts.assignments, &item.targets);
        // `/assign` replaces the object's assignments: repeating it is harmless.
        deps.graph
            .request(
                creds,
                ty.budget,
                Method::POST,
                &ty.assign_path(&id),
                Some(&json!({ "assignments": assignments })),
                false,
            )
            .await?;
    }
    Ok(id)
}

/// Deletes the object (or sub-object) at `path`; one already gone counts as deleted, so a
/// resumed restore may delete again.
pub(crate) async fn delete(path: &str, ty: &ObjectType, ctx: &Ctx<'_>) -> Result<(), WriteFailure> {
    match ctx
        .deps
        .graph
        .request(ctx.creds, ty.budget, Method::DELETE, path, None, false)
        .await
    {
        Ok(_) | Err(GraphError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes an administrative template's definition values. On a resumed item some may
/// already exist (written by the attempt that was interrupted): they are removed first, so
/// the object ends with exactly the snapshot's values.
async fn write_values(
    id: &str,
    values: &[Value],
    resumed: bool,
    ty: &ObjectType,
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let path = ty.definition_values_path(id);
    if resumed {
        for existing in deps.graph.list_all(creds, ty.budget, &path, false).await? {
            if let Some(vid) = existing.get("id").and_then(Value::as_str) {
                delete(&format!("{path}/{vid}"), ty, ctx).await?;
            }
        }
    }
    for v in values {
        // Bound to its definition and presentations, as Graph takes a value.
        let v = crate::restore_inplace::value_write(v, None);
        deps.graph
            .write_once(creds, ty.budget, Method::POST, &path, Some(&v))
            .await?;
    }
    Ok(())
}

/// An object of the type with the item's name that was not there at preview time: the
/// create of an earlier attempt, whose answer was lost.
async fn adopt(
    item: &RestoreItem,
    ty: &ObjectType,
    name_field: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<String>, WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let path = ty.named_path(name_field, &item.name);
    let found = deps.graph.list_all(creds, ty.budget, &path, false).await?;
    let adopted = found
        .iter()
        .filter_map(|o| o.get("id").and_then(Value::as_str))
        .find(|id| {
            !item.preexisting_same_name.iter().any(|p| p == id)
                && !ctx.written.iter().any(|w| w == id)
        })
        .map(str::to_owned);
    if let Some(id) = &adopted {
        tracing::info!(index = item.index, object_id = %id, "adopting the object an earlier attempt created");
    }
    Ok(adopted)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn updates_leave_navigations_out_and_creates_keep_settings_inline() {
        let ty = ObjectType::named("configurationPolicies").expect("registered");
        let snap = json!({"name": "P", "settings": [{"x": 1}], "assignments": [{"target": {}}], "roleScopeTagIds": ["0"], "customSettings": [{"name": "a"}]});
        let create = split(snap.clone(), ty, Action::Create);
        assert!(create.body.contains_key("settings"));
        assert_eq!(create.assignments.len(), 1);
        let update = split(snap, ty, Action::Update);
        assert!(!update.body.contains_key("settings"));
        assert!(update.navs.contains_key("settings"));
        assert!(
            update.body.contains_key("customSettings"),
            "a collection property is patched"
        );
        assert!(update.body.contains_key("roleScopeTagIds"));
    }
}
