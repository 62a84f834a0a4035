//! A restore into another tenant of the same workspace (a migration): which targets an
//! object refers to, how each is carried into the destination, and the object rewritten to
//! name the destination's ids.
//!
//! Ids mean nothing across tenants, so a target is found by display name: the source name
//! is what the source tenant's caches hold (its directory groups, its inventory of
//! `assignmentFilters`, `roleScopeTags` and `namedLocations`), and the destination object is
//! the one of the destination's caches with that name. In order:
//!
//! 1. `dropped` when the mapping drops the source id;
//! 2. `mapped` (explicitly) when the mapping names a destination id that the destination's
//!    cache holds, else `unresolved` (`restore.mapping_unresolved`);
//! 3. `resolved` for the built-in scope tag `0` ("Default"), which every tenant has;
//! 4. `mapped_by_name` when exactly one destination object has the source's name;
//!    `unresolved` when none has (`restore.mapping_unresolved`) or several have
//!    (`restore.mapping_ambiguous`), or the source's cache does not know the id.
//!
//! The targets are the groups and filters of the object's assignments (the manifest's
//! summary), the groups a Conditional Access policy includes or excludes, its named
//! locations, and every object's `roleScopeTagIds`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::backup::AssignmentsSummary;
use crate::reason::ReasonCode;
use crate::restore::{Mapping, TargetKind, TargetResolution, TargetStatus};

/// The built-in "Default" scope tag, the same id in every tenant.
pub const DEFAULT_SCOPE_TAG: &str = "0";

/// Values of a Conditional Access policy's location lists that are not named locations.
const LOCATION_KEYWORDS: &[&str] = &["All", "AllTrusted", "00000000-0000-0000-0000-000000000000"];
/// Values of its group lists that are not group ids.
const GROUP_KEYWORDS: &[&str] = &["All", "None", "GuestsOrExternalUsers"];

/// One kind of cached object of a tenant: ids to display names and back.
#[derive(Debug, Clone, Default)]
pub struct Names {
    by_id: BTreeMap<String, String>,
    by_name: BTreeMap<String, Vec<String>>,
}

impl Names {
    pub fn new<'a>(objects: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut n = Names::default();
        for (id, name) in objects {
            n.by_id.insert(id.to_owned(), name.to_owned());
            n.by_name
                .entry(name.to_owned())
                .or_default()
                .push(id.to_owned());
        }
        n
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    fn name_of(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    fn named(&self, name: &str) -> &[String] {
        self.by_name.get(name).map_or(&[][..], Vec::as_slice)
    }
}

/// What one tenant's caches hold of each kind of target.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub groups: Names,
    pub filters: Names,
    pub scope_tags: Names,
    pub named_locations: Names,
}

impl Directory {
    fn of(&self, kind: TargetKind) -> &Names {
        match kind {
            TargetKind::Group => &self.groups,
            TargetKind::Filter => &self.filters,
            TargetKind::ScopeTag => &self.scope_tags,
            TargetKind::NamedLocation => &self.named_locations,
        }
    }
}

fn explicit(mapping: &Mapping, kind: TargetKind) -> &BTreeMap<String, String> {
    match kind {
        TargetKind::Group => &mapping.groups,
        TargetKind::Filter => &mapping.filters,
        TargetKind::ScopeTag => &mapping.scope_tags,
        TargetKind::NamedLocation => &mapping.named_locations,
    }
}

fn strings_at<'a>(v: &'a Value, pointer: &str) -> Vec<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// A target's resolution: status, destination id, note, reason.
type Resolved = (
    TargetStatus,
    Option<String>,
    Option<String>,
    Option<ReasonCode>,
);

/// Every target an object refers to, each once, in a stable order: assignment groups and
/// filters, Conditional Access groups and named locations, scope tags.
pub fn references(summary: &AssignmentsSummary, snapshot: &Value) -> Vec<(TargetKind, String)> {
    let mut out: Vec<(TargetKind, String)> = Vec::new();
    let mut add = |kind: TargetKind, id: &str| {
        if !id.is_empty() && !out.iter().any(|(k, i)| *k == kind && i == id) {
            out.push((kind, id.to_owned()));
        }
    };
    for g in &summary.group_ids {
        add(TargetKind::Group, g);
    }
    for f in &summary.filter_ids {
        add(TargetKind::Filter, f);
    }
    for list in ["includeGroups", "excludeGroups"] {
        for g in strings_at(snapshot, &format!("/conditions/users/{list}")) {
            if !GROUP_KEYWORDS.contains(&g) {
                add(TargetKind::Group, g);
            }
        }
    }
    for list in ["includeLocations", "excludeLocations"] {
        for l in strings_at(snapshot, &format!("/conditions/locations/{list}")) {
            if !LOCATION_KEYWORDS.contains(&l) {
                add(TargetKind::NamedLocation, l);
            }
        }
    }
    for t in strings_at(snapshot, "/roleScopeTagIds") {
        add(TargetKind::ScopeTag, t);
    }
    out
}

/// How each target is carried from `source`'s tenant into `destination`'s (module docs).
pub fn resolve_across(
    refs: &[(TargetKind, String)],
    source: &Directory,
    destination: &Directory,
    mapping: &Mapping,
) -> Vec<TargetResolution> {
    refs.iter()
        .map(|(kind, id)| {
            let (kind, dest) = (*kind, destination.of(*kind));
            let source_name = source.of(kind).name_of(id).map(str::to_owned);
            let resolved = |status: TargetStatus, target: &str| -> Resolved {
                (status, Some(target.to_owned()), None, None)
            };
            let unresolved = |note: String, reason: ReasonCode| -> Resolved {
                (TargetStatus::Unresolved, None, Some(note), Some(reason))
            };
            let (status, target_id, note, reason) = if mapping.drop.contains(id) {
                (TargetStatus::Dropped, None, None, None)
            } else if let Some(target) = explicit(mapping, kind).get(id) {
                if dest.contains(target) {
                    resolved(TargetStatus::Mapped, target)
                } else {
                    unresolved(
                        "the mapped destination is not in the tenant's cache".into(),
                        ReasonCode::RestoreMappingUnresolved,
                    )
                }
            } else if kind == TargetKind::ScopeTag && id == DEFAULT_SCOPE_TAG {
                resolved(TargetStatus::Resolved, DEFAULT_SCOPE_TAG)
            } else if let Some(name) = &source_name {
                match dest.named(name) {
                    [one] => resolved(TargetStatus::MappedByName, one),
                    [] => unresolved(
                        "no object of this name in the destination tenant".into(),
                        ReasonCode::RestoreMappingUnresolved,
                    ),
                    several => unresolved(
                        format!(
                            "{} objects of this name in the destination tenant",
                            several.len()
                        ),
                        ReasonCode::RestoreMappingAmbiguous,
                    ),
                }
            } else {
                unresolved(
                    "not in the source tenant's cache".into(),
                    ReasonCode::RestoreMappingUnresolved,
                )
            };
            TargetResolution {
                kind,
                source_id: id.clone(),
                status,
                target_id,
                note,
                source_name,
                reason,
            }
        })
        .collect()
}

/// Rewrites the ids an object names in its own body (scope tags, a Conditional Access
/// policy's groups and named locations) to the destination's: a mapped id replaced, a dropped
/// one removed, an id without a resolution (a restore into the same tenant) kept.
pub fn rewrite_references(body: &mut Map<String, Value>, targets: &[TargetResolution]) {
    let rewrite = |list: &mut Value, kind: TargetKind| {
        let Some(items) = list.as_array_mut() else {
            return;
        };
        items.retain_mut(|v| {
            let Some(id) = v.as_str() else { return true };
            match targets.iter().find(|t| t.kind == kind && t.source_id == id) {
                Some(t) if t.status == TargetStatus::Dropped => false,
                Some(TargetResolution {
                    target_id: Some(to),
                    ..
                }) => {
                    *v = Value::String(to.clone());
                    true
                }
                _ => true,
            }
        });
    };
    if let Some(tags) = body.get_mut("roleScopeTagIds") {
        rewrite(tags, TargetKind::ScopeTag);
    }
    if let Some(conditions) = body.get_mut("conditions") {
        for list in ["includeGroups", "excludeGroups"] {
            if let Some(v) = conditions.pointer_mut(&format!("/users/{list}")) {
                rewrite(v, TargetKind::Group);
            }
        }
        for list in ["includeLocations", "excludeLocations"] {
            if let Some(v) = conditions.pointer_mut(&format!("/locations/{list}")) {
                rewrite(v, TargetKind::NamedLocation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir(groups: &[(&str, &str)], tags: &[(&str, &str)]) -> Directory {
        Directory {
            groups: Names::new(groups.iter().copied()),
            scope_tags: Names::new(tags.iter().copied()),
            ..Default::default()
        }
    }

    #[test]
    fn an_object_refers_to_assignment_ca_and_scope_tag_targets_once() {
        let summary = AssignmentsSummary {
            count: 1,
            group_ids: vec!["g1".into()],
            filter_ids: vec!["f1".into()],
            ..Default::default()
        };
        let snap = json!({
            "roleScopeTagIds": ["0", "7"],
            "conditions": {
                "users": {"includeGroups": ["g1", "g2"], "excludeGroups": ["All"]},
                "locations": {"includeLocations": ["All", "l1"], "excludeLocations": ["AllTrusted"]}
            }
        });
        let refs = references(&summary, &snap);
        use TargetKind::*;
        let kinds: Vec<(TargetKind, &str)> = refs.iter().map(|(k, i)| (*k, i.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (Group, "g1"),
                (Filter, "f1"),
                (Group, "g2"),
                (NamedLocation, "l1"),
                (ScopeTag, "0"),
                (ScopeTag, "7")
            ]
        );
    }

    #[test]
    fn targets_map_by_name_explicitly_drop_or_stay_unresolved() {
        let source = dir(
            &[
                ("a1", "Pilot"),
                ("a2", "Sales"),
                ("a3", "Twins"),
                ("a4", "Gone"),
            ],
            &[("5", "Europe")],
        );
        let dest = dir(
            &[
                ("b1", "Pilot"),
                ("b3", "Twins"),
                ("b3x", "Twins"),
                ("b9", "Other"),
            ],
            &[("3", "Europe")],
        );
        let mut mapping = Mapping::default();
        mapping.groups.insert("a2".into(), "b9".into());
        mapping.drop.insert("a4".into());
        let refs: Vec<(TargetKind, String)> = [
            (TargetKind::Group, "a1"),
            (TargetKind::Group, "a2"),
            (TargetKind::Group, "a3"),
            (TargetKind::Group, "a4"),
            (TargetKind::Group, "a5"),
            (TargetKind::ScopeTag, "0"),
            (TargetKind::ScopeTag, "5"),
        ]
        .into_iter()
        .map(|(k, i)| (k, i.to_owned()))
        .collect();
        let r = resolve_across(&refs, &source, &dest, &mapping);
        use TargetStatus::*;
        let got: Vec<(TargetStatus, Option<&str>)> = r
            .iter()
            .map(|t| (t.status, t.target_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (MappedByName, Some("b1")),
                (Mapped, Some("b9")),
                (Unresolved, None),
                (Dropped, None),
                (Unresolved, None),
                (Resolved, Some("0")),
                (MappedByName, Some("3")),
            ]
        );
        assert_eq!(r[2].reason, Some(ReasonCode::RestoreMappingAmbiguous));
        assert_eq!(r[4].reason, Some(ReasonCode::RestoreMappingUnresolved));
        assert_eq!(r[0].source_name.as_deref(), Some("Pilot"));
        assert!(r[0].reason.is_none() && r[3].reason.is_none());

        // An explicit mapping to an id the destination does not hold stays unresolved.
        mapping.groups.insert("a1".into(), "nope".into());
        let r = resolve_across(&refs[..1], &source, &dest, &mapping);
        assert_eq!(r[0].status, Unresolved);
    }

    #[test]
    fn references_in_the_body_are_rewritten_or_dropped() {
        let targets = resolve_across(
            &[
                (TargetKind::ScopeTag, "5".to_owned()),
                (TargetKind::Group, "a1".to_owned()),
                (TargetKind::Group, "a4".to_owned()),
            ],
            &dir(&[("a1", "Pilot")], &[("5", "Europe")]),
            &dir(&[("b1", "Pilot")], &[("3", "Europe")]),
            &Mapping {
                drop: ["a4".to_owned()].into(),
                ..Default::default()
            },
        );
        let mut body = json!({
            "roleScopeTagIds": ["0", "5"],
            "conditions": {"users": {"includeGroups": ["a1", "a4"], "excludeGroups": []}}
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        rewrite_references(&mut body, &targets);
        assert_eq!(body["roleScopeTagIds"], json!(["0", "3"]));
        assert_eq!(body["conditions"]["users"]["includeGroups"], json!(["b1"]));
    }
}
