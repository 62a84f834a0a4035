//! Drift: what differs between a baseline (a backup set's manifest and snapshots) and a later
//! state (the live tenant read as a backup reads it, or a second set). Objects are paired by
//! type and id: one only the later state has is added, one only the baseline has is removed,
//! one whose content hash differs is changed, with its field changes (the restore preview's
//! [`crate::restore::diff`], capped by [`crate::restore::inline_diff`]) and its assignment
//! change. Payloads here are normalized, so they hold no secret ([`crate::backup::normalize`]).

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backup::{AssignmentsSummary, ManifestEntry};
use crate::ids::{BackupSetId, RunId, TenantId, WorkspaceId};
use crate::restore::{FieldChange, diff, inline_diff};

/// Characters kept of an actor's names, so an audit event cannot bloat an item.
const ACTOR_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Added,
    Removed,
    Changed,
}

/// Who made a change, from Intune's audit log: stored only in the drift report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// The app that made the change, when it was an app (or a user through one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The audit event's activity (e.g. `Patch DeviceConfiguration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    #[serde(with = "crate::time")]
    pub at: DateTime<Utc>,
}

impl Actor {
    /// Reads an Intune `auditEvent`: `actor.userPrincipalName`, `actor.applicationDisplayName`,
    /// `displayName`/`activity`, `activityDateTime`. `None` without a parsable time.
    pub fn from_audit_event(event: &Value) -> Option<Actor> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(ACTOR_CHARS).collect::<String>())
        };
        let actor = event.get("actor");
        let at = event
            .get("activityDateTime")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())?
            .with_timezone(&Utc);
        let upn = text(actor.and_then(|a| a.get("userPrincipalName")));
        Some(Actor {
            // Intune's actor has no display name of its own: the UPN names a user.
            display_name: text(actor.and_then(|a| a.get("displayName"))).or_else(|| upn.clone()),
            user_principal_name: upn,
            application: text(actor.and_then(|a| a.get("applicationDisplayName")))
                .or_else(|| text(actor.and_then(|a| a.get("applicationId")))),
            activity: text(event.get("activity")).or_else(|| text(event.get("displayName"))),
            at,
        })
    }

    /// The resource ids an audit event names (`resources[].resourceId`).
    pub fn resource_ids(event: &Value) -> Vec<String> {
        event
            .get("resources")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|r| r.get("resourceId").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An object's assignments before and after, when they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentChange {
    pub before: AssignmentsSummary,
    pub after: AssignmentsSummary,
}

/// One object that drifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftItem {
    pub object_type: String,
    pub object_id: String,
    pub name: String,
    pub kind: DriftKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hash: Option<String>,
    /// The differing fields of a changed object (assignments apart), capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// `changes` was cut; the whole diff is at `diff_key` in the snapshot bucket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changes_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments: Option<AssignmentChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

impl DriftItem {
    /// An object only the later state has.
    pub fn added(after: &ManifestEntry) -> Self {
        Self::bare(after, DriftKind::Added, None, Some(after.hash.clone()))
    }

    /// An object only the baseline has.
    pub fn removed(before: &ManifestEntry) -> Self {
        Self::bare(before, DriftKind::Removed, Some(before.hash.clone()), None)
    }

    /// A changed object: its field changes between the two normalized payloads (capped:
    /// the full list comes back as the second value when it was cut) and its assignments.
    pub fn changed(
        before: &ManifestEntry,
        after: &ManifestEntry,
        before_payload: &Value,
        after_payload: &Value,
    ) -> (Self, Option<Vec<FieldChange>>) {
        let mut item = Self::bare(
            after,
            DriftKind::Changed,
            Some(before.hash.clone()),
            Some(after.hash.clone()),
        );
        let all = field_changes(before_payload, after_payload);
        let (inline, cut) = inline_diff(&all);
        item.changes = inline;
        item.changes_truncated = cut;
        if before.assignments != after.assignments {
            item.assignments = Some(AssignmentChange {
                before: before.assignments.clone(),
                after: after.assignments.clone(),
            });
        }
        (item, cut.then_some(all))
    }

    fn bare(
        e: &ManifestEntry,
        kind: DriftKind,
        before_hash: Option<String>,
        after_hash: Option<String>,
    ) -> Self {
        DriftItem {
            object_type: e.object_type.clone(),
            object_id: e.object_id.clone(),
            name: e.name.clone(),
            kind,
            before_hash,
            after_hash,
            changes: Vec::new(),
            changes_truncated: false,
            diff_key: None,
            assignments: None,
            actor: None,
        }
    }
}

/// The field changes of two normalized payloads, their assignments left out (a drift item
/// reports those as an [`AssignmentChange`]).
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("assignments");
        }
        v
    };
    diff(&strip(before), &strip(after))
}

/// How two manifests' entries pair up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing<'a> {
    Added(&'a ManifestEntry),
    Removed(&'a ManifestEntry),
    /// The same object with another content hash or other assignments: `(before, after)`.
    Changed(&'a ManifestEntry, &'a ManifestEntry),
    Unchanged,
}

fn position(e: &ManifestEntry) -> (&str, &str) {
    (e.object_type.as_str(), e.object_id.as_str())
}

/// Pairs two entry lists sorted by (type, id), as manifests are: every entry of either side
/// once, in (type, id) order.
pub fn pair<'a>(before: &'a [ManifestEntry], after: &'a [ManifestEntry]) -> Vec<Pairing<'a>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < before.len() || j < after.len() {
        let order = match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) => position(b).cmp(&position(a)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push(Pairing::Removed(&before[i]));
                i += 1;
            }
            Ordering::Greater => {
                out.push(Pairing::Added(&after[j]));
                j += 1;
            }
            Ordering::Equal => {
                let (b, a) = (&before[i], &after[j]);
                out.push(if b.hash == a.hash && b.assignments == a.assignments {
                    Pairing::Unchanged
                } else {
                    Pairing::Changed(b, a)
                });
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// How many objects of each kind a report found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCounts {
    pub added: u32,
    pub removed: u32,
    pub changed: u32,
    pub unchanged: u32,
}

impl DriftCounts {
    pub fn count(&mut self, kind: DriftKind) {
        match kind {
            DriftKind::Added => self.added += 1,
            DriftKind::Removed => self.removed += 1,
            DriftKind::Changed => self.changed += 1,
        }
    }

    pub fn drifted(&self) -> u32 {
        self.added + self.removed + self.changed
    }
}

/// A drift check's report: written once, after its items. Its id is its run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    pub id: RunId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub baseline_set_id: BackupSetId,
    pub types: Vec<String>,
    pub counts: DriftCounts,
    pub item_count: u32,
    /// Types that could not be read: their objects are neither added nor removed.
    #[serde(default)]
    pub unread_types: Vec<String>,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
    /// The backup run that accepted the report's state as the new baseline, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_run_id: Option<RunId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(ty: &str, id: &str, hash: &str) -> ManifestEntry {
        ManifestEntry {
            object_type: ty.into(),
            object_id: id.into(),
            name: format!("{ty} {id}"),
            hash: hash.into(),
            snapshot_key: format!("k/{hash}"),
            assignments: AssignmentsSummary::default(),
        }
    }

    #[test]
    fn entries_pair_by_type_and_id() {
        let before = [
            entry("a", "1", "h1"),
            entry("a", "2", "h2"),
            entry("b", "1", "h3"),
        ];
        let mut moved = entry("b", "1", "h3");
        moved.assignments.count = 1;
        let after = [entry("a", "2", "hx"), entry("a", "3", "h4"), moved];
        let kinds: Vec<String> = pair(&before, &after)
            .iter()
            .map(|p| match p {
                Pairing::Added(e) => format!("+{}", e.object_id),
                Pairing::Removed(e) => format!("-{}", e.object_id),
                Pairing::Changed(b, _) => format!("~{}{}", b.object_type, b.object_id),
                Pairing::Unchanged => "=".into(),
            })
            .collect();
        assert_eq!(kinds, ["-1", "~a2", "+3", "~b1"]);
        assert_eq!(pair(&before, &before).len(), 3);
    }

    #[test]
    fn a_changed_item_lists_fields_and_assignments_apart() {
        let (b, mut a) = (entry("a", "1", "h1"), entry("a", "1", "h2"));
        a.assignments.count = 2;
        let (item, all) = DriftItem::changed(
            &b,
            &a,
            &json!({"x": 1, "assignments": [1]}),
            &json!({"x": 2, "assignments": [1, 2]}),
        );
        assert_eq!(all, None);
        assert_eq!(item.changes.len(), 1);
        assert_eq!(item.changes[0].path, "x");
        assert_eq!(item.assignments.map(|c| c.after.count), Some(2));
    }

    #[test]
    fn long_diffs_are_capped_and_returned_whole() {
        let (b, a) = (entry("a", "1", "h1"), entry("a", "1", "h2"));
        let before = json!({"script": "x".repeat(40_000)});
        let after = json!({"script": "y".repeat(40_000)});
        let (item, all) = DriftItem::changed(&b, &a, &before, &after);
        assert!(item.changes_truncated);
        assert!(all.is_some_and(|d| d.len() == 1));
        assert!(serde_json::to_string(&item).map_or(0, |s| s.len()) < 20_000);
    }

    #[test]
    fn an_audit_event_names_its_actor_and_resources() {
        let e = json!({
            "activity": "Patch DeviceConfiguration",
            "activityDateTime": "2026-12-06T10:00:00Z",
            "actor": {"userPrincipalName": "ana@contoso.com", "applicationDisplayName": "Intune"},
            "resources": [{"resourceId": "r1"}]
        });
        let a = Actor::from_audit_event(&e).expect("actor");
        assert_eq!(a.user_principal_name.as_deref(), Some("ana@contoso.com"));
        assert_eq!(a.application.as_deref(), Some("Intune"));
        assert_eq!(Actor::resource_ids(&e), ["r1"]);
        assert_eq!(Actor::from_audit_event(&json!({"actor": {}})), None);
    }
}
