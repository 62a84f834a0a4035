//! Backups: every in-scope object's full payload (item, settings, definition values, script
//! content, assignments) through the contract registry, normalized and stored once per
//! content hash in the snapshot bucket; then the set's manifest (S3, written once) and its
//! metadata (DynamoDB, written once); then, for scheduled runs, retention.
//!
//! The set's id is the run's id, so a re-claimed run (its first worker's lease expired) can
//! never write a second set: its manifest put finds the first attempt's manifest and adopts
//! it, and its set item finds the first attempt's item.

use chrono::Utc;
use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tenantops_aws::backups::Reference;
use tenantops_aws::snapshots::{manifest_key, snapshot_key};
use tenantops_aws::{Recorded, SnapshotError, Stored};
use tenantops_core::backup::{
    AssignmentsSummary, BackupSet, BackupSetStatus, ManifestEntry, canonical_bytes, content_hash,
    normalize,
};
use tenantops_core::reason::ReasonCategory;
use tenantops_core::{BackupSetId, Counters, Failure, OperationType, ReasonCode, Run};
use tenantops_graph::registry::{Assignments, ExtraRead, ObjectType, REGISTRY};
use tenantops_graph::{Credentials, GraphError};

use crate::job::{Deps, Job, Report, Stop};
use crate::retention;

/// Registry types backed up at the same time; the tenant's budgets pace the requests.
const TYPE_CONCURRENCY: usize = 4;
/// Objects of one type read at the same time (each is 1 to 3 Graph requests).
const OBJECT_CONCURRENCY: usize = 8;
/// Times a backup waits for retention to finish deleting a snapshot it needs again.
const BUSY_ATTEMPTS: u32 = 20;

/// What capturing one object came to.
enum Captured {
    Stored {
        entry: ManifestEntry,
        created: bool,
    },
    /// Gone between the list and the read: nothing to back up.
    Vanished,
    Failed(Failure),
}

/// The object types a backup run covers: `context.target_scope.types`, or every backup type.
/// Names the registry does not know (or that are not backed up) come back as `Err`.
fn scope(run: &Run) -> Vec<Result<&'static ObjectType, String>> {
    let named: Option<Vec<String>> = run
        .context
        .target_scope
        .get("types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    match named {
        Some(names) if !names.is_empty() => names
            .into_iter()
            .map(|n| match ObjectType::named(&n) {
                Some(t) if t.backup => Ok(t),
                _ => Err(n),
            })
            .collect(),
        _ => REGISTRY.iter().filter(|t| t.backup).map(Ok).collect(),
    }
}

/// The full list of a type: every property (no `$select`), assignments when the list can
/// expand them.
fn list_path(ty: &ObjectType) -> String {
    let mut path = format!("{}/{}", ty.version.as_str(), ty.path);
    if ty.assignments == Assignments::ExpandOnList {
        path.push_str("?$expand=assignments");
    }
    path
}

fn item_path(ty: &ObjectType, id: &str) -> String {
    format!("{}/{}/{id}", ty.version.as_str(), ty.path)
}

fn display_name(obj: &Value) -> String {
    obj.get("displayName")
        .or_else(|| obj.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(256)
        .collect()
}

/// The navigation an `$expand` (or sub-collection) names: `presentationValues($expand=..)`
/// and `definitionValues?$expand=..` are `presentationValues` and `definitionValues`.
fn navigation_name(expr: &str) -> &str {
    expr.split(['(', '?']).next().unwrap_or(expr)
}

pub async fn backup(job: Job<'_>) -> Result<Report, Stop> {
    let Job { run, deps, .. } = job;
    let set_id = BackupSetId::from_ulid(run.id.ulid());
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for t in scope(run) {
        match t {
            Ok(t) => known.push(t),
            Err(unknown) => failures.push(Failure {
                object_ref: Some(unknown.chars().take(128).collect()),
                ..Failure::of(ReasonCode::GraphUnsupportedType)
            }),
        }
    }
    let types: Vec<String> = known.iter().map(|t| t.name.to_owned()).collect();
    let creds = job.credentials().await?;

    let work: Vec<_> = known
        .iter()
        .map(|ty| backup_type(job, &creds, ty, set_id))
        .collect();
    let per_type: Vec<Result<TypeResult, Stop>> = stream::iter(work)
        .buffer_unordered(TYPE_CONCURRENCY)
        .collect()
        .await;
    let (mut entries, mut created, mut failed_objects) = (Vec::new(), 0u64, 0u64);
    for r in per_type {
        let r = r?;
        entries.extend(r.entries);
        created += r.created;
        failed_objects += r.failures.len() as u64;
        failures.extend(r.failures);
    }
    // Unknown types count as failed objects of the run.
    let unknown = failures.len() as u64 - failed_objects;
    if unknown > 0 {
        job.progress(Counters {
            total: unknown,
            processed: unknown,
            failed: unknown,
            ..Counters::default()
        })
        .await?;
    }
    let failed = failed_objects + unknown;
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

fn storage(e: SnapshotError) -> Stop {
    tracing::error!(error = %e, code = ?e.code(), "snapshot storage failed");
    Stop::Fail(ReasonCode::BackupStorageFailed)
}

struct TypeResult {
    entries: Vec<ManifestEntry>,
    created: u64,
    failures: Vec<Failure>,
}

/// Lists one type and captures each of its objects; counters move once the type is done.
async fn backup_type(
    job: Job<'_>,
    creds: &Credentials,
    ty: &'static ObjectType,
    set: BackupSetId,
) -> Result<TypeResult, Stop> {
    let Job { run, deps, .. } = job;
    let objects = match deps
        .graph
        .list_all(creds, ty.budget, &list_path(ty), false)
        .await
    {
        Ok(o) => o,
        Err(GraphError::Throttled { retry_after }) => return Err(Stop::HandBack(retry_after)),
        Err(e) if e.reason().category() == ReasonCategory::Graph => {
            tracing::warn!(object_type = ty.name, reason = %e.reason(), "type could not be listed");
            let counters = Counters {
                total: 1,
                processed: 1,
                failed: 1,
                ..Counters::default()
            };
            job.progress(counters).await?;
            return Ok(TypeResult {
                entries: Vec::new(),
                created: 0,
                failures: vec![Failure {
                    object_ref: Some(ty.name.to_owned()),
                    ..Failure::of(e.reason())
                }],
            });
        }
        Err(e) => return Err(Stop::from(e)),
    };
    let total = objects.len() as u64;
    job.progress(Counters {
        total,
        ..Counters::default()
    })
    .await?;
    let captured: Vec<Result<Captured, Stop>> = stream::iter(objects)
        .map(|o| capture(run, deps, creds, ty, o, set))
        .buffer_unordered(OBJECT_CONCURRENCY)
        .collect()
        .await;
    let mut result = TypeResult {
        entries: Vec::new(),
        created: 0,
        failures: Vec::new(),
    };
    let mut delta = Counters::default();
    for c in captured {
        delta.processed += 1;
        match c? {
            Captured::Stored { entry, created } => {
                delta.succeeded += 1;
                result.created += u64::from(created);
                result.entries.push(entry);
            }
            Captured::Vanished => delta.skipped += 1,
            Captured::Failed(f) => {
                delta.failed += 1;
                result.failures.push(f);
            }
        }
    }
    job.progress(delta).await?;
    Ok(result)
}

/// Reads one object in full, stores its normalized payload under its hash, and returns its
/// manifest entry.
async fn capture(
    run: &Run,
    deps: &Deps,
    creds: &Credentials,
    ty: &'static ObjectType,
    listed: Value,
    set: BackupSetId,
) -> Result<Captured, Stop> {
    let Some(id) = listed.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return Ok(Captured::Vanished);
    };
    let object_ref = format!("{}/{}", ty.name, id.chars().take(128).collect::<String>());
    let payload = match read_full(deps, creds, ty, &id, listed).await {
        Ok(p) => p,
        Err(GraphError::NotFound) => return Ok(Captured::Vanished),
        Err(GraphError::Throttled { retry_after }) => return Err(Stop::HandBack(retry_after)),
        Err(e) if e.reason().category() == ReasonCategory::Graph => {
            tracing::warn!(object_type = ty.name, reason = %e.reason(), "object could not be read");
            return Ok(Captured::Failed(Failure {
                object_ref: Some(object_ref),
                ..Failure::of(e.reason())
            }));
        }
        Err(e) => return Err(Stop::from(e)),
    };
    let normalized = normalize(&payload);
    let hash = content_hash(&normalized);
    let key = snapshot_key(run.workspace_id, run.tenant_id, &hash);
    // The reference comes first: retention never deletes what a set is about to use.
    let mut stored = None;
    for attempt in 0..BUSY_ATTEMPTS {
        match deps
            .store
            .reference_snapshot(run.workspace_id, run.tenant_id, &hash, set, Utc::now())
            .await?
        {
            Reference::Referenced { stored: s } => {
                stored = Some(s);
                break;
            }
            Reference::Busy => {
                tokio::time::sleep(std::time::Duration::from_millis(
                    100 * u64::from(attempt + 1),
                ))
                .await
            }
        }
    }
    let created = match stored {
        // An unchanged object: its snapshot is already in the bucket; no S3 request.
        Some(true) => false,
        Some(false) => {
            let put = deps
                .snapshots
                .put_if_absent(&key, canonical_bytes(&normalized))
                .await
                .map_err(storage)?;
            deps.store
                .mark_snapshot_stored(run.workspace_id, run.tenant_id, &hash)
                .await?;
            put == Stored::Created
        }
        None => {
            return Ok(Captured::Failed(Failure {
                object_ref: Some(object_ref),
                ..Failure::of(ReasonCode::BackupStorageFailed)
            }));
        }
    };
    let assignments = payload
        .get("assignments")
        .and_then(Value::as_array)
        .map(|a| AssignmentsSummary::of(a))
        .unwrap_or_default();
    Ok(Captured::Stored {
        entry: ManifestEntry {
            object_type: ty.name.to_owned(),
            object_id: id,
            name: display_name(&payload),
            hash,
            snapshot_key: key,
            assignments,
        },
        created,
    })
}

/// The object with everything the registry says a full backup needs folded in: the item's
/// own GET (content the list leaves out, `$expand`s), sub-collections (`settings`,
/// `definitionValues`), and assignments.
async fn read_full(
    deps: &Deps,
    creds: &Credentials,
    ty: &ObjectType,
    id: &str,
    listed: Value,
) -> Result<Value, GraphError> {
    let mut expand: Vec<&str> = ty
        .extra_reads
        .iter()
        .filter_map(|r| match r {
            ExtraRead::ExpandOnItem(e) => Some(*e),
            _ => None,
        })
        .collect();
    if ty.assignments == Assignments::ExpandPerItem {
        expand.push("assignments");
    }
    let item_get = !expand.is_empty() || ty.extra_reads.contains(&ExtraRead::ItemContent);
    let mut object: Map<String, Value> = if item_get {
        let mut path = item_path(ty, id);
        if !expand.is_empty() {
            path.push_str("?$expand=");
            path.push_str(&expand.join(","));
        }
        let got = deps
            .graph
            .request(creds, ty.budget, Method::GET, &path, None, false)
            .await?;
        let mut got = match got {
            Value::Object(m) => m,
            _ => return Err(GraphError::BadResponse),
        };
        // Assignments the list expanded are not on the item's own GET.
        if let Some(a) = listed.get("assignments")
            && !got.contains_key("assignments")
        {
            got.insert("assignments".into(), a.clone());
        }
        got
    } else {
        match listed {
            Value::Object(m) => m,
            _ => return Err(GraphError::BadResponse),
        }
    };
    for read in ty.extra_reads {
        if let ExtraRead::SubCollection(sub) = read {
            let path = format!("{}/{sub}", item_path(ty, id));
            let items = deps.graph.list_all(creds, ty.budget, &path, false).await?;
            object.insert(navigation_name(sub).to_owned(), Value::Array(items));
        }
    }
    if ty.assignments == Assignments::SubResource {
        let path = format!("{}/assignments", item_path(ty, id));
        let items = deps.graph.list_all(creds, ty.budget, &path, false).await?;
        object.insert("assignments".into(), Value::Array(items));
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_names_drop_query_options() {
        assert_eq!(
            navigation_name("definitionValues?$expand=definition"),
            "definitionValues"
        );
        assert_eq!(
            navigation_name("scheduledActionsForRule($expand=scheduledActionConfigurations)"),
            "scheduledActionsForRule"
        );
        assert_eq!(navigation_name("settings"), "settings");
    }

    #[test]
    fn full_lists_select_nothing_and_expand_assignments_where_the_list_can() {
        let dc = ObjectType::named("deviceConfigurations").expect("registry");
        assert_eq!(
            list_path(dc),
            "v1.0/deviceManagement/deviceConfigurations?$expand=assignments"
        );
        let cp = ObjectType::named("configurationPolicies").expect("registry");
        assert_eq!(list_path(cp), "beta/deviceManagement/configurationPolicies");
    }
}
