//! Batches (see `tenantops_core::batch`): the batch item in its workspace's partition, one
//! child item per tenant under the batch, and the child starts.
//!
//! Creating a batch is one transaction (membership, the batch, an `Idempotency-Key` lock,
//! the audit entry), whatever the number of tenants: the children are started from the
//! table's stream by the relay. Each child start is the ordinary start transaction with two
//! more conditions: the batch is not cancelled, and the tenant's child item does not exist
//! yet (it is written in the same transaction). A child is therefore started at most once per
//! batch and tenant however often the relay is retried, and a run the batch started always
//! has its child item.

use chrono::{DateTime, Utc};
use tenantops_core::batch::{Batch, Child, ChildOrigin};
use tenantops_core::{
    BatchId, LockKind, OperationParams, ReasonCode, Run, RunId, RunStatus, TenantId, WorkspaceId,
};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{
    Item, from_item, from_items, keyed_item, number_attr, string_attr, string_of, time_attr,
};
use crate::keys;
use crate::runs::{FINISH_CODE, IDEMPOTENCY_WINDOW, StartRun, Started, lock_kind_name};
use crate::table::{Query, Store};
use crate::transactions::{
    MemberGuard, Precondition, Rejection, WriteError, failed_at, guard_rejection,
};

/// A caller's `Idempotency-Key` for a batch: its lock's identity and what the request was.
#[derive(Debug, Clone, Copy)]
pub struct BatchKey<'a> {
    pub identity: &'a str,
    pub fingerprint: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BatchCreated {
    Created,
    /// The key was used for this very request before: its batch.
    Replayed(BatchId),
}

/// A restore batch's params: one tenant's backup set (the baseline) restored into each
/// targeted tenant, every object of it or the `items` chosen, with one `mapping` for all
/// (groups are matched by display name in each tenant; an id is only meaningful to `drop`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineRestore {
    pub source_tenant_id: TenantId,
    pub backup_set_id: tenantops_core::BackupSetId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<crate::restores::SelectedItem>>,
    #[serde(default)]
    pub mapping: tenantops_core::restore::Mapping,
}

/// What starting one tenant's child came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildStart {
    /// Started, or attached to the run of the same identity that was active.
    Recorded(Child),
    /// The tenant's child was recorded before (a retried relay).
    AlreadyRecorded,
    /// The batch was cancelled: no more children.
    BatchCancelled,
}

/// What firing a workspace schedule's slot as a batch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotBatch {
    /// The batch exists and the schedule moved on; the relay starts its children.
    Created,
    /// The slot's batch existed already: nothing was written.
    AlreadyFired,
    /// The schedule is not as the tick read it (another tick moved it, or a change).
    Lost,
}

/// A child's run as the batch view reads it: only what the counts and the failure list need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ChildRun {
    pub id: RunId,
    pub status: RunStatus,
    pub outcome: tenantops_core::Outcome,
    /// The first failure's reason code of a failed run.
    #[serde(default)]
    pub finish_code: Option<String>,
}

/// The restore a restore run fills or executes.
fn restore_of(run: &Run) -> Option<tenantops_core::RestoreId> {
    run.context.restore_id.as_deref()?.parse().ok()
}

/// Children items of a starting batch, before its runs exist: the child's record.
fn child_item(batch: BatchId, child: &Child) -> Result<Item, StoreError> {
    keyed_item(
        "batch child",
        child,
        &keys::batch_child(batch, child.tenant_id),
    )
}

impl Store {
    /// Creates `batch` with its audit entry, if `guard` holds, in one transaction; with a key,
    /// its lock too: a replay of the same request answers the batch it created, another
    /// request under the same key is [`Rejection::IdempotencyKeyReused`].
    pub async fn create_batch(
        &self,
        batch: &Batch,
        guard: MemberGuard<'_>,
        key: Option<BatchKey<'_>>,
        audit: &AuditEntry,
    ) -> Result<BatchCreated, WriteError> {
        let ws = batch.workspace_id;
        let mut items = vec![self.member_check(ws, guard)?];
        let item = keyed_item("batch", batch, &keys::batch(ws, batch.id))?;
        items.push(self.put_new(item, false)?);
        let lock_at = items.len();
        if let Some(k) = key {
            let mut lock = keys::lock(k.identity).to_item();
            lock.insert("batch_id".into(), string_attr(batch.id.to_string()));
            lock.insert(
                "kind".into(),
                string_attr(lock_kind_name(LockKind::Idempotent)),
            );
            lock.insert("fingerprint".into(), string_attr(k.fingerprint));
            let expires = batch.created_at + IDEMPOTENCY_WINDOW;
            lock.insert(keys::TTL.into(), number_attr(expires.timestamp()));
            items.push(self.put_new(lock, true)?);
        }
        items.push(self.put_audit(audit)?);
        let Some(reasons) = self.transact(items).await? else {
            return Ok(BatchCreated::Created);
        };
        if let Some(r) = guard_rejection(&reasons, Some(0), None) {
            return Err(WriteError::Rejected(r));
        }
        let held = key.and_then(|k| {
            let old = failed_at(&reasons, lock_at)?.item()?;
            Some((k, old.clone()))
        });
        if let Some((k, old)) = held {
            let same = string_of(&old, "fingerprint").map(String::as_str) == Some(k.fingerprint);
            return match string_of(&old, "batch_id").and_then(|id| id.parse().ok()) {
                Some(id) if same => Ok(BatchCreated::Replayed(id)),
                _ => Err(WriteError::Rejected(Rejection::IdempotencyKeyReused)),
            };
        }
        Err(WriteError::Rejected(Rejection::Conflict))
    }

    pub async fn get_batch(
        &self,
        ws: WorkspaceId,
        id: BatchId,
    ) -> Result<Option<Batch>, StoreError> {
        self.get_as("batch", &keys::batch(ws, id)).await
    }

    /// A batch from its stream image.
    pub fn batch_from_image(image: Item) -> Result<Batch, StoreError> {
        from_item("batch", image)
    }

    /// Every child recorded so far, read consistently from the batch's own partition.
    pub async fn batch_children(&self, id: BatchId) -> Result<Vec<Child>, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.eq(keys::PK, string_attr(keys::batch_children(id)));
        let items = self
            .query_all(Query::new(None, cond, p).consistent())
            .await?;
        from_items("batch child", items)
    }

    /// The children's runs (status, outcome, first failure code), read consistently, 100 to
    /// a `BatchGetItem`.
    pub async fn child_runs(&self, ids: &[RunId]) -> Result<Vec<ChildRun>, StoreError> {
        let keys: Vec<keys::Key> = ids.iter().map(|id| keys::run(*id)).collect();
        let items = self
            .get_all_consistently(&keys, &["id", "status", "outcome", FINISH_CODE])
            .await?;
        from_items("child run", items)
    }

    /// Starts `run` as `batch`'s child in its tenant (see the module docs). `preconditions`
    /// are the type's own (a connection check's connection), refused as `missing`.
    pub async fn start_child(
        &self,
        batch: &Batch,
        run: &Run,
        lock: LockKind,
        fingerprint: &str,
        preconditions: Vec<(Precondition, ReasonCode)>,
    ) -> Result<ChildStart, StoreError> {
        let tenant = run.tenant_id;
        let roles = batch.operation.spec().start_capability.roles();
        // A user's batch starts what its creator may still start; the scheduler's is a
        // system start, as its tenant schedules' are.
        let guard = match &batch.created_by {
            tenantops_core::Initiator::User(user) => Some(MemberGuard {
                user,
                roles: &roles,
            }),
            tenantops_core::Initiator::Scheduler => None,
        };
        let mut p = Placeholders::default();
        let open = format!(
            "attribute_exists({}) AND {}",
            p.name(keys::PK),
            p.absent("cancelled_at")
        );
        let not_cancelled =
            self.condition_check(keys::batch(batch.workspace_id, batch.id), open, p)?;
        let started = Child {
            tenant_id: tenant,
            origin: ChildOrigin::Started,
            run_id: Some(run.id),
            reason: None,
            restore_id: restore_of(run),
        };
        let recorded = self.put_new(child_item(batch.id, &started)?, false)?;
        let mut all = vec![
            Precondition::new(not_cancelled),
            Precondition::new(recorded),
        ];
        let codes: Vec<ReasonCode> = preconditions.iter().map(|(_, code)| *code).collect();
        all.extend(preconditions.into_iter().map(|(p, _)| p));
        let result = self
            .start_run(StartRun {
                run,
                lock,
                fresh: true,
                fingerprint,
                guard,
                preconditions: &all,
                quota: None,
            })
            .await;
        let refused = |reason: ReasonCode| Child {
            tenant_id: tenant,
            origin: ChildOrigin::Refused,
            run_id: None,
            reason: Some(reason),
            restore_id: None,
        };
        let child = match result {
            Ok(Started::Created) => return Ok(ChildStart::Recorded(started)),
            Ok(Started::Deduplicated(existing)) => Child {
                tenant_id: tenant,
                origin: ChildOrigin::Attached,
                run_id: Some(existing.id),
                reason: None,
                restore_id: restore_of(&existing),
            },
            Err(WriteError::Rejected(rejection)) => match rejection {
                Rejection::Precondition(0) => return Ok(ChildStart::BatchCancelled),
                Rejection::Precondition(1) => return Ok(ChildStart::AlreadyRecorded),
                Rejection::Precondition(i) => {
                    refused(codes.get(i - 2).copied().unwrap_or(ReasonCode::Internal))
                }
                Rejection::TenantArchived => refused(ReasonCode::TenantArchived),
                Rejection::TenantNotFound => refused(ReasonCode::TenantNotFound),
                Rejection::NotMember | Rejection::MissingCapability(_) => {
                    refused(ReasonCode::AuthForbidden)
                }
                Rejection::QuotaExceeded { .. } => refused(ReasonCode::QuotaExceeded),
                _ => refused(ReasonCode::ConcurrentChange),
            },
            Err(WriteError::Store(e)) => return Err(e),
        };
        self.record_child(batch.id, child).await
    }

    /// Records an attached or refused child on its own, once: a retried relay that finds it
    /// recorded leaves it as it was.
    pub async fn record_child(
        &self,
        batch: BatchId,
        child: Child,
    ) -> Result<ChildStart, StoreError> {
        let mut p = Placeholders::default();
        let new = p.absent(keys::PK);
        Ok(if self.put_if(child_item(batch, &child)?, new, p).await? {
            ChildStart::Recorded(child)
        } else {
            ChildStart::AlreadyRecorded
        })
    }

    /// Fires a workspace schedule's slot: the schedule's advance (as the tick read it), the
    /// slot's strict lock (`identity`), the batch and its audit entry, in one transaction.
    /// Of concurrent ticks one moves the schedule; a slot that fired before never fires again.
    pub async fn create_scheduled_batch(
        &self,
        batch: &Batch,
        advance: Precondition,
        identity: &str,
        audit: &AuditEntry,
    ) -> Result<SlotBatch, StoreError> {
        let mut lock = keys::lock(identity).to_item();
        lock.insert("batch_id".into(), string_attr(batch.id.to_string()));
        lock.insert("kind".into(), string_attr(lock_kind_name(LockKind::Strict)));
        let item = keyed_item("batch", batch, &keys::batch(batch.workspace_id, batch.id))?;
        let items = vec![
            advance.0,
            self.put_new(lock, false)?,
            self.put_new(item, false)?,
            self.put_audit(audit)?,
        ];
        let Some(reasons) = self.transact(items).await? else {
            return Ok(SlotBatch::Created);
        };
        Ok(if failed_at(&reasons, 0).is_some() {
            SlotBatch::Lost
        } else if failed_at(&reasons, 1).is_some() {
            SlotBatch::AlreadyFired
        } else {
            return Err(crate::transactions::contention());
        })
    }

    /// Confirms a restore batch: `execution` (the batch of its restores' executions) is
    /// created, and linked from `preview`, if the token's hash is the batch's, it was not
    /// confirmed or cancelled before, and `guard` holds; with `audit`, in one transaction.
    /// `Rejection::Conflict` if the batch's condition failed (read it to say why).
    pub async fn execute_batch(
        &self,
        preview: &Batch,
        execution: &Batch,
        token_hash: &str,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let ws = preview.workspace_id;
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {} AND {}",
            p.eq("token_hash", string_attr(token_hash)),
            p.absent("execution_id"),
            p.absent("cancelled_at")
        );
        let update = format!(
            "SET {} = {}",
            p.name("execution_id"),
            p.value(string_attr(execution.id.to_string()))
        );
        let item = keyed_item("batch", execution, &keys::batch(ws, execution.id))?;
        let items = vec![
            self.member_check(ws, guard)?,
            self.tx_update(&keys::batch(ws, preview.id), update, cond, p, false)?,
            self.put_new(item, false)?,
            self.put_audit(audit)?,
        ];
        crate::transactions::committed_guarded(
            self.transact(items).await?,
            None,
            Rejection::Conflict,
        )
    }

    /// Marks the batch cancelled with `audit`, once, if `guard` holds: no child starts after
    /// it. `Rejection::Conflict` if it was cancelled already (or does not exist).
    pub async fn cancel_batch(
        &self,
        batch: &Batch,
        now: DateTime<Utc>,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "attribute_exists({}) AND {}",
            p.name(keys::PK),
            p.absent("cancelled_at")
        );
        let update = format!(
            "SET {} = {}",
            p.name("cancelled_at"),
            p.value(time_attr(now))
        );
        let items = vec![
            self.member_check(batch.workspace_id, guard)?,
            self.tx_update(
                &keys::batch(batch.workspace_id, batch.id),
                update,
                cond,
                p,
                false,
            )?,
            self.put_audit(audit)?,
        ];
        crate::transactions::committed_guarded(
            self.transact(items).await?,
            None,
            Rejection::Conflict,
        )
    }

    /// The preconditions a child start of `params` needs, each with the reason a refused one
    /// records: a connection check's connection must exist.
    pub fn child_preconditions(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        params: &OperationParams,
    ) -> Result<Vec<(Precondition, ReasonCode)>, StoreError> {
        Ok(match params {
            OperationParams::ProviderConnectionVerify(p) => vec![(
                self.connection_exists(ws, tenant, &p.connection_id)?,
                ReasonCode::ConnectionNotFound,
            )],
            _ => Vec::new(),
        })
    }
}
