//! Updating an object that still exists, with everything its snapshot holds: its own
//! properties, and what hangs below it that a PATCH leaves alone (a settings-catalog
//! policy's settings, an administrative template's definition values, a compliance policy's
//! scheduled actions, a policy set's items, an app policy's apps, an intent's settings, a
//! notification template's localized messages), each written the way Graph rewrites it in
//! place. Every write here is a replacement or is computed from what the object holds now,
//! so an interrupted update run again ends the same. Used by [`crate::restore_write`].

use reqwest::Method;
use serde_json::{Map, Value, json};
use tenantops_core::backup::normalize;
use tenantops_graph::registry::{ExtraRead, ObjectType, RestoreMethod};

use crate::restore_write::{Ctx, WriteFailure};

const VALUES: &str = "definitionValues";
const MESSAGES: &str = "localizedNotificationMessages";

/// Actions that replace a navigation with the body's items, whatever it holds now:
/// (type, navigation, action, the action's parameter).
const REPLACING: &[(&str, &str, &str, &str)] = &[
    // https://learn.microsoft.com/graph/api/intune-deviceconfig-devicecompliancepolicy-scheduleactionsforrules?view=graph-rest-1.0
    (
        "deviceCompliancePolicies",
        "scheduledActionsForRule",
        "scheduleActionsForRules",
        "deviceComplianceScheduledActionForRules",
    ),
    // An intent's settings are its template's: `updateSettings` sets each one's value.
    // https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementintent-updatesettings?view=graph-rest-beta
    ("intents", "settings", "updateSettings", "settings"),
    // https://learn.microsoft.com/graph/api/intune-mam-iosmanagedappprotection-targetapps?view=graph-rest-1.0
    ("iosManagedAppProtections", "apps", "targetApps", "apps"),
    // https://learn.microsoft.com/graph/api/intune-mam-androidmanagedappprotection-targetapps?view=graph-rest-1.0
    ("androidManagedAppProtections", "apps", "targetApps", "apps"),
    // https://learn.microsoft.com/graph/api/intune-mam-windowsmanagedappprotection-targetapps?view=graph-rest-beta
    ("windowsManagedAppProtections", "apps", "targetApps", "apps"),
    // https://learn.microsoft.com/graph/api/intune-mam-targetedmanagedappconfiguration-targetapps?view=graph-rest-1.0
    (
        "targetedManagedAppConfigurations",
        "apps",
        "targetApps",
        "apps",
    ),
];

/// Writes the snapshot over object `id` of type `ty`. `navs` are the
/// snapshot's navigations (arrays of objects) that a PATCH does not carry; `values` its
/// definition values.
pub(crate) async fn update(
    ty: &ObjectType,
    id: &str,
    mut body: Map<String, Value>,
    navs: &Map<String, Value>,
    values: &[Value],
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let item = ty.item_path(id);
    if ty.restore == RestoreMethod::PostWithSettings {
        // A settings-catalog policy's settings are rewritten only by a PUT of the whole
        // policy with its settings, as the Intune portal saves it (the beta reference
        // documents a PATCH, which leaves the settings alone:
        // https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicy-update?view=graph-rest-beta;
        // the PUT: https://github.com/Microsoft365DSC/Microsoft365DSC/pull/4722).
        let settings = navs.get("settings").cloned().unwrap_or_else(|| json!([]));
        body.insert("settings".into(), settings);
        deps.graph
            .request(
                creds,
                ty.budget,
                Method::PUT,
                &item,
                Some(&Value::Object(body)),
                false,
            )
            .await?;
        return Ok(());
    }
    deps.graph
        .request(
            creds,
            ty.budget,
            Method::PATCH,
            &item,
            Some(&Value::Object(body)),
            false,
        )
        .await?;
    if let Some((_, nav, action, param)) = REPLACING.iter().find(|(t, ..)| *t == ty.name) {
        let items = navs.get(*nav).cloned().unwrap_or_else(|| json!([]));
        deps.graph
            .request(
                creds,
                ty.budget,
                Method::POST,
                &format!("{item}/{action}"),
                Some(&json!({ *param: items })),
                false,
            )
            .await?;
    }
    match ty.name {
        "groupPolicyConfigurations" => definition_values(ty, &item, values, ctx).await?,
        "notificationMessageTemplates" => {
            let messages = navs.get(MESSAGES).and_then(Value::as_array);
            localized_messages(ty, &item, messages.map_or(&[][..], Vec::as_slice), ctx).await?;
        }
        "policySets" => {
            let items = navs.get("items").and_then(Value::as_array);
            policy_set_items(ty, &item, items.map_or(&[][..], Vec::as_slice), ctx).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Brings an administrative template's definition values to the snapshot's with one
/// `updateDefinitionValues` (added, updated, deletedIds) computed against the values it
/// holds now, read as a backup reads them:
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-updatedefinitionvalues?view=graph-rest-beta
async fn definition_values(
    ty: &ObjectType,
    item: &str,
    wanted: &[Value],
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let read = ty
        .extra_reads
        .iter()
        .find_map(|r| match r {
            ExtraRead::SubCollection(s) if s.starts_with(VALUES) => Some(*s),
            _ => None,
        })
        .unwrap_or(VALUES);
    let live = deps
        .graph
        .list_all(creds, ty.budget, &format!("{item}/{read}"), false)
        .await?;
    if let Some(change) = value_changes(&live, wanted) {
        let live_of = |v: &Value| {
            let id = v.get("id")?;
            live.iter().find(|l| l.get("id") == Some(id))
        };
        let updated: Vec<Value> = change
            .updated
            .iter()
            .map(|v| value_write(v, live_of(v)))
            .collect();
        let added: Vec<Value> = change.added.iter().map(|v| value_write(v, None)).collect();
        let change = json!({
            "added": added,
            "updated": updated,
            "deletedIds": change.deleted,
        });
        // Not repeated blindly: a lost answer leaves the item failed, and running it again
        // computes the change anew from what the template then holds.
        deps.graph
            .write_once(
                creds,
                ty.budget,
                Method::POST,
                &format!("{item}/updateDefinitionValues"),
                Some(&change),
            )
            .await?;
    }
    Ok(())
}

/// What the object at `item` holds now of navigation `nav`, read with `$expand`.
async fn expanded(
    ty: &ObjectType,
    item: &str,
    nav: &str,
    ctx: &Ctx<'_>,
) -> Result<Vec<Value>, WriteFailure> {
    let got = ctx
        .deps
        .graph
        .request(
            ctx.creds,
            ty.budget,
            Method::GET,
            &format!("{item}?$expand={nav}"),
            None,
            false,
        )
        .await?;
    Ok(got
        .get(nav)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Brings a policy set's items to the snapshot's with one `update` (added, updated and
/// deleted items) computed against the items it holds now:
/// https://learn.microsoft.com/graph/api/intune-policyset-policyset-update?view=graph-rest-beta
async fn policy_set_items(
    ty: &ObjectType,
    item: &str,
    wanted: &[Value],
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let live = expanded(ty, item, "items", ctx).await?;
    if let Some(change) = changes(&live, wanted, |v| {
        v.get("payloadId").filter(|p| !p.is_null())
    }) {
        deps.graph
            .write_once(
                creds,
                ty.budget,
                Method::POST,
                &format!("{item}/update"),
                Some(&json!({
                    "addedPolicySetItems": change.added,
                    "updatedPolicySetItems": change.updated,
                    "deletedPolicySetItems": change.deleted,
                })),
            )
            .await?;
    }
    Ok(())
}

/// Brings a notification template's localized messages to the snapshot's, one message per
/// locale: each changed one PATCHed, each missing one created, each extra one deleted.
/// https://learn.microsoft.com/graph/api/intune-notification-localizednotificationmessage-update?view=graph-rest-1.0
/// https://learn.microsoft.com/graph/api/intune-notification-localizednotificationmessage-create?view=graph-rest-1.0
/// https://learn.microsoft.com/graph/api/intune-notification-localizednotificationmessage-delete?view=graph-rest-1.0
async fn localized_messages(
    ty: &ObjectType,
    item: &str,
    wanted: &[Value],
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let live = expanded(ty, item, MESSAGES, ctx).await?;
    let Some(change) = changes(&live, wanted, |m| m.get("locale").filter(|l| !l.is_null())) else {
        return Ok(());
    };
    let path = format!("{item}/{MESSAGES}");
    for id in change.deleted.iter().filter_map(Value::as_str) {
        crate::restore_write::delete(&format!("{path}/{id}"), ty, ctx).await?;
    }
    for mut message in change.updated {
        let id = message
            .as_object_mut()
            .and_then(|m| m.remove("id"))
            .and_then(|id| id.as_str().map(str::to_owned))
            .unwrap_or_default();
        deps.graph
            .request(
                creds,
                ty.budget,
                Method::PATCH,
                &format!("{path}/{id}"),
                Some(&message),
                false,
            )
            .await?;
    }
    for message in &change.added {
        deps.graph
            .write_once(creds, ty.budget, Method::POST, &path, Some(message))
            .await?;
    }
    Ok(())
}

/// What turns a navigation's live items into the snapshot's.
#[derive(Debug, PartialEq)]
pub(crate) struct Changes {
    pub(crate) added: Vec<Value>,
    /// Snapshot items carrying the id of the live item they replace.
    pub(crate) updated: Vec<Value>,
    /// Ids of live items to remove.
    pub(crate) deleted: Vec<Value>,
}

/// What a definition value configures: its definition's id (a snapshot keeps it, see
/// `backup::normalize`), or the whole definition when the read carried no id.
fn definition_of(value: &Value) -> Option<&Value> {
    let definition = value.get("definition").filter(|d| !d.is_null())?;
    Some(definition.get("id").unwrap_or(definition))
}

/// The catalog a template value's binds name, as Graph takes them: absolute beta URLs of
/// `groupPolicyDefinitions('{id}')` and `.../presentations('{id}')`. Microsoft's reference
/// examples leave the binds out
/// (https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinitionvalue-create?view=graph-rest-beta,
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-updatedefinitionvalues?view=graph-rest-beta);
/// Graph takes a navigation of a written entity only as an OData bind
/// (https://docs.oasis-open.org/odata/odata-json-format/v4.01/odata-json-format-v4.01.html#sec_BindOperation),
/// and working tooling binds these exactly so (IntuneCD, https://github.com/almenscorner/IntuneCD).
const DEFINITIONS: &str =
    "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions";

/// Read-only fields of a definition value and of a presentation value
/// (https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicydefinitionvalue?view=graph-rest-beta,
/// https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicypresentationvalue?view=graph-rest-beta).
const VALUE_READ_ONLY: &[&str] = &["createdDateTime", "lastModifiedDateTime", "version"];

/// A snapshot's definition value as a write sends it: its expanded `definition` and each
/// presentation value's `presentation` turned into binds by the ids the snapshot keeps,
/// read-only fields and the presentation values' own ids left out. `live` is the value an
/// `updated` one replaces: its presentation values lend their ids to the ones bound to the
/// same presentation, so Graph updates them rather than adding beside them. A snapshot taken
/// before the definition's id was kept binds nothing, and Graph refuses the write: the item
/// fails with Graph's reason rather than writing a value without its setting.
pub(crate) fn value_write(value: &Value, live: Option<&Value>) -> Value {
    let Some(map) = value.as_object() else {
        return value.clone();
    };
    let id_of = |v: &Value, nav: &str| {
        v.get(nav)
            .and_then(|n| n.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let definition = id_of(value, "definition");
    let mut out: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| {
            !VALUE_READ_ONLY.contains(&k.as_str())
                && !matches!(k.as_str(), "definition" | "presentationValues")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(d) = &definition {
        out.insert(
            "definition@odata.bind".into(),
            json!(format!("{DEFINITIONS}('{d}')")),
        );
    }
    let live_values = live
        .and_then(|l| l.get("presentationValues"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(Value::Array(values)) = map.get("presentationValues") {
        let values: Vec<Value> = values
            .iter()
            .map(|p| {
                let mut pv: Map<String, Value> = p
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| {
                        !VALUE_READ_ONLY.contains(&k.as_str())
                            && !matches!(k.as_str(), "id" | "presentation" | "definitionValue")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let presentation = id_of(p, "presentation");
                if let (Some(d), Some(pid)) = (&definition, &presentation) {
                    pv.insert(
                        "presentation@odata.bind".into(),
                        json!(format!("{DEFINITIONS}('{d}')/presentations('{pid}')")),
                    );
                }
                let same = live_values
                    .iter()
                    .find(|l| presentation.is_some() && id_of(l, "presentation") == presentation);
                if let Some(id) = same.and_then(|l| l.get("id")) {
                    pv.insert("id".into(), id.clone());
                }
                Value::Object(pv)
            })
            .collect();
        out.insert("presentationValues".into(), Value::Array(values));
    }
    Value::Object(out)
}

/// The change that turns a template's `live` definition values into `wanted` (normalized
/// snapshot values), matched by definition.
pub(crate) fn value_changes(live: &[Value], wanted: &[Value]) -> Option<Changes> {
    changes(live, wanted, definition_of)
}

/// The change that turns `live` items into `wanted` (normalized snapshot items), or `None`
/// when they already match. Graph keeps a navigation's items in their order and appends
/// added ones, and a backup hashes the order it reads: so the leading run of `wanted` found
/// in `live` in the same order stays (an equal item as it is, one with the same `key_of`
/// updated under its id), the rest of `wanted` is added after it, and every live item not
/// kept is deleted.
pub(crate) fn changes(
    live: &[Value],
    wanted: &[Value],
    key_of: impl Fn(&Value) -> Option<&Value>,
) -> Option<Changes> {
    let normalized: Vec<Value> = live.iter().map(normalize).collect();
    let mut used = vec![false; live.len()];
    let (mut added, mut updated) = (Vec::new(), Vec::new());
    // Live items before `next` can no longer be kept: keeping them would reorder.
    let (mut next, mut keeping) = (0, true);
    for w in wanted {
        if keeping {
            let equal = (next..live.len()).find(|&j| normalized[j] == *w);
            let same_key = || {
                key_of(w).and_then(|k| {
                    (next..live.len())
                        .find(|&j| key_of(&normalized[j]) == Some(k) && live[j].get("id").is_some())
                })
            };
            if let Some(j) = equal {
                used[j] = true;
                next = j + 1;
                continue;
            }
            if let Some(j) = same_key() {
                used[j] = true;
                next = j + 1;
                let mut w = w.clone();
                if let (Some(m), Some(id)) = (w.as_object_mut(), live[j].get("id")) {
                    m.insert("id".into(), id.clone());
                }
                updated.push(w);
                continue;
            }
            keeping = false;
        }
        added.push(w.clone());
    }
    let deleted: Vec<Value> = live
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .filter_map(|(v, _)| v.get("id").cloned())
        .collect();
    if added.is_empty() && updated.is_empty() && deleted.is_empty() {
        return None;
    }
    Some(Changes {
        added,
        updated,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replacing_action_names_a_navigation_its_type_backs_up() {
        for (name, nav, ..) in REPLACING {
            let ty = ObjectType::named(name);
            let reads = ty.map(|t| t.extra_reads).unwrap_or_default();
            assert!(
                reads.iter().any(|r| matches!(r,
                    ExtraRead::SubCollection(s) | ExtraRead::ExpandOnItem(s)
                        if tenantops_graph::requests::navigation_name(s) == *nav)),
                "{name}/{nav}"
            );
        }
    }

    #[test]
    fn matching_values_change_nothing() {
        let live = vec![json!({"id": "a", "enabled": true, "lastModifiedDateTime": "x"})];
        assert_eq!(value_changes(&live, &[json!({"enabled": true})]), None);
    }

    #[test]
    fn values_are_added_updated_by_definition_and_deleted() {
        let live = vec![
            json!({"id": "a", "enabled": true, "definition": {"id": "d1", "displayName": "One"}}),
            json!({"id": "b", "enabled": true, "definition": {"id": "d2", "displayName": "Two"}}),
        ];
        let wanted = vec![
            json!({"enabled": false, "definition": {"id": "d1", "displayName": "One"}}),
            json!({"enabled": true, "definition": {"id": "d3", "displayName": "Three"}}),
        ];
        let change = value_changes(&live, &wanted);
        assert_eq!(
            change,
            Some(Changes {
                added: vec![
                    json!({"enabled": true, "definition": {"id": "d3", "displayName": "Three"}})
                ],
                updated: vec![
                    json!({"id": "a", "enabled": false, "definition": {"id": "d1", "displayName": "One"}})
                ],
                deleted: vec![json!("b")],
            })
        );
    }

    #[test]
    fn a_value_is_written_with_binds_to_its_definition_and_presentations() {
        let snapshot = json!({"enabled": true, "configurationType": "policy",
        "definition": {"id": "d1", "displayName": "Home page"},
        "presentationValues": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "x",
             "presentation": {"id": "p1", "label": "URL"}},
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueBoolean", "value": true,
             "presentation": {"id": "p2", "label": "Ask"}}
        ]});
        let base = "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('d1')";
        let added = value_write(&snapshot, None);
        assert_eq!(
            added,
            json!({"enabled": true, "configurationType": "policy",
            "definition@odata.bind": base,
            "presentationValues": [
                {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "x",
                 "presentation@odata.bind": format!("{base}/presentations('p1')")},
                {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueBoolean", "value": true,
                 "presentation@odata.bind": format!("{base}/presentations('p2')")}
            ]})
        );
        let live = json!({"id": "v", "presentationValues": [
            {"id": "live-p2", "value": false, "presentation": {"id": "p2"}}]});
        let mut with_id = snapshot.clone();
        with_id["id"] = json!("v");
        let updated = value_write(&with_id, Some(&live));
        assert_eq!(updated["id"], "v");
        assert_eq!(updated["presentationValues"][0].get("id"), None);
        assert_eq!(updated["presentationValues"][1]["id"], "live-p2");
    }

    #[test]
    fn the_order_of_the_snapshot_is_kept() {
        let live = vec![
            json!({"id": "a", "n": 1}),
            json!({"id": "b", "n": 2}),
            json!({"id": "c", "n": 3}),
        ];
        let change = value_changes(&live, &[json!({"n": 1}), json!({"n": 3})]);
        assert_eq!(
            change,
            Some(Changes {
                added: vec![],
                updated: vec![],
                deleted: vec![json!("b")],
            })
        );
        let change = value_changes(&live, &[json!({"n": 2}), json!({"n": 1})]);
        assert_eq!(
            change,
            Some(Changes {
                added: vec![json!({"n": 1})],
                updated: vec![],
                deleted: vec![json!("a"), json!("c")],
            })
        );
    }

    #[test]
    fn values_without_their_definition_are_replaced() {
        let live = vec![json!({"id": "a", "enabled": true})];
        let change = value_changes(
            &live,
            &[json!({"enabled": false}), json!({"enabled": true})],
        );
        assert_eq!(
            change,
            Some(Changes {
                added: vec![json!({"enabled": false}), json!({"enabled": true})],
                updated: vec![],
                deleted: vec![json!("a")],
            }),
            "a value kept would end up before the added one"
        );
        let removed = value_changes(&live, &[]);
        assert_eq!(
            removed,
            Some(Changes {
                added: vec![],
                updated: vec![],
                deleted: vec![json!("a")],
            })
        );
    }
}
