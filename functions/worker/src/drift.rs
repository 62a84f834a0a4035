//! Drift checks: every in-scope object of the tenant read, normalized and hashed exactly as a
//! backup does ([`crate::capture::read_object`], page by page through [`crate::listing`]),
//! and compared with a baseline backup set's manifest entries (DynamoDB). An object whose hash
//! and assignments match costs no S3 request at all; a changed one costs one read of its
//! baseline snapshot (and one write of its whole diff when the item keeps only an excerpt).
//! Nothing else is written to S3 but the parts of a check continued across invocations.
//!
//! Removed objects are the baseline's objects of a listed type that no page showed; types the
//! check could not list are named in the report and add or remove nothing. Who changed each
//! drifted object comes from Intune's audit log of the window since the baseline, one paged
//! list matched by resource id; the actor is kept in the report only, never logged.
//!
//! A check continues across invocations as a backup does: each invocation's findings (the
//! objects seen and the drift items) go to a part in the snapshot bucket, the checkpoint
//! holds each type's next link, the baseline and the parts' keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_aws::drift::DriftLease;
use tenantops_aws::snapshots::drift_diff_key;
use tenantops_core::backup::{BackupSet, BackupSetStatus, ManifestEntry};
use tenantops_core::drift::{Actor, DriftCounts, DriftItem, DriftReport};
use tenantops_core::restore::FieldChange;
use tenantops_core::{BackupSetId, Counters, Failure, Outcome, ReasonCode, Run};
use tenantops_graph::registry::{Budget, ObjectType};
use tenantops_graph::requests::audit_events_path;
use tenantops_graph::{Credentials, GraphError};

use crate::capture::{Reading, read_object, storage};
use crate::job::{Deps, Job, Report, Stop};
use crate::listing::{
    Cursor, Pause, Visited, get_part, put_part, save_part, scope, stop_for, walk_types,
};

/// Backup sets looked through for the latest complete one.
const SET_PAGE: usize = 25;
/// Manifest entries read per query.
const MANIFEST_PAGE: usize = 500;

/// Where a check stands between invocations: links, keys and ids only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    baseline: Option<BackupSetId>,
    #[serde(default)]
    types: BTreeMap<String, Cursor>,
    #[serde(default)]
    parts: Vec<String>,
    /// Types whose list failed: they add and remove nothing.
    #[serde(default)]
    unlisted: BTreeSet<String>,
}

/// What an invocation found: one part.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Part {
    /// `(type, id)` of every object read.
    seen: Vec<(String, String)>,
    items: Vec<DriftItem>,
    failures: Vec<Failure>,
}

/// One object read: its place and, if it drifted, its item.
struct Seen {
    key: (String, String),
    item: Option<DriftItem>,
}

type Baseline = HashMap<(String, String), ManifestEntry>;

fn internal(what: &str, e: impl std::fmt::Display) -> Stop {
    tracing::error!(error = %e, "{what}");
    Stop::Fail(ReasonCode::Internal)
}

/// The set named in the params, or the tenant's latest complete set.
async fn baseline_set(
    run: &Run,
    deps: &Deps,
    named: Option<BackupSetId>,
) -> Result<BackupSet, Stop> {
    let (ws, tenant) = (run.workspace_id, run.tenant_id);
    let named = named.or_else(|| {
        run.params
            .get("baseline_backup_set_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    });
    if let Some(id) = named {
        return deps
            .store
            .backup_set(ws, tenant, id)
            .await?
            .ok_or(Stop::Fail(ReasonCode::DriftBaselineMissing));
    }
    let mut after = None;
    loop {
        let page = deps.store.backup_sets(ws, tenant, SET_PAGE, after).await?;
        if let Some(set) = page
            .items
            .into_iter()
            .find(|s| s.status == BackupSetStatus::Complete)
        {
            return Ok(set);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Err(Stop::Fail(ReasonCode::DriftBaselineMissing)),
        }
    }
}

/// The baseline's entries of `types`, by (type, id).
async fn baseline_entries(
    deps: &Deps,
    set: &BackupSet,
    types: &BTreeSet<&str>,
) -> Result<Baseline, Stop> {
    let mut out = HashMap::new();
    let mut after = None;
    loop {
        let page = deps
            .store
            .manifest_entries(
                set.workspace_id,
                set.tenant_id,
                set.id,
                MANIFEST_PAGE,
                after,
            )
            .await?;
        for e in page.entries {
            if types.contains(e.object_type.as_str()) {
                out.insert((e.object_type.clone(), e.object_id.clone()), e);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Reads one listed object and compares it with its baseline entry.
async fn visit(
    run: &Run,
    deps: &Deps,
    creds: &Credentials,
    ty: &'static ObjectType,
    baseline: &Baseline,
    listed: Value,
) -> Result<Visited<Seen>, Stop> {
    let read = match read_object(run, deps, creds, ty, listed).await? {
        Reading::Read(r) => r,
        Reading::Vanished => return Ok(Visited::Vanished),
        Reading::Failed(f) => return Ok(Visited::Failed(f)),
    };
    let after = &read.entry;
    let key = (after.object_type.clone(), after.object_id.clone());
    let item = match baseline.get(&key) {
        // Unchanged: no S3 request.
        Some(before) if before.hash == after.hash && before.assignments == after.assignments => {
            None
        }
        Some(before) => {
            let payload = if before.hash == after.hash {
                read.normalized.clone()
            } else {
                let bytes = deps
                    .snapshots
                    .get(&before.snapshot_key)
                    .await
                    .map_err(storage)?;
                serde_json::from_slice(&bytes).map_err(|_| {
                    tracing::error!("a baseline snapshot does not parse");
                    Stop::Fail(ReasonCode::BackupStorageFailed)
                })?
            };
            let (mut item, whole) = DriftItem::changed(before, after, &payload, &read.normalized);
            if let Some(whole) = whole {
                item.diff_key = Some(store_diff(run, deps, before, after, &whole).await?);
            }
            Some(item)
        }
        None => Some(DriftItem::added(after)),
    };
    Ok(Visited::Kept(Seen { key, item }))
}

/// Stores a changed object's whole diff (its item keeps an excerpt); the key names both
/// hashes, so the same change is stored once.
async fn store_diff(
    run: &Run,
    deps: &Deps,
    before: &ManifestEntry,
    after: &ManifestEntry,
    whole: &[FieldChange],
) -> Result<String, Stop> {
    let key = drift_diff_key(run.workspace_id, run.tenant_id, &before.hash, &after.hash);
    put_part(deps, &key, &whole).await?;
    Ok(key)
}

pub async fn check(job: Job<'_>) -> Result<Report, Stop> {
    let Job { run, deps, .. } = job;
    let mut progress: Progress = match job.resumed() {
        Some(state) => serde_json::from_value(state.clone())
            .map_err(|e| internal("the drift check's checkpoint does not parse", e))?,
        None => Progress::default(),
    };
    let set = baseline_set(run, deps, progress.baseline).await?;
    progress.baseline = Some(set.id);
    // Only the types both the scope and the baseline cover can be compared.
    let (mut known, mut unread) = (Vec::new(), BTreeSet::new());
    for t in scope(run) {
        match t {
            Ok(t) if set.types.iter().any(|n| n == t.name) => known.push(t),
            Ok(t) => {
                unread.insert(t.name.to_owned());
            }
            Err(name) => {
                unread.insert(name.chars().take(128).collect());
            }
        }
    }
    let names: BTreeSet<&str> = known.iter().map(|t| t.name).collect();
    let baseline = baseline_entries(deps, &set, &names).await?;
    let creds = job.credentials().await?;

    let (walked, mut pause) = walk_types(job, &creds, &known, &progress.types, |ty, o| {
        visit(run, deps, &creds, ty, &baseline, o)
    })
    .await?;
    let mut part = Part::default();
    for r in walked {
        for seen in r.kept {
            part.seen.push(seen.key);
            part.items.extend(seen.item);
        }
        part.failures.extend(r.failures);
        if r.unlisted {
            progress.unlisted.insert(r.ty.to_owned());
        }
        progress.types.insert(r.ty.to_owned(), r.cursor);
    }
    // The audit log is read once every type is done; a throttle there pauses the same way.
    let mut actors = None;
    if pause.is_none() {
        match audit_actors(deps, &creds, &set).await {
            Ok(a) => actors = Some(a),
            Err(GraphError::Throttled { retry_after }) => {
                pause = Some(Pause::HandBack(retry_after))
            }
            Err(e) => {
                // The report stands without actors; the reason only, never the log's content.
                tracing::warn!(reason = %e.reason(), "the audit log could not be read");
                actors = Some(HashMap::new());
            }
        }
    }
    if let Some(pause) = pause {
        let found = !part.seen.is_empty() || !part.failures.is_empty();
        save_part(job, &mut progress.parts, &part, found).await?;
        let state = serde_json::to_value(&progress)
            .map_err(|e| internal("the drift check's checkpoint does not serialize", e))?;
        tracing::info!(parts = progress.parts.len(), "drift check paused");
        return Err(stop_for(job, pause, state).await);
    }

    let mut all = Part::default();
    for key in &progress.parts {
        let earlier: Part = get_part(deps, key).await?;
        all.seen.extend(earlier.seen);
        all.items.extend(earlier.items);
        all.failures.extend(earlier.failures);
    }
    all.seen.extend(part.seen);
    all.items.extend(part.items);
    all.failures.extend(part.failures);
    let seen: BTreeSet<(String, String)> = all.seen.into_iter().collect();
    let mut items = all.items;
    for (key, entry) in &baseline {
        if !seen.contains(key) && !progress.unlisted.contains(&key.0) {
            items.push(DriftItem::removed(entry));
        }
    }
    items.sort_by(|a, b| (&a.object_type, &a.object_id).cmp(&(&b.object_type, &b.object_id)));
    let actors = actors.unwrap_or_default();
    let mut counts = DriftCounts::default();
    for item in &mut items {
        counts.count(item.kind);
        item.actor = actors.get(&item.object_id).cloned();
    }
    let drifted_seen = u32::try_from(items.len()).unwrap_or(u32::MAX) - counts.removed;
    counts.unchanged = u32::try_from(seen.len())
        .unwrap_or(u32::MAX)
        .saturating_sub(drifted_seen);
    unread.extend(progress.unlisted.iter().cloned());
    let report = DriftReport {
        id: run.id,
        workspace_id: run.workspace_id,
        tenant_id: run.tenant_id,
        baseline_set_id: set.id,
        types: names.iter().map(|n| (*n).to_owned()).collect(),
        counts,
        item_count: u32::try_from(items.len()).unwrap_or(u32::MAX),
        unread_types: unread.into_iter().collect(),
        created_at: Utc::now(),
        accepted_run_id: None,
    };
    let lease = DriftLease {
        run: run.id,
        owner: job.owner,
    };
    deps.store
        .record_drift_report(lease, &report, &items)
        .await?;
    tracing::info!(
        added = counts.added,
        removed = counts.removed,
        changed = counts.changed,
        "drift report recorded"
    );
    let failed = all.failures.len() as u64;
    Ok(Report {
        outcome: if failed == 0 {
            Outcome::Succeeded
        } else {
            Report::outcome_of(seen.len() as u64, failed)
        },
        counters: Counters::default(),
        failures: all.failures,
        result: Some(json!({
            "drift_report_id": run.id.to_string(),
            "baseline_backup_set_id": set.id.to_string(),
            "added": counts.added,
            "removed": counts.removed,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
        })),
    })
}

/// Who last changed each resource since the baseline was taken: Intune's audit log of the
/// window, newest event per resource id.
async fn audit_actors(
    deps: &Deps,
    creds: &Credentials,
    set: &BackupSet,
) -> Result<HashMap<String, Actor>, GraphError> {
    // Graph's filter has whole seconds: the window ends a second late rather than early.
    let path = audit_events_path(set.created_at, Utc::now() + TimeDelta::seconds(1));
    let events = deps
        .graph
        .list_all(creds, Budget::Intune, &path, false)
        .await?;
    let mut out: HashMap<String, Actor> = HashMap::new();
    for event in &events {
        let Some(actor) = Actor::from_audit_event(event) else {
            continue;
        };
        for id in Actor::resource_ids(event) {
            if out.get(&id).is_none_or(|a| a.at <= actor.at) {
                out.insert(id, actor.clone());
            }
        }
    }
    Ok(out)
}
