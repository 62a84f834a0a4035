//! Writes that rewrite what hangs below an Intune object in place, as Graph does them: a
//! settings-catalog policy's `PUT` (its settings replaced with the body's), an administrative
//! template's `updateDefinitionValues`, a compliance policy's `scheduleActionsForRules`, a
//! policy set's `update`, an app policy's `targetApps`, an intent's `updateSettings`, a
//! localized notification message's `PATCH`. The router (`sim.rs`) has already checked the
//! token, the permission and the write budget.

use serde_json::{Map, Value, json};

use crate::config::Collection;
use crate::reply::{Reply, RequestIds, graph_error};
use crate::sim::intune_now;

/// The in-place writes graph-sim knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `PUT {policy}` of a settings-catalog policy.
    ReplacePolicy,
    /// `POST {template}/updateDefinitionValues`.
    UpdateDefinitionValues,
    /// `POST {policy}/scheduleActionsForRules`.
    ScheduleActionsForRules,
    /// `POST {policySet}/update`.
    UpdatePolicySet,
    /// `POST {app policy}/targetApps`.
    TargetApps,
    /// `POST {intent}/updateSettings`.
    UpdateIntentSettings,
    /// `PATCH {template}/localizedNotificationMessages/{id}`.
    PatchLocalizedMessage,
}

const CATALOG: [&str; 2] = [
    "deviceManagement/configurationPolicies",
    "deviceManagement/compliancePolicies",
];

const APP_POLICIES: [&str; 4] = [
    "deviceAppManagement/iosManagedAppProtections",
    "deviceAppManagement/androidManagedAppProtections",
    "deviceAppManagement/windowsManagedAppProtections",
    "deviceAppManagement/targetedManagedAppConfigurations",
];

impl Write {
    /// The write a `method` on `{key}/{rest...}` is, if it is one of these.
    pub(crate) fn of(method: &str, key: &str, rest: &[&str]) -> Option<Write> {
        let write = match (method, rest) {
            ("PUT", [_]) if CATALOG.contains(&key) => Write::ReplacePolicy,
            ("POST", [_, "updateDefinitionValues"])
                if key == "deviceManagement/groupPolicyConfigurations" =>
            {
                Write::UpdateDefinitionValues
            }
            ("POST", [_, "scheduleActionsForRules"])
                if key == "deviceManagement/deviceCompliancePolicies" =>
            {
                Write::ScheduleActionsForRules
            }
            ("POST", [_, "update"]) if key == "deviceAppManagement/policySets" => {
                Write::UpdatePolicySet
            }
            ("POST", [_, "targetApps"]) if APP_POLICIES.contains(&key) => Write::TargetApps,
            ("POST", [_, "updateSettings"]) if key == "deviceManagement/intents" => {
                Write::UpdateIntentSettings
            }
            ("PATCH", [_, "localizedNotificationMessages", _])
                if key == "deviceManagement/notificationMessageTemplates" =>
            {
                Write::PatchLocalizedMessage
            }
            _ => return None,
        };
        Some(write)
    }
}

/// Applies `write` to the object `rest[0]` of `collection`; the caller notes the change on
/// success.
pub(crate) fn apply(
    collection: &mut Collection,
    catalog: &Collection,
    write: Write,
    rest: &[&str],
    body: Option<&Value>,
    new_id: &mut dyn FnMut() -> String,
    ids: &RequestIds,
) -> Reply {
    let id = rest.first().copied().unwrap_or_default();
    let Some(Value::Object(body)) = body else {
        return graph_error(
            400,
            "BadRequest",
            "Empty Payload. JSON content expected.",
            ids,
        );
    };
    if !collection
        .objects
        .iter()
        .any(|o| o.get("id").and_then(Value::as_str) == Some(id))
    {
        return graph_error(
            404,
            "ResourceNotFound",
            &format!("No entity with id '{id}' was found."),
            ids,
        );
    }
    let result = match write {
        Write::ReplacePolicy => replace_policy(collection, id, body, new_id),
        // Each value binds its definition (group_policy.rs).
        Write::UpdateDefinitionValues => {
            crate::group_policy::update_definition_values(collection, catalog, id, body, new_id)
        }
        Write::ScheduleActionsForRules => schedule_actions(collection, id, body, new_id),
        Write::UpdatePolicySet => apply_changes(collection, id, body, &POLICY_SET_ITEMS, new_id),
        Write::TargetApps => target_apps(collection, id, body, new_id),
        Write::UpdateIntentSettings => update_intent_settings(collection, id, body, new_id),
        Write::PatchLocalizedMessage => {
            return patch_localized_message(collection, rest, body, ids);
        }
    };
    match result {
        Ok(()) => {
            stamp(collection, id);
            Reply::no_content()
        }
        Err(message) => graph_error(400, "BadRequest", &message, ids),
    }
}

/// `targetApps`: the policy's apps replaced by the body's `apps`.
/// https://learn.microsoft.com/graph/api/intune-mam-targetedmanagedappconfiguration-targetapps?view=graph-rest-1.0
/// https://learn.microsoft.com/graph/api/intune-mam-iosmanagedappprotection-targetapps?view=graph-rest-1.0
fn target_apps(
    collection: &mut Collection,
    id: &str,
    body: &Map<String, Value>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let apps: Vec<Value> = required_array(body, "apps")?
        .iter()
        .map(|a| with_id(a.clone(), new_id))
        .collect();
    collection.sub_resources.insert(format!("{id}/apps"), apps);
    Ok(())
}

/// An intent's `updateSettings`: each setting of the body replaces the intent's setting of
/// the same `definitionId` (an intent's settings are its template's; none is removed).
/// https://learn.microsoft.com/graph/api/intune-deviceintent-devicemanagementintent-updatesettings?view=graph-rest-beta
fn update_intent_settings(
    collection: &mut Collection,
    id: &str,
    body: &Map<String, Value>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let key = format!("{id}/settings");
    let mut settings = collection
        .sub_resources
        .get(&key)
        .cloned()
        .unwrap_or_default();
    for setting in array(body, "settings")? {
        let definition = setting
            .get("definitionId")
            .filter(|d| d.is_string())
            .ok_or("Each setting needs its definitionId.")?;
        match settings
            .iter_mut()
            .find(|s| s.get("definitionId") == Some(definition))
        {
            Some(existing) => {
                let kept = existing.get("id").cloned();
                *existing = setting.clone();
                if let (Some(map), Some(kept)) = (existing.as_object_mut(), kept) {
                    map.insert("id".into(), kept);
                }
            }
            None => settings.push(with_id(setting.clone(), new_id)),
        }
    }
    collection.sub_resources.insert(key, settings);
    Ok(())
}

/// `PATCH` of one localized message: its properties set from the body.
/// https://learn.microsoft.com/graph/api/intune-notification-localizednotificationmessage-update?view=graph-rest-1.0
fn patch_localized_message(
    collection: &mut Collection,
    rest: &[&str],
    body: &Map<String, Value>,
    ids: &RequestIds,
) -> Reply {
    let (id, message) = match rest {
        [id, _, message] => (*id, *message),
        _ => return graph_error(400, "BadRequest", "A message is patched by its id.", ids),
    };
    let found = collection
        .sub_resources
        .get_mut(&format!("{id}/localizedNotificationMessages"))
        .and_then(|items| {
            items
                .iter_mut()
                .find(|m| m.get("id").and_then(Value::as_str) == Some(message))
        })
        .and_then(Value::as_object_mut);
    let Some(found) = found else {
        return graph_error(
            404,
            "ResourceNotFound",
            &format!("No entity with id '{message}' was found."),
            ids,
        );
    };
    for (k, v) in body {
        if k != "id" {
            found.insert(k.clone(), v.clone());
        }
    }
    found.insert("lastModifiedDateTime".into(), json!(intune_now()));
    stamp(collection, id);
    Reply::no_content()
}

/// The object's modification stamps moved, as every Intune save does.
fn stamp(collection: &mut Collection, id: &str) {
    if let Some(object) = object_mut(collection, id) {
        if object.contains_key("lastModifiedDateTime") {
            object.insert("lastModifiedDateTime".into(), json!(intune_now()));
        }
        if let Some(version) = object.get("version").and_then(Value::as_u64) {
            object.insert("version".into(), json!(version + 1));
        }
    }
}

fn object_mut<'c>(collection: &'c mut Collection, id: &str) -> Option<&'c mut Map<String, Value>> {
    collection
        .objects
        .iter_mut()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))?
        .as_object_mut()
}

fn with_id(mut item: Value, new_id: &mut dyn FnMut() -> String) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.insert("id".into(), json!(new_id()));
    }
    item
}

/// An action's array parameter that must be sent (an empty array clears).
fn required_array<'b>(body: &'b Map<String, Value>, name: &str) -> Result<&'b [Value], String> {
    if !body.contains_key(name) {
        return Err(format!("The '{name}' parameter is required."));
    }
    array(body, name)
}

fn array<'b>(body: &'b Map<String, Value>, name: &str) -> Result<&'b [Value], String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("The '{name}' parameter must be a collection.")),
    }
}

/// Intune's settings-catalog `PUT`: the policy's properties and its whole `settings`
/// collection replaced by the body's (the Intune portal's save; the beta reference documents
/// PATCH, which leaves the settings alone:
/// https://learn.microsoft.com/graph/api/intune-deviceconfigv2-devicemanagementconfigurationpolicy-update?view=graph-rest-beta).
fn replace_policy(
    collection: &mut Collection,
    id: &str,
    body: &Map<String, Value>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let settings: Vec<Value> = array(body, "settings")?
        .iter()
        .map(|s| with_id(s.clone(), new_id))
        .collect();
    if !body.contains_key("settings") {
        return Err("The 'settings' property is required by a PUT of the policy.".into());
    }
    let count = settings.len();
    collection
        .sub_resources
        .insert(format!("{id}/settings"), settings);
    let object = object_mut(collection, id).ok_or("The policy is gone.")?;
    // Server-owned properties survive a PUT; everything else is the body's.
    let kept: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "id" | "createdDateTime" | "lastModifiedDateTime" | "creationSource"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let had_count = object.contains_key("settingCount");
    let had_assigned = object.get("isAssigned").cloned();
    *object = kept;
    for (k, v) in body {
        if !matches!(
            k.as_str(),
            "id" | "createdDateTime" | "lastModifiedDateTime" | "settings" | "assignments"
        ) {
            object.insert(k.clone(), v.clone());
        }
    }
    if had_count {
        object.insert("settingCount".into(), json!(count));
    }
    if let Some(assigned) = had_assigned {
        object.insert("isAssigned".into(), assigned);
    }
    Ok(())
}

/// The fields an action that changes a sub-collection names its three lists by, and what
/// its error messages call one element.
struct Changes {
    sub: &'static str,
    deleted: &'static str,
    updated: &'static str,
    added: &'static str,
    noun: &'static str,
}

/// An action's changes to a sub-collection of `id`: the `deleted` ids removed (with what
/// hangs below each, at `{sub}/{id}/...`), the `updated` elements (by id) replaced, the
/// `added` ones created at the end.
fn apply_changes(
    collection: &mut Collection,
    id: &str,
    body: &Map<String, Value>,
    c: &Changes,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let key = format!("{id}/{}", c.sub);
    let mut elements = collection
        .sub_resources
        .get(&key)
        .cloned()
        .unwrap_or_default();
    let at = |elements: &[Value], eid: &str| {
        elements
            .iter()
            .position(|v| v.get("id").and_then(Value::as_str) == Some(eid))
            .ok_or_else(|| format!("No {} with id '{eid}' was found.", c.noun))
    };
    for deleted in array(body, c.deleted)? {
        let eid = deleted
            .as_str()
            .ok_or_else(|| format!("{} holds strings.", c.deleted))?;
        elements.remove(at(&elements, eid)?);
        let below = format!("{key}/{eid}/");
        collection
            .sub_resources
            .retain(|k, _| !k.starts_with(&below));
    }
    for updated in array(body, c.updated)? {
        let eid = updated
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Each updated {} needs its id.", c.noun))?;
        let i = at(&elements, eid)?;
        elements[i] = updated.clone();
    }
    for added in array(body, c.added)? {
        elements.push(with_id(added.clone(), new_id));
    }
    collection.sub_resources.insert(key, elements);
    Ok(())
}

/// A policy set's `update`: `addedPolicySetItems` created, `updatedPolicySetItems` (by id)
/// replaced, `deletedPolicySetItems` (ids) removed.
/// https://learn.microsoft.com/graph/api/intune-policyset-policyset-update?view=graph-rest-beta
const POLICY_SET_ITEMS: Changes = Changes {
    sub: "items",
    deleted: "deletedPolicySetItems",
    updated: "updatedPolicySetItems",
    added: "addedPolicySetItems",
    noun: "policy set item",
};

/// `scheduleActionsForRules`: the policy's scheduled actions replaced by the body's.
/// https://learn.microsoft.com/graph/api/intune-deviceconfig-devicecompliancepolicy-scheduleactionsforrules?view=graph-rest-1.0
fn schedule_actions(
    collection: &mut Collection,
    id: &str,
    body: &Map<String, Value>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let rules: Vec<Value> = required_array(body, "deviceComplianceScheduledActionForRules")?
        .iter()
        .map(|rule| {
            let mut rule = with_id(rule.clone(), new_id);
            if let Some(Value::Array(actions)) = rule.get_mut("scheduledActionConfigurations") {
                for action in actions.iter_mut() {
                    *action = with_id(action.clone(), new_id);
                }
            }
            rule
        })
        .collect();
    collection
        .sub_resources
        .insert(format!("{id}/scheduledActionsForRule"), rules);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn ids() -> RequestIds {
        RequestIds {
            request_id: "r".into(),
            client_request_id: String::new(),
        }
    }

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("new{n}")
        }
    }

    fn policy() -> Collection {
        let mut c = Collection::default();
        c.objects
            .push(json!({"id": "p", "name": "P", "settingCount": 2, "lastModifiedDateTime": "x"}));
        c.sub_resources.insert(
            "p/settings".into(),
            vec![json!({"id": "0"}), json!({"id": "1"})],
        );
        c
    }

    #[test]
    fn a_put_replaces_the_settings_and_the_properties() {
        let mut c = policy();
        let body = json!({"name": "Q", "settings": [{"settingInstance": {"v": 1}}]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::ReplacePolicy,
            &["p"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(
            c.sub_resources["p/settings"],
            vec![json!({"settingInstance": {"v": 1}, "id": "new1"})]
        );
        assert_eq!(c.objects[0]["name"], "Q");
        assert_eq!(c.objects[0]["settingCount"], 1);
        assert_ne!(c.objects[0]["lastModifiedDateTime"], "x");
        let no_settings = json!({"name": "R"});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::ReplacePolicy,
            &["p"],
            Some(&no_settings),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 400);
        assert_eq!(c.objects[0]["name"], "Q", "a refused PUT changes nothing");
    }

    #[test]
    fn definition_values_are_added_updated_and_deleted() {
        let mut c = Collection::default();
        c.objects.push(json!({"id": "t"}));
        c.sub_resources.insert(
            "t/definitionValues".into(),
            vec![
                json!({"id": "a", "enabled": true}),
                json!({"id": "b", "enabled": true}),
            ],
        );
        c.sub_resources.insert(
            "t/definitionValues/a/presentationValues".into(),
            vec![json!({})],
        );
        // A value added without the definition it configures is refused (group_policy.rs).
        let unbound = json!({"added": [{"enabled": false}], "deletedIds": ["a"]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdateDefinitionValues,
            &["t"],
            Some(&unbound),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 400);
        assert_eq!(c.sub_resources["t/definitionValues"].len(), 2);
        let body = json!({"updated": [{"id": "b", "enabled": false}], "deletedIds": ["a"]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdateDefinitionValues,
            &["t"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        let values = &c.sub_resources["t/definitionValues"];
        assert_eq!(values.len(), 1);
        assert_eq!(
            (&values[0]["id"], &values[0]["enabled"]),
            (&json!("b"), &json!(false))
        );
        assert!(
            !c.sub_resources
                .contains_key("t/definitionValues/a/presentationValues")
        );
        let unknown = json!({"deletedIds": ["zzz"]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdateDefinitionValues,
            &["t"],
            Some(&unknown),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 400);
        assert_eq!(c.sub_resources["t/definitionValues"].len(), 1);
    }

    #[test]
    fn scheduled_actions_are_replaced() {
        let mut c = Collection::default();
        c.objects.push(json!({"id": "c"}));
        let body = json!({"deviceComplianceScheduledActionForRules": [{"ruleName": null, "scheduledActionConfigurations": [{"actionType": "block"}]}]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::ScheduleActionsForRules,
            &["c"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        let rules = &c.sub_resources["c/scheduledActionsForRule"];
        assert_eq!(
            rules[0]["scheduledActionConfigurations"][0]["actionType"],
            "block"
        );
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::ScheduleActionsForRules,
            &["zzz"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 404);
    }

    #[test]
    fn policy_set_items_are_added_updated_and_deleted() {
        let mut c = Collection::default();
        c.objects.push(json!({"id": "s"}));
        c.sub_resources.insert(
            "s/items".into(),
            vec![
                json!({"id": "a", "payloadId": "p1"}),
                json!({"id": "b", "payloadId": "p2"}),
            ],
        );
        let body = json!({"addedPolicySetItems": [{"payloadId": "p3"}], "updatedPolicySetItems": [{"id": "b", "payloadId": "p2", "displayName": "x"}], "deletedPolicySetItems": ["a"]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdatePolicySet,
            &["s"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(
            c.sub_resources["s/items"],
            vec![
                json!({"id": "b", "payloadId": "p2", "displayName": "x"}),
                json!({"id": "new1", "payloadId": "p3"})
            ]
        );
        let unknown = json!({"updatedPolicySetItems": [{"id": "zzz"}]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdatePolicySet,
            &["s"],
            Some(&unknown),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 400);
    }

    #[test]
    fn apps_are_replaced_and_intent_settings_merged_by_definition() {
        let mut c = Collection::default();
        c.objects.push(json!({"id": "a"}));
        let body = json!({"apps": [{"mobileAppIdentifier": {"bundleId": "x"}}]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::TargetApps,
            &["a"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(
            c.sub_resources["a/apps"][0]["mobileAppIdentifier"]["bundleId"],
            "x"
        );
        c.sub_resources.insert(
            "a/settings".into(),
            vec![
                json!({"id": "s1", "definitionId": "d1", "valueJson": "true"}),
                json!({"id": "s2", "definitionId": "d2", "valueJson": "1"}),
            ],
        );
        let body = json!({"settings": [{"definitionId": "d1", "valueJson": "false"}]});
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::UpdateIntentSettings,
            &["a"],
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(
            c.sub_resources["a/settings"],
            vec![
                json!({"id": "s1", "definitionId": "d1", "valueJson": "false"}),
                json!({"id": "s2", "definitionId": "d2", "valueJson": "1"})
            ]
        );
    }

    #[test]
    fn a_localized_message_is_patched_by_its_id() {
        let mut c = Collection::default();
        c.objects.push(json!({"id": "n"}));
        c.sub_resources.insert(
            "n/localizedNotificationMessages".into(),
            vec![json!({"id": "n_en-us", "locale": "en-us", "subject": "A"})],
        );
        let body = json!({"subject": "B"});
        let rest = ["n", "localizedNotificationMessages", "n_en-us"];
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::PatchLocalizedMessage,
            &rest,
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(
            c.sub_resources["n/localizedNotificationMessages"][0]["subject"],
            "B"
        );
        let missing = ["n", "localizedNotificationMessages", "n_fr-fr"];
        let r = apply(
            &mut c,
            &Collection::default(),
            Write::PatchLocalizedMessage,
            &missing,
            Some(&body),
            &mut counter(),
            &ids(),
        );
        assert_eq!(r.status, 404);
    }

    #[test]
    fn only_the_documented_shapes_are_in_place_writes() {
        let of = Write::of;
        assert_eq!(
            of("PUT", "deviceManagement/configurationPolicies", &["p"]),
            Some(Write::ReplacePolicy)
        );
        assert_eq!(
            of("PUT", "deviceManagement/deviceConfigurations", &["p"]),
            None
        );
        assert_eq!(
            of(
                "POST",
                "deviceManagement/groupPolicyConfigurations",
                &["t", "updateDefinitionValues"]
            ),
            Some(Write::UpdateDefinitionValues)
        );
        assert_eq!(
            of(
                "POST",
                "deviceManagement/intents",
                &["t", "updateDefinitionValues"]
            ),
            None
        );
        assert_eq!(
            of(
                "POST",
                "deviceAppManagement/mobileApps",
                &["t", "targetApps"]
            ),
            None
        );
        assert_eq!(
            of(
                "PATCH",
                "deviceManagement/notificationMessageTemplates",
                &["n", "localizedNotificationMessages", "m"]
            ),
            Some(Write::PatchLocalizedMessage)
        );
        assert_eq!(
            of(
                "PATCH",
                "deviceManagement/notificationMessageTemplates",
                &["n"]
            ),
            None
        );
    }
}
