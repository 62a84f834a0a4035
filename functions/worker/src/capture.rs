//! Capturing one object for a backup: its full payload (item, settings, definition values,
//! script content, assignments) through the contract registry, normalized and stored once
//! per content hash in the snapshot bucket, referenced by the set before it is written.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Map, Value};
use tenantops_aws::SnapshotError;
use tenantops_aws::Stored;
use tenantops_aws::backups::Reference;
use tenantops_aws::snapshots::snapshot_key;
use tenantops_core::backup::{
    AssignmentsSummary, ManifestEntry, canonical_bytes, content_hash, normalize,
};
use tenantops_core::reason::ReasonCategory;
use tenantops_core::{BackupSetId, Failure, ReasonCode, Run};
use tenantops_graph::registry::ObjectType;
use tenantops_graph::{Credentials, GraphError};

use crate::job::{Deps, Stop};

/// Times a backup waits for retention to finish deleting a snapshot it needs again.
const BUSY_ATTEMPTS: u32 = 20;

/// What capturing one object came to.
pub(crate) enum Captured {
    Stored {
        entry: ManifestEntry,
        created: bool,
    },
    /// Gone between the list and the read: nothing to back up.
    Vanished,
    Failed(Failure),
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

pub(crate) fn storage(e: SnapshotError) -> Stop {
    tracing::error!(error = %e, code = ?e.code(), "snapshot storage failed");
    Stop::Fail(ReasonCode::BackupStorageFailed)
}

/// One object read in full and normalized, as a backup stores it.
pub(crate) struct Read {
    pub normalized: Value,
    pub hash: String,
    /// Its manifest entry (the snapshot key is where its content is, or would be, stored).
    pub entry: ManifestEntry,
}

/// What reading one object came to.
pub(crate) enum Reading {
    Read(Box<Read>),
    /// Gone between the list and the read.
    Vanished,
    Failed(Failure),
}

/// Reads one listed object in full through the registry and normalizes and hashes it: the
/// path a backup and a drift check share. Nothing is stored.
pub(crate) async fn read_object(
    run: &Run,
    deps: &Deps,
    creds: &Credentials,
    ty: &'static ObjectType,
    listed: Value,
) -> Result<Reading, Stop> {
    let Some(id) = listed.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return Ok(Reading::Vanished);
    };
    let object_ref = format!("{}/{}", ty.name, id.chars().take(128).collect::<String>());
    let payload = match read_full(deps, creds, ty, &id, listed).await {
        Ok(p) => p,
        Err(GraphError::NotFound) => return Ok(Reading::Vanished),
        Err(GraphError::Throttled { retry_after }) => return Err(Stop::HandBack(retry_after)),
        Err(e) if e.reason().category() == ReasonCategory::Graph => {
            tracing::warn!(object_type = ty.name, reason = %e.reason(), "object could not be read");
            return Ok(Reading::Failed(Failure {
                object_ref: Some(object_ref),
                ..e.failure()
            }));
        }
        Err(e) => return Err(Stop::from(e)),
    };
    let normalized = normalize(&payload);
    let hash = content_hash(&normalized);
    let assignments = payload
        .get("assignments")
        .and_then(Value::as_array)
        .map(|a| AssignmentsSummary::of(a))
        .unwrap_or_default();
    let entry = ManifestEntry {
        object_type: ty.name.to_owned(),
        object_id: id,
        name: display_name(&payload),
        hash: hash.clone(),
        snapshot_key: snapshot_key(run.workspace_id, run.tenant_id, &hash),
        assignments,
    };
    Ok(Reading::Read(Box::new(Read {
        normalized,
        hash,
        entry,
    })))
}

/// Reads one object in full, stores its normalized payload under its hash, and returns its
/// manifest entry.
pub(crate) async fn capture(
    run: &Run,
    deps: &Deps,
    creds: &Credentials,
    ty: &'static ObjectType,
    listed: Value,
    set: BackupSetId,
) -> Result<Captured, Stop> {
    let read = match read_object(run, deps, creds, ty, listed).await? {
        Reading::Read(r) => r,
        Reading::Vanished => return Ok(Captured::Vanished),
        Reading::Failed(f) => return Ok(Captured::Failed(f)),
    };
    let Read {
        normalized,
        hash,
        entry,
    } = *read;
    let object_ref = format!(
        "{}/{}",
        entry.object_type,
        entry.object_id.chars().take(128).collect::<String>()
    );
    let key = entry.snapshot_key.clone();
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
    Ok(Captured::Stored { entry, created })
}

/// The object with everything the registry says a full backup needs folded in: the item's
/// own GET (content the list leaves out, `$expand`s), sub-collections (`settings`,
/// `definitionValues`), and assignments. The paths are the registry's (`requests.rs`).
async fn read_full(
    deps: &Deps,
    creds: &Credentials,
    ty: &ObjectType,
    id: &str,
    listed: Value,
) -> Result<Value, GraphError> {
    let mut object: Map<String, Value> = if let Some(path) = ty.item_read_path(id) {
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
    for (navigation, path) in ty.sub_collection_paths(id) {
        let items = deps.graph.list_all(creds, ty.budget, &path, false).await?;
        object.insert(navigation.to_owned(), Value::Array(items));
    }
    Ok(Value::Object(object))
}
