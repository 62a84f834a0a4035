//! The DynamoDB store. Correctness lives in condition expressions: nothing here reads an
//! item to decide whether to write it.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::identity::lock_kind_of;
use tenantops_core::state::TransitionKind;
use tenantops_core::{
    Counters, LockKind, OperationType, Outcome, Role, Run, RunId, RunStatus, TenantId, Transition,
    UserId, WorkspaceId,
};

use crate::error::StoreError;
use crate::expr::{Placeholders, RunChanges};
use crate::keys::{self, Key};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long a finished unique-per-click run's lock answers `Idempotency-Key` replays.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);
/// How long a queued run may wait for its first claim before the reaper suspects its message
/// was lost and dispatches it again (once; a second sighting fails it `run.stale`).
pub const DISPATCH_DEADLINE: Duration = Duration::minutes(15);
/// How long a running run may sit past its lease (or past its hand-back's resume time)
/// before the reaper fails it `run.stale`: longer than the work queue's visibility timeout
/// (900 s), so a crashed worker's message is redelivered and re-claimed first.
pub const STALE_GRACE: Duration = Duration::minutes(20);
/// Attempts at a transaction that collides with concurrent ones before giving up.
const CONFLICT_ATTEMPTS: u32 = 8;
/// Index queries one list request may make to fill a page through filters.
const MAX_QUERY_ROUNDS: usize = 8;

#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

/// The caller must be a member of the run's workspace with one of `roles`.
#[derive(Debug, Clone, Copy)]
pub struct MemberGuard<'a> {
    pub user: &'a UserId,
    pub roles: &'a [Role],
}

/// One start: the new run, its lock, and who must be allowed to start it.
#[derive(Debug, Clone, Copy)]
pub struct StartRun<'a> {
    pub run: &'a Run,
    pub lock: LockKind,
    /// For idempotency locks: what the request looked like (see `request_fingerprint`).
    pub fingerprint: &'a str,
    /// `None` for system starts (the scheduler).
    pub guard: Option<MemberGuard<'a>>,
    pub audit: &'a AuditEntry,
    /// The initiator's "queued" notification, written with the run.
    pub notification: Option<&'a crate::tenant_data::Notification>,
    /// What else must hold for the run to exist (the schedule a backup names, a restore's
    /// confirmed preview); checked, and possibly updated, in the same transaction.
    pub preconditions: &'a [Precondition],
}

/// One more item of a start transaction, built by the store module that owns its key. If its
/// condition fails, the start is refused with [`Rejection::Precondition`] and its index.
#[derive(Debug, Clone)]
pub struct Precondition(pub(crate) TransactWriteItem);

#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    Created,
    /// The identity already had a run; this is it, as of its last transition.
    Deduplicated(Box<Run>),
}

/// Why a conditional write was refused, read from its cancellation reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NotMember,
    MissingCapability(Role),
    TenantNotFound,
    TenantArchived,
    /// The `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
    /// The Entra tenant already belongs to a workspace.
    AlreadyClaimed,
    /// The item changed since it was read (optimistic check failed).
    Conflict,
    /// The change would leave the workspace without an owner.
    LastOwner,
    /// The start's precondition at this index did not hold.
    Precondition(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write rejected: {0:?}")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub workspace_id: WorkspaceId,
    pub entra_tenant_id: String,
    pub display_name: String,
    pub status: TenantStatus,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: ulid::Ulid,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(with = "tenantops_core::time")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    pub workspace: WorkspaceId,
    pub tenant: Option<TenantId>,
    /// Only these types; `None` means every type.
    pub types: Option<Vec<OperationType>>,
    pub status: Option<RunStatus>,
    pub active: Option<bool>,
    pub limit: usize,
    /// Continue after this run (the previous page's last).
    pub after: Option<RunId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub items: Vec<Run>,
    pub next: Option<RunId>,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn to_item<T: Serialize>(what: &'static str, v: &T) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(v).map_err(|e| StoreError::mapping(what, e))?;
    // Absent rather than NULL, so `if_not_exists` and `attribute_exists` mean what they say.
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    Ok(item)
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    item: Item,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::mapping(what, e))
}

pub(crate) fn with_key(mut item: Item, key: &Key) -> Item {
    item.extend(key.to_item());
    item
}

fn status_value(status: RunStatus) -> AttributeValue {
    s(status.as_str())
}

pub(crate) fn ts(at: DateTime<Utc>) -> AttributeValue {
    s(tenantops_core::time::format(at))
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn run_item(&self, run: &Run) -> Result<Item, StoreError> {
        let mut item = with_key(to_item("run", run)?, &keys::run(run.id));
        item.insert(
            keys::GSI1_PK.into(),
            s(keys::runs_of_workspace(run.workspace_id)),
        );
        item.insert(keys::GSI1_SK.into(), s(keys::run_sort(run.id)));
        item.insert(
            keys::GSI2_PK.into(),
            s(keys::runs_of_tenant(run.workspace_id, run.tenant_id)),
        );
        item.insert(keys::GSI2_SK.into(), s(keys::run_sort(run.id)));
        if let Some(deadline) = stale_after(run) {
            item.insert(
                keys::GSI3_PK.into(),
                s(keys::active_runs(keys::active_shard(run.id))),
            );
            item.insert(keys::GSI3_SK.into(), s(keys::active_sort(deadline, run.id)));
        }
        Ok(item)
    }

    fn lock_item(&self, run: &Run, kind: LockKind, fingerprint: &str) -> Result<Item, StoreError> {
        let mut item = keys::lock(&run.identity).to_item();
        item.insert("run_id".into(), s(run.id.to_string()));
        item.insert("kind".into(), s(lock_kind_name(kind)));
        item.insert("fingerprint".into(), s(fingerprint));
        item.insert("run".into(), AttributeValue::M(to_item("run", run)?));
        Ok(item)
    }

    /// Creates a run and its identity lock in one transaction that also checks the caller's
    /// membership and the tenant. A conflicting identity answers with the existing run, from
    /// the failed condition's `ALL_OLD` image: one DynamoDB call either way.
    pub async fn start_run(&self, start: StartRun<'_>) -> Result<Started, WriteError> {
        let run = start.run;
        let mut items = Vec::with_capacity(5);
        let mut guard_at = None;
        if let Some(guard) = start.guard {
            guard_at = Some(items.len());
            items.push(self.member_check(run.workspace_id, guard)?);
        }
        let tenant_at = items.len();
        items.push(self.tenant_active_check(run.workspace_id, run.tenant_id)?);
        let preconditions_at = items.len();
        items.extend(start.preconditions.iter().map(|p| p.0.clone()));
        items.push(self.put_new(self.run_item(run)?, false)?);
        let lock_at = items.len();
        items.push(self.put_new(self.lock_item(run, start.lock, start.fingerprint)?, true)?);
        items.push(self.put_audit(start.audit)?);
        if let Some(n) = start.notification {
            items.push(self.put_new(crate::tenant_data::notification_item(n)?, false)?);
        }

        let reasons = match self.transact("TransactWriteItems", items).await? {
            None => return Ok(Started::Created),
            Some(reasons) => reasons,
        };
        let failed = |i: usize| failed_at(&reasons, i);
        if let Some(reason) = guard_at.and_then(failed) {
            return Err(WriteError::Rejected(member_rejection(reason)));
        }
        if let Some(reason) = failed(tenant_at) {
            return Err(WriteError::Rejected(tenant_rejection(reason)));
        }
        let lock_failure = failed(lock_at).map(|r| r.item().cloned().unwrap_or_default());
        // A key names one request: another request under the same key is refused as such,
        // whatever else is wrong with it. Route preconditions come next (a restore's token is
        // checked even while its run is active), and only then is a held lock a dedupe hit.
        if let Some(old) = &lock_failure {
            let kind = old
                .get("kind")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str);
            let their_fingerprint = old.get("fingerprint").and_then(|v| v.as_s().ok());
            if kind == Some(lock_kind_name(LockKind::Idempotent))
                && their_fingerprint.map(String::as_str) != Some(start.fingerprint)
            {
                return Err(WriteError::Rejected(Rejection::IdempotencyKeyReused));
            }
        }
        if let Some(i) =
            (0..start.preconditions.len()).find(|i| failed(preconditions_at + i).is_some())
        {
            return Err(WriteError::Rejected(Rejection::Precondition(i)));
        }
        if let Some(old) = lock_failure {
            let existing = match old.get("run") {
                Some(AttributeValue::M(m)) => from_item::<Run>("lock run copy", m.clone())?,
                _ => {
                    return Err(StoreError::Mapping {
                        what: "lock run copy",
                        source: serde_dynamo::Error::from(MissingRunCopy),
                    }
                    .into());
                }
            };
            return Ok(Started::Deduplicated(Box::new(existing)));
        }
        Err(StoreError::TransitionRefused.into())
    }

    /// Newest-first query of one partition, filtered, filling up to `limit` items in at most
    /// `MAX_QUERY_ROUNDS` index queries. Returns the items and the last evaluated key, which
    /// is where the next page starts.
    pub(crate) async fn query_newest_first(
        &self,
        index: Option<&str>,
        key_cond: String,
        filters: Vec<String>,
        p: Placeholders,
        limit: usize,
        mut start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let mut items = Vec::new();
        for _ in 0..MAX_QUERY_ROUNDS {
            let want = limit.saturating_sub(items.len()).max(1);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(&key_cond)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(p.names())
                .set_expression_attribute_values(p.values())
                .scan_index_forward(false)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        Ok((items, start))
    }

    /// The caller is a member of `ws` with one of the guard's roles (old image on failure).
    pub(crate) fn member_check(
        &self,
        ws: WorkspaceId,
        guard: MemberGuard<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let roles: Vec<String> = guard.roles.iter().map(|r| p.value(s(r.as_str()))).collect();
        let pk = p.name(keys::PK);
        let cond = if roles.is_empty() {
            format!("attribute_exists({pk}) AND attribute_not_exists({pk})")
        } else {
            format!(
                "attribute_exists({pk}) AND {} IN ({})",
                p.name("role"),
                roles.join(", ")
            )
        };
        self.condition_check(keys::member(ws, guard.user), cond, p)
    }

    /// The tenant exists in `ws` and is active (old image on failure).
    pub(crate) fn tenant_active_check(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "attribute_exists({}) AND {} = {}",
            p.name(keys::PK),
            p.name("status"),
            p.value(s("active"))
        );
        self.condition_check(keys::tenant(ws, tenant), cond, p)
    }

    pub(crate) fn condition_check(
        &self,
        key: Key,
        cond: String,
        p: Placeholders,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key.to_item()))
                    .condition_expression(cond)
                    .set_expression_attribute_names(p.names())
                    .set_expression_attribute_values(p.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            )
            .build())
    }

    pub(crate) fn put_new(
        &self,
        item: Item,
        return_old: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!("attribute_not_exists({})", p.name(keys::PK));
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names());
        if return_old {
            put = put.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    pub(crate) fn put_audit(&self, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
        let item = with_key(
            to_item("audit entry", entry)?,
            &keys::audit(entry.workspace_id, entry.id),
        );
        self.put_new(item, false)
    }

    /// Runs a transaction. `Ok(None)`: committed. `Ok(Some(reasons))`: cancelled by a failed
    /// condition. Collisions with concurrent transactions are retried with jittered backoff.
    pub(crate) async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<CancellationReason>>, StoreError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            let reasons = match &err {
                SdkError::ServiceError(se) => match se.err() {
                    TransactWriteItemsError::TransactionCanceledException(tc) => {
                        Some(tc.cancellation_reasons().to_vec())
                    }
                    _ => None,
                },
                _ => None,
            };
            let conflict = match &reasons {
                Some(rs) => {
                    let failed = rs
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed"));
                    if failed {
                        return Ok(reasons);
                    }
                    rs.iter().any(|r| r.code() == Some("TransactionConflict"))
                }
                None => matches!(
                    &err,
                    SdkError::ServiceError(se)
                        if matches!(se.err(), TransactWriteItemsError::TransactionInProgressException(_))
                ),
            };
            if !conflict {
                return Err(StoreError::dynamo(operation, err));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(StoreError::Contention { operation })
    }

    /// Applies a state-machine transition with a conditional transaction on the run and its
    /// lock: the lock's run copy moves in step, and the terminal transition deletes a
    /// while-active lock (freeing the identity) or keeps strict and idempotency locks.
    pub async fn transition(&self, run: &Run, t: &Transition) -> Result<(), StoreError> {
        self.transition_as(run, None, t).await
    }

    /// A transition by the worker holding (or, for a claim, taking) the run's lease as
    /// `worker`: a claim records it, and every later transition requires it, so a worker
    /// whose lease expired and was re-claimed cannot move the run any more.
    pub async fn transition_as(
        &self,
        run: &Run,
        worker: Option<&str>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        self.transition_checked(run, worker, None, t).await
    }

    /// A transition that also requires what the reaper `seen` to still hold, so that it acts
    /// only on the run as it found it.
    pub(crate) async fn transition_checked(
        &self,
        run: &Run,
        worker: Option<&str>,
        seen: Option<Seen<'_>>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        let kind = lock_kind_of(run.operation);
        let (mut changes, mut lock_changes) = changes_of(t);
        if changes.is_empty() {
            return Ok(());
        }
        changes = active_index_changes(changes, run, t);
        if let (Some(w), TransitionKind::Claim) = (worker, t.kind()) {
            changes = changes.set(&["lease_owner"], s(w));
            lock_changes = lock_changes.set(&["lease_owner"], s(w));
        }
        let mut p = Placeholders::default();
        let update = changes.render(None, &mut p);
        let allowed: Vec<String> = t
            .kind()
            .allowed_from()
            .iter()
            .filter(|st| !(t.kind() == TransitionKind::Claim && **st == RunStatus::Running))
            .map(|st| p.value(status_value(*st)))
            .collect();
        let status = p.name("status");
        let mut cond = format!("{status} IN ({})", allowed.join(", "));
        if let Transition::Claim { now, .. } = t {
            // A running run may be re-claimed only once its lease has expired.
            cond = format!(
                "({cond}) OR ({status} = {} AND {} < {})",
                p.value(status_value(RunStatus::Running)),
                p.name("lease_expires_at"),
                p.value(ts(*now))
            );
        }
        if let (Some(w), false) = (worker, t.kind() == TransitionKind::Claim) {
            cond = format!("({cond}) AND {} = {}", p.name("lease_owner"), p.value(s(w)));
        }
        match seen {
            Some(Seen::Deadline(sk)) => {
                cond = format!(
                    "({cond}) AND {} = {}",
                    p.name(keys::GSI3_SK),
                    p.value(s(sk))
                );
            }
            Some(Seen::NoLiveLease(now)) => {
                let lease = p.name("lease_expires_at");
                cond = format!(
                    "({cond}) AND ({status} = {} OR attribute_not_exists({lease}) OR {lease} < {})",
                    p.value(status_value(RunStatus::Queued)),
                    p.value(ts(now)),
                );
            }
            None => {}
        }
        let run_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::run(run.id).to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .build()
            .map_err(build_error)?;

        let mut lp = Placeholders::default();
        let lock_cond = format!(
            "{} = {}",
            lp.name("run_id"),
            lp.value(s(run.id.to_string()))
        );
        let lock_key = keys::lock(&run.identity).to_item();
        let finishing = t.kind() == TransitionKind::Finish;
        let lock_item = if finishing && kind == LockKind::WhileActive {
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(lock_key))
                        .condition_expression(lock_cond)
                        .set_expression_attribute_names(lp.names())
                        .set_expression_attribute_values(lp.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build()
        } else {
            if let (true, LockKind::Idempotent, Transition::Finish { now, .. }) =
                (finishing, kind, t)
            {
                let expires = (*now + IDEMPOTENCY_WINDOW).timestamp();
                lock_changes =
                    lock_changes.set_top(keys::TTL, AttributeValue::N(expires.to_string()));
            }
            let update = lock_changes.render(Some("run"), &mut lp);
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(lock_key))
                        .update_expression(update)
                        .condition_expression(lock_cond)
                        .set_expression_attribute_names(lp.names())
                        .set_expression_attribute_values(lp.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build()
        };
        let items = vec![
            TransactWriteItem::builder().update(run_update).build(),
            lock_item,
        ];
        match self.transact("TransactWriteItems", items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::TransitionRefused),
        }
    }

    pub async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::run(id).to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.map(|i| from_item("run", i)).transpose()
    }

    /// A workspace's runs, newest first, from an index query (never a Scan).
    pub async fn list_runs(&self, q: &RunQuery) -> Result<RunPage, StoreError> {
        let (index, pk_attr, sk_attr, partition) = match q.tenant {
            Some(t) => (
                keys::GSI2,
                keys::GSI2_PK,
                keys::GSI2_SK,
                keys::runs_of_tenant(q.workspace, t),
            ),
            None => (
                keys::GSI1,
                keys::GSI1_PK,
                keys::GSI1_SK,
                keys::runs_of_workspace(q.workspace),
            ),
        };
        let mut p = Placeholders::default();
        let key_cond = format!("{} = {}", p.name(pk_attr), p.value(s(partition.clone())));
        let mut filters = Vec::new();
        if let Some(types) = &q.types {
            let vals: Vec<String> = types.iter().map(|t| p.value(s(t.as_str()))).collect();
            filters.push(format!("{} IN ({})", p.name("type"), vals.join(", ")));
        }
        if let Some(st) = q.status {
            filters.push(format!(
                "{} = {}",
                p.name("status"),
                p.value(status_value(st))
            ));
        }
        match q.active {
            Some(true) => filters.push(format!(
                "{} <> {}",
                p.name("status"),
                p.value(status_value(RunStatus::Completed))
            )),
            Some(false) => filters.push(format!(
                "{} = {}",
                p.name("status"),
                p.value(status_value(RunStatus::Completed))
            )),
            None => {}
        }
        let start = q.after.map(|after| {
            let mut k = keys::run(after).to_item();
            k.insert(pk_attr.into(), s(partition.clone()));
            k.insert(sk_attr.into(), s(keys::run_sort(after)));
            k
        });
        let (found, last) = self
            .query_newest_first(Some(index), key_cond, filters, p, q.limit, start)
            .await?;
        let items = found
            .into_iter()
            .map(|i| from_item::<Run>("run", i))
            .collect::<Result<Vec<_>, _>>()?;
        let next = last
            .and_then(|k| k.get(sk_attr).and_then(|v| v.as_s().ok()).cloned())
            .and_then(|id| id.parse().ok());
        Ok(RunPage { items, next })
    }
}

/// What a reaper's write restates of the run it saw.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seen<'a> {
    /// Its active-index sort key (deadline and id) is unchanged.
    Deadline(&'a str),
    /// No worker holds a live lease on it at this time (queued, or its lease has expired).
    NoLiveLease(DateTime<Utc>),
}

/// A failed membership check: no item means not a member; an item means the wrong role.
pub(crate) fn member_rejection(reason: &CancellationReason) -> Rejection {
    let role = reason
        .item()
        .and_then(|i| i.get("role"))
        .and_then(|v| v.as_s().ok())
        .and_then(|r| r.parse::<Role>().ok());
    match role {
        Some(role) => Rejection::MissingCapability(role),
        None => Rejection::NotMember,
    }
}

/// A failed tenant check: no item means no such tenant here; an item means archived.
pub(crate) fn tenant_rejection(reason: &CancellationReason) -> Rejection {
    if reason.item().is_some_and(|i| i.contains_key(keys::PK)) {
        Rejection::TenantArchived
    } else {
        Rejection::TenantNotFound
    }
}

/// The reason at `i` if it is a failed condition.
pub(crate) fn failed_at(reasons: &[CancellationReason], i: usize) -> Option<&CancellationReason> {
    reasons
        .get(i)
        .filter(|r| r.code() == Some("ConditionalCheckFailed"))
}

/// When an active run becomes stale (its GSI3 deadline): a queued run once its dispatch
/// deadline passed, a running one once its lease and the grace for redelivery passed.
/// `None` for a finished run, which leaves the index.
pub(crate) fn stale_after(run: &Run) -> Option<DateTime<Utc>> {
    match run.status {
        RunStatus::Queued => Some(run.created_at + DISPATCH_DEADLINE),
        RunStatus::Running => Some(run.lease_expires_at.unwrap_or(run.created_at) + STALE_GRACE),
        RunStatus::Completed => None,
    }
}

/// The run item's GSI3 changes (never the lock's copy): a claim and a hand-back move the
/// deadline, a finish leaves the index; progress and reports keep it.
fn active_index_changes(changes: RunChanges, run: &Run, t: &Transition) -> RunChanges {
    let deadline = match t {
        Transition::Claim { now, lease } => *now + *lease + STALE_GRACE,
        Transition::Yield { resume_at, .. } => *resume_at + STALE_GRACE,
        Transition::Finish { .. } => {
            return changes.remove_top(keys::GSI3_PK).remove_top(keys::GSI3_SK);
        }
        Transition::Progress { .. } | Transition::Report { .. } => return changes,
    };
    changes
        .set_top(
            keys::GSI3_PK,
            s(keys::active_runs(keys::active_shard(run.id))),
        )
        .set_top(keys::GSI3_SK, s(keys::active_sort(deadline, run.id)))
}

/// The run-item and lock-copy changes of a transition.
fn changes_of(t: &Transition) -> (RunChanges, RunChanges) {
    let c = match t {
        Transition::Claim { now, lease } => RunChanges::default()
            .set(&["status"], status_value(RunStatus::Running))
            .set_if_absent(&["started_at"], ts(*now))
            .set(&["lease_expires_at"], ts(*now + *lease))
            .increment(&["attempts"], 1)
            .set(
                &["counters"],
                serde_dynamo::to_attribute_value::<_, AttributeValue>(Counters::default())
                    .unwrap_or(AttributeValue::Null(true)),
            ),
        Transition::Progress { delta } => {
            let mut c = RunChanges::default();
            for (path, by) in [
                (&["counters", "total"][..], delta.total),
                (&["counters", "processed"][..], delta.processed),
                (&["counters", "succeeded"][..], delta.succeeded),
                (&["counters", "failed"][..], delta.failed),
                (&["counters", "skipped"][..], delta.skipped),
            ] {
                if by > 0 {
                    c = c.increment(path, i64::try_from(by).unwrap_or(i64::MAX));
                }
            }
            c
        }
        Transition::Yield { now, .. } => RunChanges::default().set(&["lease_expires_at"], ts(*now)),
        Transition::Report { result } => RunChanges::default().set(
            &["result"],
            serde_dynamo::to_attribute_value::<_, AttributeValue>(result)
                .unwrap_or(AttributeValue::Null(true)),
        ),
        Transition::Finish {
            now,
            outcome,
            failures,
        } => {
            let list = serde_dynamo::to_attribute_value::<_, AttributeValue>(failures)
                .unwrap_or(AttributeValue::L(Vec::new()));
            RunChanges::default()
                .set(&["status"], status_value(RunStatus::Completed))
                .set(&["outcome"], s(outcome_name(*outcome)))
                .set(&["completed_at"], ts(*now))
                .remove(&["lease_expires_at"])
                .append(&["failures"], list)
        }
    };
    (c.clone(), c)
}

fn outcome_name(o: Outcome) -> &'static str {
    o.as_str()
}

fn lock_kind_name(kind: LockKind) -> &'static str {
    match kind {
        LockKind::WhileActive => "while_active",
        LockKind::Strict => "strict",
        LockKind::Idempotent => "idempotent",
    }
}

pub(crate) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation: "request",
        code: None,
        source: Box::new(e),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the lock item carries no run copy")]
struct MissingRunCopy;

impl From<MissingRunCopy> for serde_dynamo::Error {
    fn from(e: MissingRunCopy) -> Self {
        serde::de::Error::custom(e)
    }
}

fn backoff(attempt: u32) -> StdDuration {
    // Full jitter over an exponential cap: colliding starts spread out instead of re-colliding.
    let cap_ms = 10u64 << attempt.min(6);
    let jitter = u64::try_from(ulid::Ulid::new().random() % u128::from(cap_ms)).unwrap_or(0);
    StdDuration::from_millis(jitter + 1)
}
