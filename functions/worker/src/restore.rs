//! Executing a restore: item by item, in the preview's order, each under its own record in
//! DynamoDB, so that a redelivered or retried run never writes an object twice.
//!
//! Per item: claim it (`pending` → `writing`, conditioned on the run's lease); read the
//! snapshot; write; finish it (`done` with the written id and an audit entry, or `failed`).
//! A create is sent once ([`GraphClient::write_once`]) and its id recorded before anything
//! else; Graph does not dedupe creates, so an item found `writing` without a recorded id (a
//! crash, a redelivery, or an answer that never came) is first looked for in the tenant by
//! name, among objects that did not exist at preview time, and adopted instead of created
//! again. Updates (PATCH) and assignments (`/assign` replaces them) are idempotent.
//!
//! A restore continues across invocations: near the deadline it checkpoints how many items
//! (in order) are done and counted, and the next invocation takes their results from their
//! records instead of writing them again.
//!
//! [`GraphClient::write_once`]: tenantops_graph::GraphClient::write_once

use chrono::Utc;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tenantops_aws::restores::{ItemClaim, ItemLease, ItemStatus, RestoreItem};
use tenantops_aws::{AuditEntry, StoreError};
use tenantops_core::restore::{Action, rewrite_assignments};
use tenantops_core::{Counters, Failure, Outcome, ReasonCode, RestoreId, Run};
use tenantops_graph::registry::{Assignments, ObjectType, RestoreMethod};
use tenantops_graph::{Credentials, GraphError};

use crate::job::{Deps, Job, Report, Stop};

/// Navigations written after the object itself rather than inline.
const VALUES: &str = "definitionValues";

/// What writing an item needs.
struct Ctx<'a> {
    deps: &'a Deps,
    creds: &'a Credentials,
    /// Ids earlier items of this restore wrote: never adopted for another item (two
    /// snapshots may share a name).
    written: &'a [String],
}

/// How one item ended in this attempt.
#[derive(Debug, Clone, PartialEq)]
struct ItemResult {
    status: ItemStatus,
    written_id: Option<String>,
    failure: Option<ReasonCode>,
}

pub async fn execute(job: Job<'_>) -> Result<Report, Stop> {
    let Job {
        run, owner, deps, ..
    } = job;
    let restore: RestoreId = run
        .context
        .restore_id
        .as_deref()
        .and_then(|r| r.parse().ok())
        .ok_or(Stop::Fail(ReasonCode::RestoreNotFound))?;
    let (ws, tenant) = (run.workspace_id, run.tenant_id);
    let record = deps
        .store
        .get_restore(ws, tenant, restore)
        .await?
        .ok_or(Stop::Fail(ReasonCode::RestoreNotFound))?;
    if record.run_id != Some(run.id) {
        // Another run executes (or executed) this restore; never two at once.
        return Err(Stop::Fail(ReasonCode::RestoreAlreadyExecuted));
    }
    let items = deps.store.restore_items(ws, tenant, restore).await?;
    let creds = job.credentials().await?;
    let lease = ItemLease {
        workspace: ws,
        tenant,
        restore,
        run: run.id,
        owner,
    };
    // Items before `done` were counted by earlier invocations (their checkpoint's counters);
    // their records say how they ended, and nothing writes them again.
    // A checkpoint refused for a cancel request leaves its delta unrecorded: the report
    // carries it, so the counters match the items written.
    let mut unrecorded = None;
    let done = match job.resumed() {
        Some(state) => state.get("done").and_then(Value::as_u64).unwrap_or(0),
        None => {
            let total = Counters {
                total: items.len() as u64,
                ..Default::default()
            };
            unrecorded = checkpoint(job, total).await?;
            0
        }
    };

    let mut results = Vec::with_capacity(items.len());
    let mut written: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let (mut succeeded, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let mut moved = false;
    for (position, item) in items.iter().enumerate() {
        if unrecorded.is_some() {
            break;
        }
        let position = position as u64;
        let counted = position < done;
        let ctx = Ctx {
            deps,
            creds: &creds,
            written: &written,
        };
        let finished = matches!(
            item.status,
            ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped
        );
        let result = if counted && finished {
            // Finished in an earlier invocation: its record is the result (no Graph call).
            // (A listing older than the finish goes through `restore_one`, which finds the
            // item finished and writes nothing.)
            ItemResult {
                status: item.status,
                written_id: item.written_id.clone(),
                failure: item.failure.as_ref().map(|f| f.code),
            }
        } else {
            // The invocation's first item always goes ahead, so every invocation moves on.
            if moved && !counted && job.should_yield() {
                return Err(job.pause(json!({ "done": position })).await);
            }
            match restore_one(run, &lease, item.index, &ctx).await {
                Ok(r) => r,
                Err(Stop::HandBack(after)) => {
                    // The items done so far stay counted; the held one resumes as today.
                    job.checkpoint(json!({ "done": position })).await?;
                    return Err(Stop::HandBack(after));
                }
                Err(stop) => return Err(stop),
            }
        };
        // Only work done in this invocation lets it yield.
        moved |= !counted;
        if let Some(id) = &result.written_id {
            written.push(id.clone());
        }
        let mut delta = Counters {
            processed: 1,
            ..Default::default()
        };
        match result.status {
            ItemStatus::Done => {
                succeeded += 1;
                delta.succeeded = 1;
            }
            ItemStatus::Skipped => {
                skipped += 1;
                delta.skipped = 1;
            }
            _ => {
                failed += 1;
                delta.failed = 1;
                let code = result.failure.unwrap_or(ReasonCode::GraphUnavailable);
                failures.push(Failure {
                    code,
                    message: code.message().to_owned(),
                    object_ref: Some(format!("{}/{}", item.object_type, item.object_id)),
                });
            }
        }
        results.push(item_result(item, result.status, result.written_id));
        if !counted {
            unrecorded = checkpoint(job, delta).await?;
        }
    }

    // Cancelled: the items not reached are recorded as such; one an earlier attempt left
    // `writing` (a hand-back mid-item) stays so, with whatever it recorded as written.
    let rest = &items[results.len()..];
    let never: Vec<u32> = rest
        .iter()
        .filter(|i| i.status == ItemStatus::Pending)
        .map(|i| i.index)
        .collect();
    // A cancel that came after the last item stopped nothing: the restore completed.
    let stopped = unrecorded.is_some() && !rest.is_empty();
    if stopped {
        deps.store.cancel_restore_items(&lease, &never).await?;
        for item in rest {
            let status = match item.status {
                ItemStatus::Pending => ItemStatus::Cancelled,
                other => other,
            };
            results.push(item_result(item, status, item.written_id.clone()));
        }
    }
    let cancelled = if stopped { never.len() as u64 } else { 0 };

    let now = Utc::now();
    let audit = AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: ws,
        tenant_id: Some(tenant),
        actor: run.initiator.to_string(),
        action: "restore.executed".into(),
        target: restore.to_string(),
        before: Some(json!({ "status": "executing", "run_id": run.id })),
        after: Some(json!({
            "status": if stopped { "cancelled" } else { "completed" },
            "succeeded": succeeded,
            "failed": failed,
            "skipped": skipped,
            "cancelled": cancelled,
        })),
        at: now,
    };
    match deps.store.complete_restore(&lease, now, &audit).await {
        Ok(()) | Err(StoreError::TransitionRefused) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Report {
        outcome: if stopped {
            Outcome::Cancelled
        } else {
            Report::outcome_of(succeeded + skipped, failed)
        },
        // Counters already moved item by item, but for a cancel's last step.
        counters: unrecorded.unwrap_or_default(),
        failures,
        result: Some(json!({
            "restore_id": restore,
            "succeeded": succeeded,
            "failed": failed,
            "skipped": skipped,
            "cancelled": cancelled,
            "items": results,
        })),
    })
}

/// A checkpoint ([`Job::progress`]); `Some(delta)`: a cancel was requested, and `delta` is
/// not recorded yet.
async fn checkpoint(job: Job<'_>, delta: Counters) -> Result<Option<Counters>, Stop> {
    match job.progress(delta).await {
        Ok(()) => Ok(None),
        Err(Stop::Cancelled) => Ok(Some(delta)),
        Err(stop) => Err(stop),
    }
}

/// One item as the run's result lists it.
fn item_result(item: &RestoreItem, status: ItemStatus, written_id: Option<String>) -> Value {
    json!({
        "index": item.index,
        "object_type": item.object_type,
        "object_id": item.object_id,
        "action": item.action,
        "status": status,
        "written_id": written_id,
    })
}

/// Claims, writes and finishes one item. Errors stop the run (a lost lease, a store
/// failure, or a long throttle that hands the run back with the item still held).
async fn restore_one(
    run: &Run,
    lease: &ItemLease<'_>,
    index: u32,
    ctx: &Ctx<'_>,
) -> Result<ItemResult, Stop> {
    let deps = ctx.deps;
    let (item, resumed) = match deps.store.claim_restore_item(lease, index).await {
        Ok(ItemClaim::Finished(item)) => {
            return Ok(ItemResult {
                status: item.status,
                written_id: item.written_id.clone(),
                failure: item.failure.as_ref().map(|f| f.code),
            });
        }
        Ok(ItemClaim::Claimed { item, resumed }) => (item, resumed),
        Err(StoreError::TransitionRefused) => {
            tracing::warn!(index, "restore item or lease no longer ours");
            return Err(Stop::Fail(ReasonCode::RunStale));
        }
        Err(e) => return Err(e.into()),
    };
    if item.action == Action::SkipUnchanged || !item.blockers.is_empty() {
        return finish(run, lease, &item, ItemStatus::Skipped, None, None, deps).await;
    }
    let outcome = match ObjectType::named(&item.object_type) {
        Some(ty) if ty.restore != RestoreMethod::NotSupported => {
            write(lease, &item, resumed, ty, ctx).await
        }
        _ => Err(WriteFailure::Item(ReasonCode::GraphUnsupportedType)),
    };
    match outcome {
        Ok(id) => finish(run, lease, &item, ItemStatus::Done, Some(id), None, deps).await,
        Err(WriteFailure::Item(code)) => {
            tracing::warn!(index, code = %code, "restore item failed");
            finish(
                run,
                lease,
                &item,
                ItemStatus::Failed,
                None,
                Some(code),
                deps,
            )
            .await
        }
        Err(WriteFailure::Stop(stop)) => Err(stop),
    }
}

async fn finish(
    run: &Run,
    lease: &ItemLease<'_>,
    item: &RestoreItem,
    status: ItemStatus,
    written_id: Option<String>,
    failure: Option<ReasonCode>,
    deps: &Deps,
) -> Result<ItemResult, Stop> {
    let audit = written_id.as_ref().map(|id| AuditEntry {
        id: ulid::Ulid::new(),
        workspace_id: lease.workspace,
        tenant_id: Some(lease.tenant),
        actor: run.initiator.to_string(),
        action: "restore.object_written".into(),
        target: format!("{}/{id}", item.object_type),
        before: Some(json!({
            "object_id": item.object_id,
            "action": item.action,
            "restore_id": lease.restore,
            "run_id": lease.run,
        })),
        after: Some(json!({ "object_id": id, "name": item.name })),
        at: Utc::now(),
    });
    let fail = failure.map(|code| Failure {
        code,
        message: code.message().to_owned(),
        object_ref: Some(format!("{}/{}", item.object_type, item.object_id)),
    });
    match deps
        .store
        .finish_restore_item(
            lease,
            item.index,
            status,
            written_id.as_deref(),
            fail.as_ref(),
            audit.as_ref(),
        )
        .await
    {
        Ok(()) => Ok(ItemResult {
            status,
            written_id,
            failure,
        }),
        Err(StoreError::TransitionRefused) => Err(Stop::Fail(ReasonCode::RunStale)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug)]
enum WriteFailure {
    /// This item failed; the others go on.
    Item(ReasonCode),
    /// The run must stop (handback on a long throttle, lost lease, store failure).
    Stop(Stop),
}

impl From<GraphError> for WriteFailure {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Throttled { retry_after } => {
                WriteFailure::Stop(Stop::HandBack(retry_after))
            }
            other => WriteFailure::Item(other.reason()),
        }
    }
}

impl From<StoreError> for WriteFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TransitionRefused => WriteFailure::Stop(Stop::Fail(ReasonCode::RunStale)),
            other => WriteFailure::Stop(Stop::from(other)),
        }
    }
}

/// The snapshot split into what is written where.
struct Parts {
    /// The object's own properties (with settings inline for settings-catalog types).
    body: Map<String, Value>,
    assignments: Vec<Value>,
    /// Administrative templates' definition values, written after the object.
    values: Vec<Value>,
}

fn split(snapshot: Value, ty: &ObjectType, action: Action) -> Parts {
    let mut body = match snapshot {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let take = |body: &mut Map<String, Value>, k: &str| match body.remove(k) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let assignments = take(&mut body, "assignments");
    let values = take(&mut body, VALUES);
    if action == Action::Update {
        // A PATCH carries the object's own properties; navigations are not patchable.
        body.retain(|_, v| {
            !v.is_array()
                || v.as_array()
                    .is_some_and(|a| !a.iter().any(Value::is_object))
        });
        if ty.restore == RestoreMethod::PostWithSettings {
            body.remove("settings");
        }
    }
    Parts {
        body,
        assignments,
        values,
    }
}

async fn write(
    lease: &ItemLease<'_>,
    item: &RestoreItem,
    resumed: bool,
    ty: &ObjectType,
    ctx: &Ctx<'_>,
) -> Result<String, WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let bytes = deps.snapshots.get(&item.snapshot_key).await.map_err(|e| {
        tracing::error!(error = %e, "could not read the snapshot");
        WriteFailure::Item(ReasonCode::RestoreSnapshotMissing)
    })?;
    let snapshot: Value = serde_json::from_slice(&bytes)
        .map_err(|_| WriteFailure::Item(ReasonCode::RestoreSnapshotMissing))?;
    let name_field = if snapshot.get("displayName").is_some() {
        "displayName"
    } else {
        "name"
    };
    let parts = split(snapshot, ty, item.action);
    let collection = format!("{}/{}", ty.version.as_str(), ty.path);

    let id = match item.action {
        Action::Update => {
            deps.graph
                .request(
                    creds,
                    ty.budget,
                    Method::PATCH,
                    &format!("{collection}/{}", item.object_id),
                    Some(&Value::Object(parts.body.clone())),
                    false,
                )
                .await?;
            item.object_id.clone()
        }
        Action::Create | Action::SkipUnchanged => {
            let mut id = item.written_id.clone();
            if id.is_none() && resumed {
                id = adopt(item, ty, name_field, &collection, ctx).await?;
            }
            let id = match id {
                Some(id) => id,
                None => {
                    let created = deps
                        .graph
                        .write_once(
                            creds,
                            ty.budget,
                            Method::POST,
                            &collection,
                            Some(&Value::Object(parts.body.clone())),
                        )
                        .await;
                    let id = match created {
                        Ok(v) => v
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or(WriteFailure::Item(ReasonCode::GraphUnavailable))?,
                        // The create may have happened: look before deciding it did not.
                        Err(GraphError::Unavailable) => {
                            adopt(item, ty, name_field, &collection, ctx)
                                .await?
                                .ok_or(WriteFailure::Item(ReasonCode::GraphUnavailable))?
                        }
                        Err(e) => return Err(e.into()),
                    };
                    deps.store
                        .record_restore_step(lease, item.index, &id, "created")
                        .await?;
                    id
                }
            };
            if !parts.values.is_empty() && item.step.as_deref() != Some("values") {
                write_values(&id, &parts.values, resumed, &collection, ty, ctx).await?;
                deps.store
                    .record_restore_step(lease, item.index, &id, "values")
                    .await?;
            }
            id
        }
    };

    if ty.assignments != Assignments::None
        && (item.action == Action::Update || !parts.assignments.is_empty())
    {
        let assignments = rewrite_assignments(&parts.assignments, &item.targets);
        // `/assign` replaces the object's assignments: repeating it is harmless.
        deps.graph
            .request(
                creds,
                ty.budget,
                Method::POST,
                &format!("{collection}/{id}/assign"),
                Some(&json!({ "assignments": assignments })),
                false,
            )
            .await?;
    }
    Ok(id)
}

/// Writes an administrative template's definition values. On a resumed item some may
/// already exist (written by the attempt that was interrupted): they are removed first, so
/// the object ends with exactly the snapshot's values.
async fn write_values(
    id: &str,
    values: &[Value],
    resumed: bool,
    collection: &str,
    ty: &ObjectType,
    ctx: &Ctx<'_>,
) -> Result<(), WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let path = format!("{collection}/{id}/{VALUES}");
    if resumed {
        for existing in deps.graph.list_all(creds, ty.budget, &path, false).await? {
            if let Some(vid) = existing.get("id").and_then(Value::as_str) {
                match deps
                    .graph
                    .request(
                        creds,
                        ty.budget,
                        Method::DELETE,
                        &format!("{path}/{vid}"),
                        None,
                        false,
                    )
                    .await
                {
                    Ok(_) | Err(GraphError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for v in values {
        deps.graph
            .write_once(creds, ty.budget, Method::POST, &path, Some(v))
            .await?;
    }
    Ok(())
}

/// An object of the type with the item's name that was not there at preview time: the
/// create of an earlier attempt, whose answer was lost.
async fn adopt(
    item: &RestoreItem,
    ty: &ObjectType,
    name_field: &str,
    collection: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<String>, WriteFailure> {
    let (deps, creds) = (ctx.deps, ctx.creds);
    let filter = format!("{name_field} eq '{}'", item.name.replace('\'', "''"));
    let path = format!("{collection}?$filter={}", encode_query(&filter));
    let found = deps.graph.list_all(creds, ty.budget, &path, false).await?;
    let adopted = found
        .iter()
        .filter_map(|o| o.get("id").and_then(Value::as_str))
        .find(|id| {
            !item.preexisting_same_name.iter().any(|p| p == id)
                && !ctx.written.iter().any(|w| w == id)
        })
        .map(str::to_owned);
    if let Some(id) = &adopted {
        tracing::info!(index = item.index, object_id = %id, "adopting the object an earlier attempt created");
    }
    Ok(adopted)
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'\'' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query("displayName eq 'A&B #1'"),
            "displayName%20eq%20'A%26B%20%231'"
        );
    }

    #[test]
    fn updates_leave_navigations_out_and_creates_keep_settings_inline() {
        let ty = ObjectType::named("configurationPolicies").expect("registered");
        let snap = json!({"name": "P", "settings": [{"x": 1}], "assignments": [{"target": {}}], "roleScopeTagIds": ["0"]});
        let create = split(snap.clone(), ty, Action::Create);
        assert!(create.body.contains_key("settings"));
        assert_eq!(create.assignments.len(), 1);
        let update = split(snap, ty, Action::Update);
        assert!(!update.body.contains_key("settings"));
        assert!(update.body.contains_key("roleScopeTagIds"));
    }
}
