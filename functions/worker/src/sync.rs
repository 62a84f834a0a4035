//! Syncs: the inventory of every registry type, directory groups (delta), role definitions.
//!
//! An inventory sync continues across invocations type by type: near the deadline no new
//! type starts, and the checkpoint holds the finished types' results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tenantops_aws::{DirectoryEntry, InventoryItem, keys};
use tenantops_core::{Counters, Failure, OperationParams, ReasonCode, Run};
use tenantops_graph::registry::{Budget, ObjectType};
use tenantops_graph::{Credentials, GraphError};

use crate::job::{Deps, Job, Report, Stop};

/// Registry types listed at the same time during an inventory sync.
const TYPE_CONCURRENCY: usize = 6;

fn display_name(obj: &Value) -> String {
    obj.get("displayName")
        .or_else(|| obj.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Only the registry's selected fields, and only small scalar values of them.
fn meta(obj: &Value, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        if let Some(v) = obj.get(*f) {
            let small = match v {
                Value::String(s) => s.len() <= 256,
                Value::Array(a) => a.len() <= 16 && a.iter().all(|x| !x.is_object()),
                Value::Object(_) => false,
                _ => true,
            };
            if small {
                m.insert((*f).to_owned(), v.clone());
            }
        }
    }
    if let Some(t) = obj.get("@odata.type").and_then(Value::as_str) {
        m.insert(
            tenantops_core::restore::INVENTORY_TYPE_FIELD.into(),
            Value::String(t.to_owned()),
        );
    }
    Value::Object(m)
}

/// Where an inventory sync stands between invocations (the checkpoint's state).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SyncProgress {
    /// Finished types (synced or failed) and what each came to.
    types: Map<String, Value>,
    /// The failed types' failures.
    failures: Vec<Failure>,
    types_ok: u64,
    types_failed: u64,
}

/// Lists every registry type in scope and records what it saw; objects gone since the last
/// sync are marked deleted. A type that fails is a failure naming it; the others go on.
pub async fn inventory(job: Job<'_>) -> Result<Report, Stop> {
    let run = job.run;
    let scope: Vec<String> = match OperationParams::parse(run.operation, Some(run.params.clone())) {
        Ok(OperationParams::InventorySync(p)) => p.types.unwrap_or_default(),
        _ => Vec::new(),
    };
    let types: Vec<Result<&'static ObjectType, String>> = if scope.is_empty() {
        ObjectType::inventory().map(Ok).collect()
    } else {
        scope
            .iter()
            .map(|n| ObjectType::named(n).ok_or_else(|| n.clone()))
            .collect()
    };
    let creds = job.credentials().await?;
    let mut done: SyncProgress = match job.resumed() {
        Some(state) => serde_json::from_value(state.clone()).map_err(|e| {
            tracing::error!(error = %e, "the sync's checkpoint does not parse");
            Stop::Fail(ReasonCode::Internal)
        })?,
        None => SyncProgress::default(),
    };
    let mut failures = Vec::new();
    let mut types_failed = 0u64;
    let mut known: Vec<&'static ObjectType> = Vec::new();
    for ty in types {
        match ty {
            Ok(t) => known.push(t),
            Err(unknown) => {
                // Fail safe: no call for a type the registry does not know.
                failures.push(Failure {
                    object_ref: Some(unknown.chars().take(128).collect()),
                    ..Failure::of(ReasonCode::GraphUnsupportedType)
                });
                types_failed += 1;
            }
        }
    }
    // Several types at once: the per-tenant budgets pace the requests, and one type waiting
    // on Conditional Access's 1 request/s no longer holds the Intune types back.
    // The invocation's first type always goes ahead, so every invocation moves on.
    let moved = AtomicBool::new(false);
    let work: Vec<_> = known
        .into_iter()
        .filter(|ty| !done.types.contains_key(ty.name))
        .map(|ty| sync_type(job, &creds, ty, &moved))
        .collect();
    let outcomes: Vec<(&'static ObjectType, TypeSynced)> = stream::iter(work)
        .buffer_unordered(TYPE_CONCURRENCY)
        .collect()
        .await;
    let (mut paused, mut handed_back) = (false, None::<Duration>);
    for (ty, outcome) in outcomes {
        match outcome {
            Ok(Some((n, gone))) => {
                done.types
                    .insert(ty.name.to_owned(), json!({ "objects": n, "deleted": gone }));
                done.types_ok += 1;
            }
            Ok(None) => paused = true,
            Err(Stop::HandBack(after)) => {
                handed_back = Some(handed_back.map_or(after, |a| a.max(after)));
            }
            Err(Stop::Fail(reason))
                if reason.category() == tenantops_core::reason::ReasonCategory::Graph =>
            {
                tracing::warn!(object_type = ty.name, reason = %reason, "type failed");
                done.failures.push(Failure {
                    object_ref: Some(ty.name.to_owned()),
                    ..Failure::of(reason)
                });
                done.types
                    .insert(ty.name.to_owned(), json!({ "failed": reason }));
                done.types_failed += 1;
            }
            // A token failure or a store failure stops the whole run.
            Err(stop) => return Err(stop),
        }
    }
    if paused || handed_back.is_some() {
        let state = serde_json::to_value(&done).map_err(|e| {
            tracing::error!(error = %e, "the sync's checkpoint does not serialize");
            Stop::Fail(ReasonCode::Internal)
        })?;
        return Err(match handed_back {
            // The throttle's hand-back keeps the types already synced.
            Some(after) => {
                job.checkpoint(state).await?;
                Stop::HandBack(after)
            }
            None => job.pause(state).await,
        });
    }
    failures.extend(done.failures);
    Ok(Report {
        outcome: Report::outcome_of(done.types_ok, done.types_failed + types_failed),
        // Already counted, type by type.
        counters: Counters::default(),
        failures,
        result: Some(json!({ "types": done.types })),
    })
}

/// (objects seen, objects marked deleted) of one type; `None`: not started, the deadline is
/// near; or why the type stopped.
type TypeSynced = Result<Option<(u64, u64)>, Stop>;

/// Lists one type, records what it saw and marks what is gone; returns (objects, deleted).
async fn sync_type(
    job: Job<'_>,
    creds: &Credentials,
    ty: &'static ObjectType,
    moved: &AtomicBool,
) -> (&'static ObjectType, TypeSynced) {
    if moved.load(Ordering::SeqCst) && job.should_yield() {
        return (ty, Ok(None));
    }
    let synced = sync_one(job, creds, ty).await;
    moved.store(true, Ordering::SeqCst);
    (ty, synced.map(Some))
}

async fn sync_one(job: Job<'_>, creds: &Credentials, ty: &ObjectType) -> Result<(u64, u64), Stop> {
    let Job { run, deps, .. } = job;
    let objects = deps.graph.list_type(creds, ty).await?;
    let now = Utc::now();
    let items: Vec<InventoryItem> = objects
        .iter()
        .filter_map(|o| {
            let id = o.get("id").and_then(Value::as_str)?;
            Some(InventoryItem {
                object_type: ty.name.to_owned(),
                object_id: id.to_owned(),
                name: display_name(o),
                meta: meta(o, ty.select),
                last_seen_run: run.id,
                seen_at: now,
                deleted: false,
            })
        })
        .collect();
    deps.store
        .put_inventory(run.workspace_id, run.tenant_id, &items)
        .await?;
    let gone = deps
        .store
        .mark_unseen_deleted(run.workspace_id, run.tenant_id, ty.name, run.id, now)
        .await?;
    // A restore preview computed on the inventory before this write can no longer execute.
    deps.store
        .bump_inventory_version(run.workspace_id, run.tenant_id)
        .await?;
    let n = items.len() as u64;
    // Counters move per type, as each batch of work lands.
    job.progress(Counters {
        total: n,
        processed: n,
        succeeded: n,
        ..Counters::default()
    })
    .await?;
    Ok((n, gone))
}

fn directory_entry(
    obj: &Value,
    id_prefix: &str,
    fields: &[&str],
    run: &Run,
) -> Option<DirectoryEntry> {
    let id = obj.get("id").and_then(Value::as_str)?;
    let name = display_name(obj);
    Some(DirectoryEntry {
        id: format!("{id_prefix}{id}"),
        name_lower: name.to_lowercase(),
        display_name: name,
        meta: meta(obj, fields),
        last_seen_run: run.id,
    })
}

/// Groups through `/groups/delta`: the stored delta link makes the next sync incremental;
/// `@removed` entries delete; an expired link (`syncStateNotFound`) falls back to a full sync.
pub async fn groups(job: Job<'_>) -> Result<Report, Stop> {
    let Job { run, deps, .. } = job;
    let creds = job.credentials().await?;
    let full_requested = matches!(
        OperationParams::parse(run.operation, Some(run.params.clone())),
        Ok(OperationParams::DirectoryGroupsSync(p)) if p.full
    );
    let stored = if full_requested {
        None
    } else {
        deps.store
            .sync_state(run.workspace_id, run.tenant_id, "groups")
            .await?
    };
    match delta_groups(run, deps, &creds, stored.clone()).await {
        Err(Stop::Fail(_)) if stored.is_some() && delta_expired(deps, run, &creds).await => {
            tracing::info!("delta link expired; falling back to a full sync");
            delta_groups(run, deps, &creds, None).await
        }
        other => other,
    }
}

/// Whether the stored link is the problem (cheap re-check, so other failures surface as they are).
async fn delta_expired(deps: &Deps, run: &Run, creds: &Credentials) -> bool {
    let Ok(Some(link)) = deps
        .store
        .sync_state(run.workspace_id, run.tenant_id, "groups")
        .await
    else {
        return false;
    };
    matches!(
        deps.graph
            .page(creds, Budget::Directory, &link, false)
            .await,
        Err(GraphError::SyncStateNotFound)
    )
}

async fn delta_groups(
    run: &Run,
    deps: &Deps,
    creds: &Credentials,
    link: Option<String>,
) -> Result<Report, Stop> {
    let full = link.is_none();
    let partition = keys::groups_of(run.workspace_id, run.tenant_id);
    let fields = tenantops_graph::requests::GROUP_FIELDS;
    let mut next = Some(link.unwrap_or_else(tenantops_graph::requests::groups_delta_path));
    let (mut upserted, mut removed) = (0u64, 0u64);
    let mut delta_link = None;
    while let Some(current) = next.take() {
        let page = deps
            .graph
            .page(creds, Budget::Directory, &current, false)
            .await?;
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for obj in &page.items {
            if obj.get("@removed").is_some() {
                if let Some(id) = obj.get("id").and_then(Value::as_str) {
                    removals.push(id.to_owned());
                }
            } else if let Some(e) = directory_entry(obj, "", fields, run) {
                upserts.push(e);
            }
        }
        deps.store
            .put_directory(partition.clone(), &upserts)
            .await?;
        deps.store
            .delete_directory(partition.clone(), &removals)
            .await?;
        upserted += upserts.len() as u64;
        removed += removals.len() as u64;
        next = page.next_link;
        if next.is_none() {
            delta_link = page.delta_link;
        }
    }
    if full {
        // A full read saw every group: what it did not see is gone.
        let stale: Vec<String> = deps
            .store
            .directory(partition.clone())
            .await?
            .into_iter()
            .filter(|e| e.last_seen_run != run.id)
            .map(|e| e.id)
            .collect();
        removed += stale.len() as u64;
        deps.store.delete_directory(partition, &stale).await?;
    }
    deps.store
        .put_sync_state(
            run.workspace_id,
            run.tenant_id,
            "groups",
            delta_link.as_deref(),
        )
        .await?;
    let n = upserted + removed;
    Ok(Report {
        outcome: tenantops_core::Outcome::Succeeded,
        counters: Counters {
            total: n,
            processed: n,
            succeeded: n,
            ..Counters::default()
        },
        failures: Vec::new(),
        result: Some(
            json!({ "mode": if full { "full" } else { "delta" }, "upserted": upserted, "removed": removed }),
        ),
    })
}

/// Entra and Intune role definitions into the tenant's cache.
pub async fn role_definitions(job: Job<'_>) -> Result<Report, Stop> {
    let Job { run, deps, .. } = job;
    let creds = job.credentials().await?;
    let partition = keys::role_definitions_of(run.workspace_id, run.tenant_id);
    let mut counters = Counters::default();
    let mut failures = Vec::new();
    let mut parts_ok = 0;
    for (prefix, type_name) in [
        ("entra:", "directoryRoleDefinitions"),
        ("intune:", "intuneRoleDefinitions"),
    ] {
        let Some(ty) = ObjectType::named(type_name) else {
            failures.push(Failure {
                object_ref: Some(type_name.into()),
                ..Failure::of(ReasonCode::GraphUnsupportedType)
            });
            continue;
        };
        match deps.graph.list_type(&creds, ty).await {
            Ok(objects) => {
                let entries: Vec<DirectoryEntry> = objects
                    .iter()
                    .filter_map(|o| directory_entry(o, prefix, ty.select, run))
                    .collect();
                deps.store
                    .put_directory(partition.clone(), &entries)
                    .await?;
                let n = entries.len() as u64;
                counters.total += n;
                counters.processed += n;
                counters.succeeded += n;
                parts_ok += 1;
            }
            Err(GraphError::Throttled { retry_after }) => return Err(Stop::HandBack(retry_after)),
            Err(e @ GraphError::Token { .. }) => return Err(e.into()),
            Err(e) => failures.push(Failure {
                object_ref: Some(type_name.into()),
                ..e.failure()
            }),
        }
    }
    if failures.is_empty() {
        let stale: Vec<String> = deps
            .store
            .directory(partition.clone())
            .await?
            .into_iter()
            .filter(|e| e.last_seen_run != run.id)
            .map(|e| e.id)
            .collect();
        deps.store.delete_directory(partition, &stale).await?;
    }
    Ok(Report {
        outcome: Report::outcome_of(parts_ok, failures.len() as u64),
        counters,
        failures,
        result: None,
    })
}
