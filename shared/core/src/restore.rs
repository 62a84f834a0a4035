//! Restores: what a preview plans for each selected snapshot object, how assignment targets
//! are mapped into the destination tenant, and whether the plan may be executed.
//!
//! Pure: the worker's `restore.preview` job gathers the inputs (the backup set's manifest,
//! the snapshots, the last observed inventory, the cached directory groups) and its
//! `restore.execute` job applies the result.
//!
//! - **Action**: an object present (not deleted) in the last inventory is `update`d, or
//!   `skip_unchanged` when its latest backed-up hash equals the snapshot's and the inventory's
//!   `lastModifiedDateTime` did not move past that backup; an absent or deleted object is
//!   `create`d.
//! - **Diff**: field-level, `{path, before, after}`, over normalized payloads (volatile fields
//!   already removed by [`crate::backup::normalize`]): the snapshot ("after") against the
//!   object's latest backed-up payload when there is one, otherwise against the inventory's
//!   metadata fields.
//! - **Mapping**: a group id is `resolved` when the same id exists in the tenant's cached
//!   groups, `mapped` when the caller maps it to a cached group, `dropped` when the caller
//!   drops it (every assignment that uses it is left out), `unresolved` otherwise. The same for
//!   assignment filter ids against the inventory of `assignmentFilters`. Any unresolved target
//!   blocks execution.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backup::AssignmentsSummary;
use crate::object_type::{ObjectTypeFacts, Risk};
use crate::reason::ReasonCode;

/// How long a preview may be executed after it was computed.
pub const PREVIEW_VALIDITY: TimeDelta = TimeDelta::minutes(30);
/// Field changes kept per item; a longer diff is cut and marked truncated.
pub const MAX_DIFF_CHANGES: usize = 200;
/// Entries a mapping may hold (groups, filters, scope tags, named locations and drops together).
pub const MAX_MAPPING_ENTRIES: usize = 500;
/// Items a preview may select by name; leaving the selection out previews the whole backup
/// set, at any size.
pub const MAX_SELECTED_ITEMS: usize = 500;
/// Bytes of diff an item keeps inline (as JSON); a longer diff is stored whole in the
/// snapshot bucket and the item keeps a capped excerpt, so an item stays far below
/// DynamoDB's 400 KB and a page of items far below Lambda's 6 MB response.
pub const INLINE_DIFF_BYTES: usize = 16 * 1024;
/// Characters an inline value keeps when it is cut to an excerpt.
pub const EXCERPT_CHARS: usize = 512;

/// The caller's mapping of assignment targets into the destination tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Source group id → destination group id (must be in the tenant's cached groups).
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// Source assignment filter id → destination filter id (must be in the inventory).
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    /// Source scope tag id → destination scope tag id (must be in the destination's
    /// inventory of `roleScopeTags`). Read by a restore into another tenant only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_tags: BTreeMap<String, String>,
    /// Source named location id → destination named location id (must be in the
    /// destination's inventory of `namedLocations`). Read by a restore into another tenant
    /// only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named_locations: BTreeMap<String, String>,
    /// Group, filter, scope tag or named location ids left out of the restore: every
    /// assignment that uses one, and the id itself from the lists that name it.
    #[serde(default)]
    pub drop: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("mapping ids must be 1 to 128 visible characters")]
    BadId,
    #[error("`{0}` is both mapped and dropped")]
    MappedAndDropped(String),
    #[error("a mapping holds at most {MAX_MAPPING_ENTRIES} entries")]
    TooLarge,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic() && c != '#')
}

impl Mapping {
    pub fn validate(&self) -> Result<(), MappingError> {
        let maps = [
            &self.groups,
            &self.filters,
            &self.scope_tags,
            &self.named_locations,
        ];
        if maps.iter().map(|m| m.len()).sum::<usize>() + self.drop.len() > MAX_MAPPING_ENTRIES {
            return Err(MappingError::TooLarge);
        }
        let ids = maps
            .iter()
            .flat_map(|m| m.iter())
            .flat_map(|(a, b)| [a, b])
            .chain(self.drop.iter());
        for id in ids {
            if !valid_id(id) {
                return Err(MappingError::BadId);
            }
        }
        if let Some(both) = self
            .drop
            .iter()
            .find(|d| maps.iter().any(|m| m.contains_key(*d)))
        {
            return Err(MappingError::MappedAndDropped(
                both.chars().take(64).collect(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    SkipUnchanged,
}

/// One changed field of a payload. `None` means absent on that side, and the side is then
/// left out of the JSON (as the README documents), never written as `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// `before` and `after` are excerpts (strings of at most [`EXCERPT_CHARS`] characters)
    /// of values too long to keep inline; the whole diff is stored beside the item.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excerpt: bool,
}

/// What the diff compared the snapshot with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffBase {
    /// The object's latest backed-up payload.
    LatestBackup,
    /// Only the inventory's metadata fields (no backup of the object exists).
    Inventory,
    /// Nothing: the object does not exist in the tenant.
    None,
}

/// Field-level differences from `before` to `after`: objects are compared key by key at every
/// depth, arrays of equal length element by element (`path[i]`), arrays of objects of
/// different lengths by the elements only one side has, anything else as a whole.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into("", Some(before), Some(after), &mut out);
    out
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn diff_into(
    path: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    // Graph writes an unset property as `null` or leaves it out, interchangeably: both are
    // "absent", so a create lists no `null → null` rows and `null` vs missing is no change.
    match (present(before), present(after)) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff_into(&join(path, k), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_into(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        // Arrays of objects that gained or lost elements (a setting removed from a policy):
        // the elements found on one side only, each at its index, the k-th lost one compared
        // field by field with the k-th gained one.
        (Some(Value::Array(a)), Some(Value::Array(b)))
            if a.iter().chain(b).all(Value::is_object) =>
        {
            let mut used = vec![false; b.len()];
            let mut only_before = Vec::new();
            for (i, x) in a.iter().enumerate() {
                match (0..b.len()).find(|&j| !used[j] && b[j] == *x) {
                    Some(j) => used[j] = true,
                    None => only_before.push(i),
                }
            }
            let only_after: Vec<usize> = (0..b.len()).filter(|&j| !used[j]).collect();
            for k in 0..only_before.len().max(only_after.len()) {
                let (i, j) = (only_before.get(k).copied(), only_after.get(k).copied());
                let at = j.or(i).unwrap_or_default();
                diff_into(
                    &format!("{path}[{at}]"),
                    i.and_then(|i| a.get(i)),
                    j.and_then(|j| b.get(j)),
                    out,
                );
            }
        }
        (None, None) => {}
        (a, b) => out.push(FieldChange {
            path: if path.is_empty() {
                "$".into()
            } else {
                path.to_owned()
            },
            before: a.cloned(),
            after: b.cloned(),
            excerpt: false,
        }),
    }
}

/// The field in which an inventory item records the object's `@odata.type`.
pub const INVENTORY_TYPE_FIELD: &str = "odataType";

/// The inventory's metadata (normalized) and the snapshot's fields of the same names, so that
/// a diff against inventory metadata compares like with like: `(before, after)`.
pub fn comparable_to_meta(snapshot: &Value, meta: &Value) -> (Value, Value) {
    let mut before = crate::backup::normalize(meta);
    // The inventory's own record of `@odata.type` under another name (a snapshot keeps it as
    // `@odata.type`): the type of an existing object never changes, so it is not compared.
    if let Some(m) = before.as_object_mut() {
        m.remove(INVENTORY_TYPE_FIELD);
    }
    let after = match (snapshot.as_object(), before.as_object()) {
        (Some(s), Some(m)) => Value::Object(
            s.iter()
                .filter(|(k, _)| m.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => snapshot.clone(),
    };
    (before, after)
}

/// What the last inventory knows of the object the snapshot was taken of.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub deleted: bool,
    /// The inventory's `lastModifiedDateTime` (or `modifiedDateTime`) of the object.
    pub last_modified: Option<DateTime<Utc>>,
}

/// The newest backup of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestBackup {
    pub hash: String,
    pub backed_up_at: DateTime<Utc>,
}

/// See the module docs.
pub fn decide_action(
    snapshot_hash: &str,
    observed: Option<&Observed>,
    latest: Option<&LatestBackup>,
) -> Action {
    let Some(obs) = observed.filter(|o| !o.deleted) else {
        return Action::Create;
    };
    match latest {
        Some(l)
            if l.hash == snapshot_hash
                && obs.last_modified.is_some_and(|m| m <= l.backed_up_at) =>
        {
            Action::SkipUnchanged
        }
        _ => Action::Update,
    }
}

/// What an item's diff compares the snapshot with: the object's latest backup while that
/// backup still reflects the object (the inventory's last modification is not later), else
/// the inventory's metadata (the only newer view a preview has without Graph); nothing for a
/// create.
pub fn diff_base(
    action: Action,
    observed: Option<&Observed>,
    latest: Option<&LatestBackup>,
) -> DiffBase {
    if action == Action::Create {
        return DiffBase::None;
    }
    match (observed, latest) {
        (Some(o), Some(l)) if o.last_modified.is_some_and(|m| m <= l.backed_up_at) => {
            DiffBase::LatestBackup
        }
        (Some(_), _) => DiffBase::Inventory,
        (None, Some(_)) => DiffBase::LatestBackup,
        (None, None) => DiffBase::None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Group,
    Filter,
    /// A scope tag an object names in `roleScopeTagIds` (restores into another tenant).
    ScopeTag,
    /// A named location a Conditional Access policy's conditions name (restores into
    /// another tenant).
    NamedLocation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// The same id exists in the destination.
    Resolved,
    /// The caller mapped it to an id that exists in the destination (mapped explicitly).
    Mapped,
    /// A restore into another tenant: the one destination object with the source's display
    /// name.
    MappedByName,
    /// The caller chose to leave its assignments out.
    Dropped,
    /// Neither: execution is blocked until it is mapped or dropped.
    Unresolved,
}

/// How one assignment target of an item is carried into the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResolution {
    pub kind: TargetKind,
    pub source_id: String,
    pub status: TargetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Why an explicit mapping did not resolve (its destination is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The source object's display name, as the source tenant's cache holds it (restores
    /// into another tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Why an unresolved target is unresolved, as a stable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonCode>,
}

/// Resolves every group and filter an item's assignments use.
pub fn resolve_targets(
    summary: &AssignmentsSummary,
    group_exists: &dyn Fn(&str) -> bool,
    filter_exists: &dyn Fn(&str) -> bool,
    mapping: &Mapping,
) -> Vec<TargetResolution> {
    let one = |kind: TargetKind, id: &str| {
        let (map, exists) = match kind {
            TargetKind::Filter => (&mapping.filters, filter_exists),
            // Only groups and filters are resolved in the same tenant.
            _ => (&mapping.groups, group_exists),
        };
        let mut r = TargetResolution {
            kind,
            source_id: id.to_owned(),
            status: TargetStatus::Unresolved,
            target_id: None,
            note: None,
            source_name: None,
            reason: None,
        };
        if mapping.drop.contains(id) {
            r.status = TargetStatus::Dropped;
        } else if let Some(to) = map.get(id) {
            if exists(to) {
                r.status = TargetStatus::Mapped;
                r.target_id = Some(to.clone());
            } else {
                r.note = Some("the mapped destination is not in the tenant's cache".into());
            }
        } else if exists(id) {
            r.status = TargetStatus::Resolved;
            r.target_id = Some(id.to_owned());
        }
        if r.status == TargetStatus::Unresolved {
            r.reason = Some(ReasonCode::RestoreMappingUnresolved);
        }
        r
    };
    summary
        .group_ids
        .iter()
        .map(|g| one(TargetKind::Group, g))
        .chain(
            summary
                .filter_ids
                .iter()
                .map(|f| one(TargetKind::Filter, f)),
        )
        .collect()
}

/// The assignments to write: dropped targets' assignments left out, mapped ids replaced, and
/// the ids Graph gave the old assignments removed.
pub fn rewrite_assignments(assignments: &[Value], targets: &[TargetResolution]) -> Vec<Value> {
    let find =
        |kind: TargetKind, id: &str| targets.iter().find(|t| t.kind == kind && t.source_id == id);
    let mut out = Vec::new();
    'each: for a in assignments {
        let mut a = a.clone();
        if let Some(map) = a.as_object_mut() {
            map.remove("id");
        }
        for (field, kind) in [
            ("groupId", TargetKind::Group),
            (
                "deviceAndAppManagementAssignmentFilterId",
                TargetKind::Filter,
            ),
        ] {
            let Some(id) = a
                .pointer(&format!("/target/{field}"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
            else {
                continue;
            };
            match find(kind, &id) {
                Some(t) if t.status == TargetStatus::Dropped => continue 'each,
                Some(TargetResolution {
                    target_id: Some(to),
                    ..
                }) => {
                    if let Some(target) = a.get_mut("target").and_then(Value::as_object_mut) {
                        target.insert(field.into(), Value::String(to.clone()));
                    }
                }
                // Unresolved targets never reach execution (the preview is blocked).
                _ => continue 'each,
            }
        }
        out.push(a);
    }
    out
}

/// Why an item, or the whole preview, cannot be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocker {
    /// An assignment target is neither resolved, mapped nor dropped.
    MappingUnresolved,
    /// The type is high-risk and the workspace has not enabled such restores.
    HighRiskDisabled,
    /// The type cannot be written back.
    NotRestorable,
}

impl Blocker {
    pub fn reason(self) -> ReasonCode {
        match self {
            Blocker::MappingUnresolved => ReasonCode::RestoreMappingUnresolved,
            Blocker::HighRiskDisabled => ReasonCode::RestoreHighRiskDisabled,
            Blocker::NotRestorable => ReasonCode::RestoreTypeNotRestorable,
        }
    }
}

/// What the restore engine knows of a type, from the object-type catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypePolicy {
    pub restorable: bool,
    pub high_risk: bool,
}

/// The policy of a catalogue type name; an unknown name is not restorable.
pub fn type_policy(name: &str, known: bool) -> TypePolicy {
    let facts = ObjectTypeFacts::named(name);
    TypePolicy {
        restorable: known && facts.is_some_and(|f| f.restore.is_supported()),
        high_risk: facts.is_some_and(|f| f.risk == Risk::High),
    }
}

/// The blockers of one item.
pub fn blockers_of(
    policy: TypePolicy,
    high_risk_enabled: bool,
    action: Action,
    targets: &[TargetResolution],
) -> Vec<Blocker> {
    let mut out = Vec::new();
    if action == Action::SkipUnchanged {
        return out;
    }
    if !policy.restorable {
        out.push(Blocker::NotRestorable);
    }
    if policy.high_risk && !high_risk_enabled {
        out.push(Blocker::HighRiskDisabled);
    }
    if targets.iter().any(|t| t.status == TargetStatus::Unresolved) {
        out.push(Blocker::MappingUnresolved);
    }
    out
}

/// Bytes of a diff as JSON.
pub fn diff_bytes(diff: &[FieldChange]) -> usize {
    serde_json::to_vec(diff).map_or(usize::MAX, |v| v.len())
}

/// A value cut to an excerpt: a string's first [`EXCERPT_CHARS`] characters, or the first
/// characters of any other value's JSON text.
fn excerpt_of(v: &Value) -> Value {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Value::String(text.chars().take(EXCERPT_CHARS).collect())
}

/// What an item keeps inline of a diff: at most [`MAX_DIFF_CHANGES`] changes and
/// [`INLINE_DIFF_BYTES`] bytes, long values cut to excerpts. `true` when anything was cut
/// (the whole diff is then stored beside the item).
pub fn inline_diff(diff: &[FieldChange]) -> (Vec<FieldChange>, bool) {
    if diff.len() <= MAX_DIFF_CHANGES && diff_bytes(diff) <= INLINE_DIFF_BYTES {
        return (diff.to_vec(), false);
    }
    let mut out = Vec::new();
    let mut bytes = 2;
    for change in diff.iter().take(MAX_DIFF_CHANGES) {
        let long = |v: &Option<Value>| {
            v.as_ref()
                .is_some_and(|v| v.to_string().len() > EXCERPT_CHARS)
        };
        let mut c = change.clone();
        if long(&c.before) || long(&c.after) {
            c.before = c.before.as_ref().map(excerpt_of);
            c.after = c.after.as_ref().map(excerpt_of);
            c.excerpt = true;
        }
        let size = serde_json::to_vec(&c).map_or(usize::MAX, |v| v.len()) + 1;
        if bytes + size > INLINE_DIFF_BYTES {
            break;
        }
        bytes += size;
        out.push(c);
    }
    (out, true)
}

/// What tells two previews of one backup set apart: the selected `(type, id)`s, sorted
/// (`None`: the whole set), and the mapping, as hex sha256 (128 bits). Two starts with the
/// same set and selection while one is active are one run.
pub fn selection_hash(items: Option<&[(String, String)]>, mapping: &Mapping) -> String {
    let sorted = items.map(|i| i.iter().collect::<BTreeSet<_>>());
    let canonical = serde_json::json!({ "items": sorted, "mapping": mapping });
    Sha256::digest(canonical.to_string().as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hex sha256 of a confirmation token: all that is stored of it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a preview computed at `created_at` may still be executed at `now`.
pub fn is_current(created_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - created_at <= PREVIEW_VALIDITY
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a timestamp")
    }

    #[test]
    fn diff_walks_nested_objects_and_equal_length_arrays() {
        let before =
            json!({"name": "A", "settings": [{"v": 1}, {"v": 2}], "gone": true, "o": {"x": 1}});
        let after = json!({"name": "B", "settings": [{"v": 1}, {"v": 3}], "new": 1, "o": {"x": 1}});
        let d = diff(&before, &after);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["gone", "name", "new", "settings[1].v"]);
        assert_eq!(d[0].after, None);
        assert_eq!(d[2].before, None);
        assert_eq!(d[3].after, Some(json!(3)));
    }

    #[test]
    fn a_lost_or_gained_element_of_an_object_array_is_its_own_row() {
        let kept = |v: u32| json!({"settingInstance": {"settingDefinitionId": format!("s{v}")}});
        let live = json!({"settings": [kept(1), kept(3)]});
        let snapshot = json!({"settings": [kept(1), kept(2), kept(3)]});
        let d = diff(&live, &snapshot);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "settings[1]");
        assert_eq!(
            (d[0].before.clone(), d[0].after.clone()),
            (None, Some(kept(2)))
        );
        let back = diff(&snapshot, &live);
        assert_eq!(back[0].path, "settings[1]");
        assert_eq!(back[0].after, None);
        // A changed element beside a removed one is compared field by field.
        let changed = json!({"settings": [kept(9)]});
        let d = diff(&snapshot, &changed);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "settings[0].settingInstance.settingDefinitionId",
                "settings[1]",
                "settings[2]"
            ]
        );
    }

    #[test]
    fn a_diff_against_inventory_metadata_compares_only_the_fields_it_keeps() {
        let snapshot = json!({"name": "P", "description": "", "settings": [{"v": 1}]});
        let meta = json!({"id": "x", "name": "P", "description": "edited",
            "lastModifiedDateTime": "2026-11-02T00:00:00Z"});
        let (before, after) = comparable_to_meta(&snapshot, &meta);
        let d = diff(&before, &after);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "description");
        assert_eq!(d[0].before, Some(json!("edited")));
        assert_eq!(d[0].after, Some(json!("")));
    }

    #[test]
    fn null_and_absent_are_the_same_and_an_absent_side_is_left_out() {
        let d = diff(
            &json!({}),
            &json!({"name": "P", "osEdition": null, "o": {"x": null}}),
        );
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].path, "name");
        assert_eq!(d[1].path, "o");
        let row = serde_json::to_value(&d[0]).expect("serializes");
        assert_eq!(row, json!({"path": "name", "after": "P"}));
        assert!(diff(&json!({"a": null}), &json!({})).is_empty());
        assert_eq!(
            diff(&json!({"a": null}), &json!({"a": 1}))[0].before,
            None,
            "null before is absent"
        );
    }

    #[test]
    fn the_inventorys_type_record_is_not_compared() {
        let snapshot = json!({"name": "P"});
        let meta =
            json!({"name": "P", "odataType": "#microsoft.graph.windows10GeneralConfiguration"});
        let (before, after) = comparable_to_meta(&snapshot, &meta);
        assert!(diff(&before, &after).is_empty());
    }

    #[test]
    fn arrays_of_different_length_change_as_a_whole() {
        let d = diff(&json!({"a": [1]}), &json!({"a": [1, 2]}));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "a");
    }

    #[test]
    fn equal_payloads_have_no_diff() {
        let v = json!({"a": {"b": [1, {"c": null}]}});
        assert!(diff(&v, &v).is_empty());
    }

    #[test]
    fn diffs_use_the_latest_backup_only_while_it_reflects_the_object() {
        let latest = LatestBackup {
            hash: "h".into(),
            backed_up_at: at("2026-11-01T10:00:00Z"),
        };
        let seen = |m: &str| Observed {
            deleted: false,
            last_modified: Some(at(m)),
        };
        let untouched = seen("2026-11-01T09:00:00Z");
        let touched = seen("2026-11-02T09:00:00Z");
        assert_eq!(
            diff_base(Action::Update, Some(&untouched), Some(&latest)),
            DiffBase::LatestBackup
        );
        assert_eq!(
            diff_base(Action::Update, Some(&touched), Some(&latest)),
            DiffBase::Inventory
        );
        assert_eq!(
            diff_base(Action::Update, Some(&touched), None),
            DiffBase::Inventory
        );
        assert_eq!(
            diff_base(Action::Create, None, Some(&latest)),
            DiffBase::None
        );
    }

    #[test]
    fn absent_or_deleted_objects_are_created() {
        assert_eq!(decide_action("h", None, None), Action::Create);
        let deleted = Observed {
            deleted: true,
            last_modified: None,
        };
        assert_eq!(decide_action("h", Some(&deleted), None), Action::Create);
    }

    #[test]
    fn unchanged_objects_are_skipped_only_if_not_modified_since_their_backup() {
        let latest = LatestBackup {
            hash: "h".into(),
            backed_up_at: at("2026-11-01T10:00:00Z"),
        };
        let untouched = Observed {
            deleted: false,
            last_modified: Some(at("2026-11-01T09:00:00Z")),
        };
        let touched = Observed {
            deleted: false,
            last_modified: Some(at("2026-11-02T09:00:00Z")),
        };
        assert_eq!(
            decide_action("h", Some(&untouched), Some(&latest)),
            Action::SkipUnchanged
        );
        assert_eq!(
            decide_action("h", Some(&touched), Some(&latest)),
            Action::Update
        );
        assert_eq!(
            decide_action("other", Some(&untouched), Some(&latest)),
            Action::Update
        );
        assert_eq!(decide_action("h", Some(&untouched), None), Action::Update);
    }

    fn summary(groups: &[&str], filters: &[&str]) -> AssignmentsSummary {
        AssignmentsSummary {
            count: 1,
            group_ids: groups.iter().map(|s| s.to_string()).collect(),
            filter_ids: filters.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn targets_resolve_map_drop_or_stay_unresolved() {
        let groups = |id: &str| id == "g-same" || id == "g-new";
        let filters = |id: &str| id == "f-same";
        let mapping = Mapping {
            groups: BTreeMap::from([
                ("g-old".into(), "g-new".into()),
                ("g-bad".into(), "g-missing".into()),
            ]),
            filters: BTreeMap::new(),
            drop: BTreeSet::from(["g-drop".into()]),
            ..Default::default()
        };
        let r = resolve_targets(
            &summary(
                &["g-same", "g-old", "g-bad", "g-drop", "g-unknown"],
                &["f-same", "f-x"],
            ),
            &groups,
            &filters,
            &mapping,
        );
        let status: Vec<TargetStatus> = r.iter().map(|t| t.status).collect();
        use TargetStatus::*;
        assert_eq!(
            status,
            vec![
                Resolved, Mapped, Unresolved, Dropped, Unresolved, Resolved, Unresolved
            ]
        );
        assert_eq!(r[1].target_id.as_deref(), Some("g-new"));
        assert!(r[2].note.is_some());
    }

    #[test]
    fn rewritten_assignments_use_mapped_ids_and_leave_dropped_ones_out() {
        let targets = vec![
            TargetResolution {
                kind: TargetKind::Group,
                source_id: "g1".into(),
                status: TargetStatus::Mapped,
                target_id: Some("g9".into()),
                note: None,
                source_name: None,
                reason: None,
            },
            TargetResolution {
                kind: TargetKind::Group,
                source_id: "g2".into(),
                status: TargetStatus::Dropped,
                target_id: None,
                note: None,
                source_name: None,
                reason: None,
            },
        ];
        let out = rewrite_assignments(
            &[
                json!({"id": "x_g1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1"}}),
                json!({"id": "x_g2", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g2"}}),
                json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
            ],
            &targets,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["target"]["groupId"], "g9");
        assert!(out[0].get("id").is_none());
    }

    #[test]
    fn blockers_name_unresolved_targets_high_risk_and_unrestorable_types() {
        let unresolved = vec![TargetResolution {
            kind: TargetKind::Group,
            source_id: "g".into(),
            status: TargetStatus::Unresolved,
            target_id: None,
            note: None,
            source_name: None,
            reason: Some(ReasonCode::RestoreMappingUnresolved),
        }];
        let risky = type_policy("conditionalAccessPolicies", true);
        assert_eq!(
            blockers_of(risky, false, Action::Create, &unresolved),
            vec![Blocker::HighRiskDisabled, Blocker::MappingUnresolved]
        );
        assert!(blockers_of(risky, true, Action::Update, &[]).is_empty());
        assert_eq!(
            blockers_of(type_policy("mobileApps", true), true, Action::Create, &[]),
            vec![Blocker::NotRestorable]
        );
        assert!(!type_policy("configurationPolicies", false).restorable);
    }

    #[test]
    fn mappings_refuse_bad_ids_and_contradictions() {
        let mut m = Mapping::default();
        assert!(m.validate().is_ok());
        m.groups.insert("a".into(), "".into());
        assert_eq!(m.validate(), Err(MappingError::BadId));
        m.groups.insert("a".into(), "b".into());
        m.drop.insert("a".into());
        assert!(matches!(
            m.validate(),
            Err(MappingError::MappedAndDropped(_))
        ));
        assert!(serde_json::from_value::<Mapping>(json!({"groupz": {}})).is_err());
    }

    #[test]
    fn short_diffs_stay_inline_and_long_ones_are_cut_to_excerpts() {
        let small = diff(&json!({}), &json!({"a": 1, "b": "x"}));
        assert_eq!(inline_diff(&small), (small.clone(), false));

        let script = "A".repeat(300 * 1024);
        let many: serde_json::Map<String, Value> = (0..2_000)
            .map(|i| (format!("setting{i:04}"), json!({"value": i})))
            .collect();
        let big = diff(
            &json!({}),
            &json!({"scriptContent": script, "settings": Value::Object(many)}),
        );
        let (inline, cut) = inline_diff(&big);
        assert!(cut);
        assert!(
            diff_bytes(&inline) <= INLINE_DIFF_BYTES,
            "{}",
            diff_bytes(&inline)
        );
        assert!(inline.len() <= MAX_DIFF_CHANGES);
        let first = &inline[0];
        assert_eq!(first.path, "scriptContent");
        assert!(first.excerpt);
        assert_eq!(
            first.after.as_ref().and_then(Value::as_str).map(str::len),
            Some(EXCERPT_CHARS)
        );
    }

    #[test]
    fn the_too_many_items_problem_states_the_limit() {
        let message = ReasonCode::RestoreTooManyItems.message();
        assert!(
            message.contains(&format!("{MAX_SELECTED_ITEMS} items")),
            "{message}"
        );
    }

    #[test]
    fn selections_hash_by_items_and_mapping() {
        let m = Mapping::default();
        let one = [("t".to_owned(), "a".to_owned())];
        assert_eq!(selection_hash(None, &m), selection_hash(None, &m));
        assert_ne!(selection_hash(None, &m), selection_hash(Some(&one), &m));
        let two = [
            ("t".to_owned(), "a".to_owned()),
            ("t".to_owned(), "b".to_owned()),
        ];
        let swapped = [two[1].clone(), two[0].clone()];
        assert_eq!(
            selection_hash(Some(&two), &m),
            selection_hash(Some(&swapped), &m)
        );
        let mut dropped = Mapping::default();
        dropped.drop.insert("g".into());
        assert_ne!(selection_hash(None, &m), selection_hash(None, &dropped));
    }

    #[test]
    fn previews_expire_and_tokens_are_stored_hashed() {
        let made = at("2026-11-24T06:00:00Z");
        assert!(is_current(made, at("2026-11-24T06:29:00Z")));
        assert!(!is_current(made, at("2026-11-24T06:31:00Z")));
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}
