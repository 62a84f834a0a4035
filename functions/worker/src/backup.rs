//! Backups: every in-scope object's full payload through the contract registry
//! ([`crate::capture`]), stored once per content hash in the snapshot bucket; then the set's
//! manifest (S3, written once) and its metadata (DynamoDB, written once); then, for scheduled
//! runs, retention.
//!
//! The set's id is the run's id, so a re-claimed run (its first worker's lease expired) can
//! never write a second set: its manifest put finds the first attempt's manifest and adopts
//! it, and its set item finds the first attempt's item.
//!
//! A backup continues across invocations. Each type is listed page by page
//! (`@odata.nextLink`); a page counts (counters, entries) only once all its objects are
//! captured. Near the deadline, or on a long throttle, no new page starts; the entries and
//! failures of this invocation's finished pages go to a part in the snapshot bucket, and the
//! checkpoint on the run holds each type's next link and the parts' keys. The next
//! invocation lists from those links, so no object is read twice, and the last one assembles
//! the manifest from the parts.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_aws::snapshots::manifest_key;
use tenantops_aws::{Recorded, Stored};
use tenantops_core::backup::{
    BackupSet, BackupSetStatus, ManifestEntry, canonical_bytes, content_hash,
};
use tenantops_core::{BackupSetId, Counters, Failure, OperationType, ReasonCode, Run};

use crate::capture::{Captured, capture, storage};
use crate::job::{Deps, Job, Report, Stop};
use crate::listing::{Cursor, Visited, get_part, save_part, scope, stop_for, walk_types};
use crate::retention;

/// Where a backup stands between invocations (the checkpoint's state). Small: links and
/// keys only; the entries captured so far are in the parts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// Per type name: its listing's position. A type not named has not started.
    #[serde(default)]
    types: BTreeMap<String, Cursor>,
    /// The parts written so far, in order (snapshot-bucket keys).
    #[serde(default)]
    parts: Vec<String>,
    /// Snapshots newly written so far.
    #[serde(default)]
    created: u64,
}

/// What an invocation captured: one part.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Part {
    entries: Vec<ManifestEntry>,
    failures: Vec<Failure>,
}

pub async fn backup(job: Job<'_>) -> Result<Report, Stop> {
    let Job { run, deps, .. } = job;
    let set_id = BackupSetId::from_ulid(run.id.ulid());
    let resumed = job.resumed().is_some();
    let mut progress: Progress = match job.resumed() {
        Some(state) => serde_json::from_value(state.clone()).map_err(|e| {
            tracing::error!(error = %e, "the backup's checkpoint does not parse");
            Stop::Fail(ReasonCode::Internal)
        })?,
        None => Progress::default(),
    };
    let mut unknown_failures = Vec::new();
    let mut known = Vec::new();
    for t in scope(run) {
        match t {
            Ok(t) => known.push(t),
            Err(unknown) => unknown_failures.push(Failure {
                object_ref: Some(unknown.chars().take(128).collect()),
                ..Failure::of(ReasonCode::GraphUnsupportedType)
            }),
        }
    }
    let types: Vec<String> = known.iter().map(|t| t.name.to_owned()).collect();
    // Unknown types count as failed objects of the run (once, in its first invocation).
    let unknown = unknown_failures.len() as u64;
    if unknown > 0 && !resumed {
        job.progress(Counters {
            total: unknown,
            processed: unknown,
            failed: unknown,
            ..Counters::default()
        })
        .await?;
    }
    let creds = job.credentials().await?;

    // The manifest and the set are written in one go: after work in this invocation, they
    // start only with room to finish, else the next invocation writes them from the parts.
    let creds = &creds;
    let (walked, pause) = walk_types(job, creds, &known, &progress.types, |ty, o| async move {
        Ok(match capture(run, deps, creds, ty, o, set_id).await? {
            Captured::Stored { entry, created } => Visited::Kept((entry, created)),
            Captured::Vanished => Visited::Vanished,
            Captured::Failed(f) => Visited::Failed(f),
        })
    })
    .await?;
    let mut part = Part::default();
    for r in walked {
        for (entry, created) in r.kept {
            progress.created += u64::from(created);
            part.entries.push(entry);
        }
        part.failures.extend(r.failures);
        progress.types.insert(r.ty.to_owned(), r.cursor);
    }
    if let Some(pause) = pause {
        let found = !part.entries.is_empty() || !part.failures.is_empty();
        save_part(job, &mut progress.parts, &part, found).await?;
        let state = serde_json::to_value(&progress).map_err(|e| {
            tracing::error!(error = %e, "the backup's checkpoint does not serialize");
            Stop::Fail(ReasonCode::Internal)
        })?;
        tracing::info!(parts = progress.parts.len(), "backup paused");
        return Err(stop_for(job, pause, state).await);
    }

    // Every type is done: the earlier invocations' parts, then this one's.
    let (mut entries, mut failures) = (Vec::new(), unknown_failures);
    for key in &progress.parts {
        let earlier: Part = get_part(deps, key).await?;
        entries.extend(earlier.entries);
        failures.extend(earlier.failures);
    }
    entries.extend(part.entries);
    failures.extend(part.failures);
    let created = progress.created;
    let failed = failures.len() as u64;
    if entries.is_empty() && failed > 0 {
        // Nothing was captured: no set.
        return Ok(Report {
            outcome: tenantops_core::Outcome::Failed,
            counters: Counters::default(),
            failures,
            result: Some(json!({ "backup_set_id": null, "objects": 0 })),
        });
    }
    entries.sort_by(|a, b| {
        (a.object_type.as_str(), a.object_id.as_str())
            .cmp(&(b.object_type.as_str(), b.object_id.as_str()))
    });

    let status = if failed > 0 {
        BackupSetStatus::Partial
    } else {
        BackupSetStatus::Complete
    };
    let (entries, manifest_hash, status) =
        write_manifest(run, set_id, entries, status, deps).await?;
    let set = BackupSet {
        id: set_id,
        workspace_id: run.workspace_id,
        tenant_id: run.tenant_id,
        run_id: run.id,
        schedule_id: run
            .context
            .backup_schedule_id
            .as_deref()
            .and_then(|s| s.parse().ok()),
        status,
        types,
        object_count: u32::try_from(entries.len()).unwrap_or(u32::MAX),
        manifest_key: manifest_key(run.workspace_id, run.tenant_id, set_id),
        manifest_hash,
        created_at: Utc::now(),
    };
    let set = match deps.store.record_backup_set(&set, &entries).await? {
        Recorded::Created => set,
        Recorded::AlreadyRecorded(existing) => *existing,
    };
    tracing::info!(
        backup_set = %set.id,
        objects = set.object_count,
        new_snapshots = created,
        "backup set recorded"
    );

    let mut result = json!({
        "backup_set_id": set.id.to_string(),
        "status": set.status,
        "objects": set.object_count,
        "new_snapshots": created,
        "reused_snapshots": (entries.len() as u64).saturating_sub(created),
    });
    if run.operation == OperationType::BackupScheduleScheduled {
        match retention::apply(run, &set, deps).await {
            Ok(Some(summary)) => {
                if let Some(map) = result.as_object_mut() {
                    map.insert("retention".into(), summary);
                }
            }
            Ok(None) => {}
            // The backup itself stands; retention runs again with the next scheduled backup.
            Err(e) => {
                tracing::error!(error = %e, "retention failed; the next scheduled backup retries it")
            }
        }
    }
    Ok(Report {
        outcome: Report::outcome_of(entries.len() as u64, failed),
        // Already counted, type by type.
        counters: Counters::default(),
        failures,
        result: Some(result),
    })
}

/// The manifest's metadata naming its set's status, so an adopted manifest keeps it.
const STATUS_METADATA: &str = "set-status";

fn status_name(status: BackupSetStatus) -> &'static str {
    match status {
        BackupSetStatus::Complete => "complete",
        BackupSetStatus::Partial => "partial",
    }
}

/// Writes the manifest once. If an earlier attempt of the run wrote it, that manifest is the
/// set's (its snapshots exist, and it is never replaced): its entries, and the status it was
/// written with, are returned instead.
async fn write_manifest(
    run: &Run,
    set: BackupSetId,
    entries: Vec<ManifestEntry>,
    status: BackupSetStatus,
    deps: &Deps,
) -> Result<(Vec<ManifestEntry>, String, BackupSetStatus), Stop> {
    let key = manifest_key(run.workspace_id, run.tenant_id, set);
    let value = serde_json::to_value(&entries).map_err(|e| {
        tracing::error!(error = %e, "manifest does not serialize");
        Stop::Fail(ReasonCode::Internal)
    })?;
    let bytes = canonical_bytes(&value);
    match deps
        .snapshots
        .put_if_absent_with(&key, bytes, &[(STATUS_METADATA, status_name(status))])
        .await
        .map_err(storage)?
    {
        Stored::Created => Ok((entries, content_hash(&value), status)),
        Stored::AlreadyThere => {
            tracing::info!("an earlier attempt wrote this run's manifest; adopting it");
            let stored = deps.snapshots.get(&key).await.map_err(storage)?;
            let value: Value = serde_json::from_slice(&stored).map_err(|_| {
                tracing::error!("stored manifest does not parse");
                Stop::Fail(ReasonCode::BackupStorageFailed)
            })?;
            let entries: Vec<ManifestEntry> =
                serde_json::from_value(value.clone()).map_err(|_| {
                    tracing::error!("stored manifest does not parse");
                    Stop::Fail(ReasonCode::BackupStorageFailed)
                })?;
            let stored_status = deps
                .snapshots
                .metadata(&key)
                .await
                .map_err(storage)?
                .and_then(|m| m.get(STATUS_METADATA).cloned());
            let status = match stored_status.as_deref() {
                Some("complete") => BackupSetStatus::Complete,
                Some("partial") => BackupSetStatus::Partial,
                _ => status,
            };
            Ok((entries, content_hash(&value), status))
        }
    }
}

#[cfg(test)]
mod tests {
    use tenantops_graph::registry::ObjectType;

    #[test]
    fn full_lists_select_nothing_and_expand_assignments_where_the_list_can() {
        let dc = ObjectType::named("deviceConfigurations").expect("registry");
        assert_eq!(
            dc.backup_list_path(),
            "v1.0/deviceManagement/deviceConfigurations?$expand=assignments"
        );
        let cp = ObjectType::named("compliancePolicies").expect("registry");
        assert_eq!(
            cp.backup_list_path(),
            "beta/deviceManagement/compliancePolicies"
        );
    }
}
