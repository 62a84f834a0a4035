//! `restore.preview`: the plan of every selected snapshot object of a backup set, computed
//! from DynamoDB and the snapshots in S3 (never Graph) into the restore's items, then the
//! restore moved from `previewing` to `previewed` (executable with the token its start
//! returned).
//!
//! The manifest is read a page at a time and each page's items are planned a few at a time
//! and written before the next page is read, so memory does not grow with the set. A diff
//! too long for its item is stored whole in the snapshot bucket under a key of the restore
//! item, and the item keeps a capped excerpt (see [`tenantops_core::restore::inline_diff`]).
//! Items are written only while `pending` and the record is finished once, so a redelivered
//! preview rewrites its own items and ends the same.
//!
//! A preview continues across invocations: near the deadline, after a page is written, it
//! checkpoints the manifest cursor and the plan's running totals ([`Resume`]; the items
//! themselves are already in the table), and the next invocation reads on from the cursor.
//! Each page's progress is the cancel checkpoint.
//!
//! A restore into another tenant reads the backup set of its source tenant and plans against
//! the destination's (the run's) inventory and caches: every object is created, and its
//! targets are mapped by name ([`crate::preview_cross`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantops_aws::previews::{MANIFEST_PAGE as PAGE, PreviewDone};
use tenantops_aws::restores::{
    ItemLease, ItemStatus, PlanSummary, RestoreItem, RestoreRecord, RestoreStatus,
};
use tenantops_aws::snapshots::restore_diff_key;
use tenantops_aws::{AuditEntry, InventoryItem, SnapshotError, StoreError, keys};
use tenantops_core::backup::ManifestEntry;
use tenantops_core::restore::{
    self as plan, Action, Blocker, DiffBase, LatestBackup, Observed, TargetStatus,
};
use tenantops_core::{Counters, Outcome, ReasonCode, RestoreId};

use crate::job::{Deps, Job, Report, Stop};
use crate::preview_cross::{self, Across};

/// Items planned at once (each reads a pointer and up to two snapshots).
const CONCURRENCY: usize = 8;

/// What every item's plan reads besides its own snapshots.
struct Inputs<'a> {
    deps: &'a Deps,
    lease: ItemLease<'a>,
    record: &'a RestoreRecord,
    /// The last inventory of each type met so far, by object id.
    inventory: HashMap<String, HashMap<String, InventoryItem>>,
    groups: HashSet<String>,
    filters: HashSet<String>,
    high_risk_enabled: bool,
    /// A restore into another tenant: both tenants' caches of targets.
    across: Option<Across>,
}

/// What the items planned so far add up to.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Totals {
    count: u32,
    summary: PlanSummary,
    blockers: BTreeSet<Blocker>,
    high_risk_items: u32,
}

/// Where a preview stands between invocations (the checkpoint's state): small, whatever the
/// set's size.
#[derive(Debug, Serialize, Deserialize)]
struct Resume {
    /// The manifest entry's sort key the next page starts after.
    after: String,
    /// The inventory stamp the first invocation read before anything else (see below).
    inventory_version: u64,
    totals: Totals,
}

pub async fn preview(job: Job<'_>) -> Result<Report, Stop> {
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
    if record.preview_run_id != Some(run.id) {
        return Err(Stop::Fail(ReasonCode::RestoreNotFound));
    }
    if record.status != RestoreStatus::Previewing {
        // A redelivery after the preview was finished: it stands.
        return Ok(report(&record));
    }
    // The backup set's tenant; the run's own is the destination.
    let source = record.source_tenant_id.unwrap_or(tenant);
    let lease = ItemLease {
        workspace: ws,
        tenant,
        restore,
        run: run.id,
        owner,
    };
    let resume: Option<Resume> = job
        .resumed()
        .map(|state| {
            serde_json::from_value(state.clone()).map_err(|e| {
                tracing::error!(error = %e, "the preview's checkpoint does not parse");
                Stop::Fail(ReasonCode::Internal)
            })
        })
        .transpose()?;
    // The stamp first: an inventory write after this read moves it, so the preview can never
    // be executed on an inventory newer than the one it reads below. A resumed preview keeps
    // the first invocation's stamp, older than anything any invocation read.
    let inventory_version = match &resume {
        Some(r) => r.inventory_version,
        None => deps.store.inventory_version(ws, tenant).await?,
    };
    let set = deps
        .store
        .backup_set(ws, source, record.backup_set_id)
        .await?
        .ok_or(Stop::Fail(ReasonCode::RestoreBackupSetNotFound))?;
    let selected: Option<HashMap<(String, String), u32>> = record.selection.as_ref().map(|s| {
        s.iter()
            .enumerate()
            .map(|(i, e)| ((e.object_type.clone(), e.object_id.clone()), i as u32))
            .collect()
    });
    if resume.is_none() {
        job.progress(Counters {
            total: selected
                .as_ref()
                .map_or(u64::from(set.object_count), |s| s.len() as u64),
            ..Default::default()
        })
        .await?;
    }

    let mut inputs = Inputs {
        deps,
        lease,
        record: &record,
        inventory: HashMap::new(),
        groups: deps
            .store
            .directory(keys::groups_of(ws, tenant))
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect(),
        filters: deps
            .store
            .inventory(ws, tenant, "assignmentFilters")
            .await?
            .into_iter()
            .filter(|f| !f.deleted)
            .map(|f| f.object_id)
            .collect(),
        high_risk_enabled: deps
            .store
            .get_workspace(ws)
            .await?
            .is_some_and(|w| w.settings.restore_high_risk),
        across: match record.source_tenant_id {
            Some(from) => Some(preview_cross::load(deps, ws, from, tenant).await?),
            None => None,
        },
    };

    let (mut totals, mut after) = match resume {
        Some(r) => (r.totals, Some(r.after)),
        None => (Totals::default(), None),
    };
    loop {
        let page = deps
            .store
            .manifest_entries(ws, source, record.backup_set_id, PAGE, after)
            .await?;
        let entries: Vec<(u32, ManifestEntry)> = page
            .entries
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| match &selected {
                None => Some((totals.count + i as u32, e)),
                Some(s) => s
                    .get(&(e.object_type.clone(), e.object_id.clone()))
                    .map(|index| (*index, e)),
            })
            .collect();
        for (_, e) in &entries {
            if !inputs.inventory.contains_key(&e.object_type) {
                let items = deps.store.inventory(ws, tenant, &e.object_type).await?;
                inputs.inventory.insert(
                    e.object_type.clone(),
                    items
                        .into_iter()
                        .map(|i| (i.object_id.clone(), i))
                        .collect(),
                );
            }
        }
        let inputs_ref = &inputs;
        let items: Vec<RestoreItem> = stream::iter(entries)
            .map(|(index, e)| plan_item(inputs_ref, index, e))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        deps.store
            .write_preview_items(&inputs.lease, &items)
            .await
            .map_err(lost_or_failed)?;
        for item in &items {
            add(&mut totals, item);
        }
        let n = items.len() as u64;
        if n > 0 {
            job.progress(Counters {
                processed: n,
                succeeded: n,
                ..Default::default()
            })
            .await?;
        }
        let Some(next) = page.next else { break };
        if job.should_yield() {
            // At least one page per invocation, so the preview always moves on.
            let state = Resume {
                after: next,
                inventory_version,
                totals,
            };
            let state = serde_json::to_value(&state).map_err(|e| {
                tracing::error!(error = %e, "the preview's checkpoint does not serialize");
                Stop::Fail(ReasonCode::Internal)
            })?;
            tracing::info!("preview paused");
            return Err(job.pause(state).await);
        }
        after = Some(next);
    }
    if selected
        .as_ref()
        .is_some_and(|s| s.len() != totals.count as usize)
    {
        // The set lost objects since the start checked them (it is being expired).
        return Err(Stop::Fail(ReasonCode::RestoreItemsInvalid));
    }

    let now = Utc::now();
    let executable = totals.blockers.is_empty();
    let done = PreviewDone {
        item_count: totals.count,
        summary: totals.summary,
        blockers: totals.blockers.into_iter().collect(),
        high_risk_items: totals.high_risk_items,
        inventory_version,
        now,
    };
    // Each tenant's log records the preview: a restore into another tenant's source too.
    let audits: Vec<AuditEntry> = std::iter::once(tenant)
        .chain(record.source_tenant_id)
        .map(|logged| AuditEntry {
            id: ulid::Ulid::new(),
            workspace_id: ws,
            tenant_id: Some(logged),
            actor: record.created_by.to_string(),
            action: "restore.previewed".into(),
            target: restore.to_string(),
            before: None,
            after: Some(json!({
                "backup_set_id": record.backup_set_id,
                "source_tenant_id": source,
                "destination_tenant_id": tenant,
                "items": done.item_count,
                "summary": done.summary,
                "executable": executable,
                "blockers": done.blockers,
                "run_id": run.id,
            })),
            at: now,
        })
        .collect();
    deps.store
        .finish_preview(&inputs.lease, &done, &audits)
        .await
        .map_err(lost_or_failed)?;
    let finished = RestoreRecord {
        status: RestoreStatus::Previewed,
        item_count: done.item_count,
        summary: done.summary,
        executable: done.blockers.is_empty(),
        blockers: done.blockers,
        high_risk_items: done.high_risk_items,
        ..record.clone()
    };
    Ok(report(&finished))
}

/// The run's report: the plan in brief (the items are the restore's).
fn report(record: &RestoreRecord) -> Report {
    Report {
        outcome: Outcome::Succeeded,
        // Counters already moved page by page.
        counters: Counters::default(),
        failures: Vec::new(),
        result: Some(json!({
            "restore_id": record.restore_id,
            "backup_set_id": record.backup_set_id,
            "items": record.item_count,
            "summary": record.summary,
            "executable": record.executable,
            "blockers": record.blockers,
        })),
    }
}

fn add(t: &mut Totals, item: &RestoreItem) {
    t.count += 1;
    match item.action {
        Action::Create => t.summary.create += 1,
        Action::Update => t.summary.update += 1,
        Action::SkipUnchanged => t.summary.skip_unchanged += 1,
    }
    t.summary.unresolved_targets += item
        .targets
        .iter()
        .filter(|x| x.status == TargetStatus::Unresolved)
        .count() as u32;
    if !item.blockers.is_empty() {
        t.summary.blocked_items += 1;
    }
    t.blockers.extend(item.blockers.iter().copied());
    let policy = plan::type_policy(&item.object_type, true);
    if policy.high_risk && item.action != Action::SkipUnchanged {
        t.high_risk_items += 1;
    }
}

/// `lastModifiedDateTime` (or Conditional Access's `modifiedDateTime`) of inventory metadata.
fn last_modified(meta: &Value) -> Option<DateTime<Utc>> {
    meta.get("lastModifiedDateTime")
        .or_else(|| meta.get("modifiedDateTime"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// A refused write means the lease (or the restore) is no longer this attempt's.
fn lost_or_failed(e: StoreError) -> Stop {
    match e {
        StoreError::TransitionRefused => {
            tracing::warn!("the preview's lease or restore is no longer ours");
            Stop::Fail(ReasonCode::RunStale)
        }
        other => Stop::from(other),
    }
}

fn snapshot_failed(e: SnapshotError) -> Stop {
    tracing::error!(error = %e, "could not read or store a snapshot for a preview");
    Stop::Fail(ReasonCode::RestoreSnapshotMissing)
}

async fn read_json(deps: &Deps, key: &str) -> Result<Value, Stop> {
    let bytes = deps.snapshots.get(key).await.map_err(snapshot_failed)?;
    serde_json::from_slice(&bytes).map_err(|_| Stop::Fail(ReasonCode::RestoreSnapshotMissing))
}

/// The plan of one manifest entry.
async fn plan_item(
    inputs: &Inputs<'_>,
    index: u32,
    entry: ManifestEntry,
) -> Result<RestoreItem, Stop> {
    let deps = inputs.deps;
    let (ws, tenant) = (inputs.record.workspace_id, inputs.record.tenant_id);
    let of_type = inputs.inventory.get(&entry.object_type);
    let (action, diff_base, diff, targets) = match &inputs.across {
        Some(across) => {
            let snapshot = read_json(deps, &entry.snapshot_key).await?;
            let targets = across.targets(&entry, &snapshot, &inputs.record.mapping);
            let diff = plan::diff(&json!({}), &snapshot);
            (Action::Create, DiffBase::None, diff, targets)
        }
        None => {
            let (action, diff_base, diff) = plan_in_place(inputs, of_type, &entry).await?;
            let targets = plan::resolve_targets(
                &entry.assignments,
                &|g| inputs.groups.contains(g),
                &|f| inputs.filters.contains(f),
                &inputs.record.mapping,
            );
            (action, diff_base, diff, targets)
        }
    };
    let (inline, diff_truncated) = plan::inline_diff(&diff);
    let diff_key = if diff_truncated {
        let key = restore_diff_key(ws, tenant, inputs.record.restore_id, index);
        let bytes = serde_json::to_vec(&diff).map_err(|_| Stop::Fail(ReasonCode::Internal))?;
        deps.snapshots
            .put_if_absent(&key, bytes)
            .await
            .map_err(snapshot_failed)?;
        Some(key)
    } else {
        None
    };
    let policy = plan::type_policy(&entry.object_type, true);
    let blockers = plan::blockers_of(policy, inputs.high_risk_enabled, action, &targets);
    let preexisting_same_name = of_type
        .map(|m| {
            m.values()
                .filter(|i| !i.deleted && i.name == entry.name)
                .map(|i| i.object_id.clone())
                .collect()
        })
        .unwrap_or_default();
    Ok(RestoreItem {
        index,
        object_type: entry.object_type.clone(),
        object_id: entry.object_id.clone(),
        name: entry.name.clone(),
        hash: entry.hash.clone(),
        snapshot_key: entry.snapshot_key.clone(),
        action,
        diff_base,
        diff: inline,
        diff_truncated,
        diff_key,
        targets,
        blockers,
        preexisting_same_name,
        status: ItemStatus::Pending,
        owner: None,
        attempts: 0,
        written_id: None,
        step: None,
        failure: None,
    })
}

/// The action and diff of an object restored into its own tenant.
async fn plan_in_place(
    inputs: &Inputs<'_>,
    of_type: Option<&HashMap<String, InventoryItem>>,
    entry: &ManifestEntry,
) -> Result<(Action, DiffBase, Vec<plan::FieldChange>), Stop> {
    let deps = inputs.deps;
    let (ws, tenant) = (inputs.record.workspace_id, inputs.record.tenant_id);
    let seen = of_type.and_then(|m| m.get(&entry.object_id));
    let observed = seen.map(|i| Observed {
        deleted: i.deleted,
        last_modified: last_modified(&i.meta),
    });
    let latest = deps
        .store
        .latest_snapshot(ws, tenant, &entry.object_type, &entry.object_id)
        .await?;
    let latest_plan = latest.as_ref().map(|l| LatestBackup {
        hash: l.hash.clone(),
        backed_up_at: l.backed_up_at,
    });
    let action = plan::decide_action(&entry.hash, observed.as_ref(), latest_plan.as_ref());
    let diff_base = plan::diff_base(action, observed.as_ref(), latest_plan.as_ref());
    // An unchanged object's diff is empty without reading anything.
    let diff = match (diff_base, &latest, seen) {
        (DiffBase::LatestBackup, Some(l), _) if l.hash == entry.hash => Vec::new(),
        (DiffBase::LatestBackup, Some(l), _) => {
            let snapshot = read_json(deps, &entry.snapshot_key).await?;
            let base = read_json(deps, &l.snapshot_key).await?;
            plan::diff(&base, &snapshot)
        }
        (DiffBase::Inventory, _, Some(i)) => {
            let snapshot = read_json(deps, &entry.snapshot_key).await?;
            let (before, after) = plan::comparable_to_meta(&snapshot, &i.meta);
            plan::diff(&before, &after)
        }
        _ => {
            let snapshot = read_json(deps, &entry.snapshot_key).await?;
            plan::diff(&json!({}), &snapshot)
        }
    };
    Ok((action, diff_base, diff))
}
