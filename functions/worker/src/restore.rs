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
use serde_json::{Value, json};
use tenantops_aws::restores::{ItemClaim, ItemLease, ItemStatus, RestoreItem};
use tenantops_aws::{AuditEntry, StoreError};
use tenantops_core::restore::Action;
use tenantops_core::{Counters, Failure, Outcome, ReasonCode, RestoreId, Run};
use tenantops_graph::registry::{ObjectType, RestoreMethod};

use crate::job::{Deps, Job, Report, Stop};
use crate::restore_write::{Ctx, WriteFailure, write};

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
    // Each tenant's log records the execution: a restore into another tenant's source too.
    let audits: Vec<AuditEntry> = std::iter::once(tenant)
        .chain(record.source_tenant_id)
        .map(|logged| AuditEntry {
            id: ulid::Ulid::new(),
            workspace_id: ws,
            tenant_id: Some(logged),
            actor: run.initiator.to_string(),
            action: "restore.executed".into(),
            target: restore.to_string(),
            before: Some(json!({ "status": "executing", "run_id": run.id })),
            after: Some(json!({
                "status": if stopped { "cancelled" } else { "completed" },
                "source_tenant_id": record.source_tenant_id.unwrap_or(tenant),
                "destination_tenant_id": tenant,
                "succeeded": succeeded,
                "failed": failed,
                "skipped": skipped,
                "cancelled": cancelled,
            })),
            at: now,
        })
        .collect();
    match deps.store.complete_restore(&lease, now, &audits).await {
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
