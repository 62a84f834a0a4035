//! Backups: what a snapshot of one object is, how it is hashed, and the manifest of a backup set.
//!
//! A snapshot is the object's full Graph payload (with settings, definition values, script
//! content and assignments folded in) after [`normalize`]: volatile fields are removed so that an
//! unchanged policy hashes the same in every backup and, after a restore gave it new ids, the same
//! as before. The hash names the snapshot's storage key, so an unchanged policy costs no new object.
//!
//! `@odata.type` is kept, at every depth: it is configuration, not a stamp (it never changes
//! for an object), and a restore must send it: Graph creates nothing in a collection of an
//! abstract type (`deviceConfigurations`, `mobileApps`, `namedLocations`, ...) without it, nor
//! a settings-catalog setting or an assignment target. Snapshots taken before it was kept
//! hash differently from the same object's later ones (see ARCHITECTURE.md, "Snapshot hashes").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ids::{BackupSetId, RunId, ScheduleId, TenantId, WorkspaceId};

/// Fields that change without the configuration changing: identifiers Graph assigns (a restored
/// object gets new ones), timestamps and version stamps. OData annotations other than
/// [`ODATA_TYPE`] (`@odata.context`, `@odata.etag`, `x@odata.navigationLink`, ...) go too.
const VOLATILE: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "modifiedDateTime",
    "version",
    "settingCount",
    "creationSource",
    "isAssigned",
];

/// The one annotation a snapshot keeps: the object's concrete type, which a create must name.
pub const ODATA_TYPE: &str = "@odata.type";

/// Navigations that name an entry of a catalog the tenant does not own rather than a part of
/// the object: an administrative template value's `definition` (a groupPolicyDefinition)
/// and its presentation values' `presentation`. Their `id` is kept: it is the same before and
/// after a restore (the catalog is not restored, and Microsoft's built-in definitions carry the
/// same ids in every tenant), and it is the only thing a restore can bind the value to
/// (`definition@odata.bind` names the definition by id; a displayName is not unique across
/// ADMX files). Snapshots written before kept no such id (see ARCHITECTURE.md, "Snapshot
/// hashes").
const CATALOG_REFERENCES: &[&str] = &["definition", "presentation"];

/// Whether a key is an OData annotation a snapshot leaves out.
fn dropped_annotation(k: &str) -> bool {
    k != ODATA_TYPE && (k.starts_with('@') || k.contains("@odata."))
}

/// The payload as hashed and stored: volatile fields removed at every depth, object keys in a
/// stable order (serde_json's map is sorted), array order kept except for `assignments`, which
/// Graph returns in no particular order.
pub fn normalize(payload: &Value) -> Value {
    normalize_in(payload, false)
}

/// [`normalize`], keeping the `id` of an object that is a catalog reference.
fn normalize_in(payload: &Value, catalog_reference: bool) -> Value {
    match payload {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let kept_id = catalog_reference && k == "id";
                if (VOLATILE.contains(&k.as_str()) && !kept_id)
                    || dropped_annotation(k)
                    || is_secret(k, v, map)
                {
                    continue;
                }
                let mut v = normalize_in(v, CATALOG_REFERENCES.contains(&k.as_str()));
                if let (true, Value::Array(items)) = (k == "assignments", &mut v) {
                    items.sort_by_key(|a| a.to_string());
                }
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Endings of property names that hold a credential (Wi-Fi and VPN pre-shared keys, PFX and
/// proxy passwords, shared secrets). Graph answers them `null` on reads, but a payload that
/// carries one must not carry it into a snapshot, a manifest, a diff or a drift report.
const SECRET_ENDINGS: &[&str] = &[
    "password",
    "presharedkey",
    "sharedsecret",
    "secret",
    "passphrase",
];

/// A string property named as a credential, or the `value` of a settings-catalog secret
/// setting (`#microsoft.graph.deviceManagementConfigurationSecretSettingValue`).
fn is_secret(key: &str, value: &Value, parent: &Map<String, Value>) -> bool {
    let lower = key.to_ascii_lowercase();
    let named = SECRET_ENDINGS.iter().any(|e| lower.ends_with(e)) && value.is_string();
    let secret_setting = key == "value"
        && parent
            .get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("SecretSettingValue"));
    named || secret_setting
}

/// Hex sha256 of a normalized payload's canonical JSON.
pub fn content_hash(normalized: &Value) -> String {
    let bytes = canonical_bytes(normalized);
    hex(&Sha256::digest(&bytes))
}

/// The canonical JSON bytes of a normalized payload (what is stored and hashed).
pub fn canonical_bytes(normalized: &Value) -> Vec<u8> {
    // serde_json's default map is a BTreeMap, so keys are already in a stable order.
    serde_json::to_vec(normalized).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who an object is assigned to, as the manifest summarizes it (ids only, no names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentsSummary {
    pub count: u32,
    #[serde(default)]
    pub all_devices: bool,
    #[serde(default)]
    pub all_users: bool,
    /// Entra group ids the object is included for or excluded from.
    #[serde(default)]
    pub group_ids: Vec<String>,
    /// Intune assignment filter ids the assignments use.
    #[serde(default)]
    pub filter_ids: Vec<String>,
}

impl AssignmentsSummary {
    /// Reads Intune's assignment shape: `[{target: {@odata.type, groupId?,
    /// deviceAndAppManagementAssignmentFilterId?}}]`.
    pub fn of(assignments: &[Value]) -> Self {
        let mut s = AssignmentsSummary {
            count: u32::try_from(assignments.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        for a in assignments {
            let target = a.get("target").unwrap_or(a);
            let kind = target
                .get("@odata.type")
                .and_then(Value::as_str)
                .unwrap_or("");
            if kind.ends_with("allDevicesAssignmentTarget") {
                s.all_devices = true;
            }
            if kind.ends_with("allLicensedUsersAssignmentTarget") {
                s.all_users = true;
            }
            if let Some(g) = target.get("groupId").and_then(Value::as_str)
                && !s.group_ids.iter().any(|x| x == g)
            {
                s.group_ids.push(g.to_owned());
            }
            if let Some(f) = target
                .get("deviceAndAppManagementAssignmentFilterId")
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty())
                && !s.filter_ids.iter().any(|x| x == f)
            {
                s.filter_ids.push(f.to_owned());
            }
        }
        s
    }
}

/// One object of a backup set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The contract registry's type name, e.g. `configurationPolicies`.
    pub object_type: String,
    /// The object's id in the tenant when it was backed up.
    pub object_id: String,
    pub name: String,
    /// [`content_hash`] of the normalized payload.
    pub hash: String,
    /// Where the normalized payload is stored (content-addressed).
    pub snapshot_key: String,
    pub assignments: AssignmentsSummary,
}

/// How a backup set ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupSetStatus {
    /// Every in-scope object was captured.
    Complete,
    /// Some objects failed; the manifest lists those that were captured.
    Partial,
}

/// A backup set: written once, when its run has captured every object it could.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSet {
    pub id: BackupSetId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<ScheduleId>,
    pub status: BackupSetStatus,
    /// Object types in scope.
    pub types: Vec<String>,
    pub object_count: u32,
    /// Where the manifest (JSON array of [`ManifestEntry`]) is stored.
    pub manifest_key: String,
    pub manifest_hash: String,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restored_object_with_new_ids_and_times_hashes_the_same() {
        let before = json!({
            "id": "a1", "name": "Baseline", "lastModifiedDateTime": "2026-01-01T00:00:00Z",
            "@odata.context": "x", "settings": [{"id": "0", "settingInstance": {"v": 1}}],
            "assignments": [
                {"id": "a1_g2", "target": {"groupId": "g2"}},
                {"id": "a1_g1", "target": {"groupId": "g1"}}
            ]
        });
        let after = json!({
            "id": "b9", "name": "Baseline", "lastModifiedDateTime": "2026-02-01T00:00:00Z",
            "settings": [{"id": "7", "settingInstance": {"v": 1}}],
            "assignments": [
                {"id": "b9_g1", "target": {"groupId": "g1"}},
                {"id": "b9_g2", "target": {"groupId": "g2"}}
            ]
        });
        assert_eq!(
            content_hash(&normalize(&before)),
            content_hash(&normalize(&after))
        );
    }

    #[test]
    fn credentials_never_reach_a_snapshot() {
        let payload = json!({
            "name": "Wi-Fi", "preSharedKey": "hunter2", "passwordRequired": true,
            "passwordMinimumLength": 8, "proxyPassword": "p", "secretReferenceValueId": null,
            "settings": [{"settingInstance": {"simpleSettingValue": {
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationSecretSettingValue",
                "value": "s3cr3t", "valueState": "encryptedValueToken"}}}]
        });
        let text = normalize(&payload).to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cr3t"),
            "{text}"
        );
        assert!(!text.contains("proxyPassword"), "{text}");
        assert!(text.contains("passwordRequired") && text.contains("passwordMinimumLength"));
        assert!(text.contains("valueState"), "{text}");
    }

    #[test]
    fn the_objects_type_is_kept_at_every_depth_and_other_annotations_go() {
        let n = normalize(&json!({
            "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
            "@odata.context": "x", "@odata.etag": "W/1", "settings@odata.navigationLink": "y",
            "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget"}}]
        }));
        assert_eq!(
            n,
            json!({
                "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
                "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget"}}]
            })
        );
        let other = json!({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration"});
        assert_ne!(content_hash(&n), content_hash(&normalize(&other)));
    }

    #[test]
    fn a_template_value_keeps_the_ids_of_the_definition_and_presentations_it_binds() {
        let value = |value_id: &str, stamp: &str| {
            json!({"definitionValues": [{
                "id": value_id, "enabled": true, "lastModifiedDateTime": stamp,
                "definition": {"id": "d1", "displayName": "Home page", "version": "1.0",
                    "lastModifiedDateTime": stamp},
                "presentationValues": [{"id": format!("{value_id}-p"), "value": "https://a",
                    "presentation": {"id": "p1", "label": "URL", "lastModifiedDateTime": stamp}}]
            }]})
        };
        let n = normalize(&value("v1", "2026-01-01T00:00:00Z"));
        assert_eq!(
            n,
            json!({"definitionValues": [{
                "enabled": true,
                "definition": {"id": "d1", "displayName": "Home page"},
                "presentationValues": [{"value": "https://a",
                    "presentation": {"id": "p1", "label": "URL"}}]
            }]})
        );
        assert_eq!(
            content_hash(&n),
            content_hash(&normalize(&value("v9", "2026-02-01T00:00:00Z"))),
            "a restored value (new ids, new stamps) hashes the same"
        );
    }

    #[test]
    fn a_changed_setting_changes_the_hash() {
        let a = json!({"name": "P", "settings": [{"settingInstance": {"v": 1}}]});
        let b = json!({"name": "P", "settings": [{"settingInstance": {"v": 2}}]});
        assert_ne!(content_hash(&normalize(&a)), content_hash(&normalize(&b)));
    }

    #[test]
    fn assignments_summary_lists_groups_and_filters_once() {
        let s = AssignmentsSummary::of(&[
            json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1",
                "deviceAndAppManagementAssignmentFilterId": "f1"}}),
            json!({"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g1"}}),
            json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
        ]);
        assert_eq!(s.count, 3);
        assert_eq!(s.group_ids, vec!["g1"]);
        assert_eq!(s.filter_ids, vec!["f1"]);
        assert!(s.all_devices && !s.all_users);
    }
}
