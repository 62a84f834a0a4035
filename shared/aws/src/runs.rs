//! Runs and their identity locks: the run item (with its index keys), the start transaction
//! (membership, tenant, preconditions, run and lock in one write, a dedupe answered from the
//! lock's old image; the start's audit entry and notification follow from the table's stream,
//! see [`crate::starts`]), and reads. Transitions are in
//! [`crate::transitions`]. Correctness lives in condition expressions: nothing here reads an
//! item to decide whether to write it.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use tenantops_core::problem::ProblemClass;
use tenantops_core::{
    LockKind, OperationType, Outcome, Run, RunId, RunStatus, TenantId, WorkspaceId,
};

use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{
    Index, Item, from_item, from_items, number_attr, string_attr, string_of, to_item, with_index,
    with_key,
};
use crate::keys;
use crate::table::{Query, Store};
use crate::transactions::{
    Attempt, CONFLICT_ATTEMPTS, MemberGuard, Order, Precondition, Rejection, WriteError, backoff,
    contention, failed_at, guard_rejection,
};

/// How long a finished unique-per-click run's lock answers `Idempotency-Key` replays.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);
/// One start: the new run, its lock, and who must be allowed to start it.
#[derive(Debug, Clone, Copy)]
pub struct StartRun<'a> {
    pub run: &'a Run,
    pub lock: LockKind,
    /// The identity was minted for this request (see `Identity::fresh`): no lock can hold it.
    pub fresh: bool,
    /// For idempotency locks: what the request looked like (see `request_fingerprint`).
    pub fingerprint: &'a str,
    /// `None` for system starts (the scheduler).
    pub guard: Option<MemberGuard<'a>>,
    /// What else must hold for the run to exist (the schedule a backup names, a restore's
    /// confirmed preview); checked, and possibly updated, in the same transaction.
    pub preconditions: &'a [Precondition],
    /// The tenant's start quota this start counts against, if any (manual backups).
    pub quota: Option<StartQuota>,
}

/// At most `limit` quota-limited starts per tenant in each fixed window of `window`
/// (aligned to the epoch), counted by an item per tenant and window that the start
/// transaction increments under the condition that it is below `limit`: concurrent starts
/// cannot pass it, and a start that does not commit (a dedupe hit, a refusal) uses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartQuota {
    pub limit: u32,
    pub window: Duration,
}

impl StartQuota {
    /// The window `now` falls in: its start and end, in epoch seconds.
    fn window_at(&self, now: DateTime<Utc>) -> (i64, i64) {
        let len = self.window.num_seconds().max(1);
        let start = now.timestamp().div_euclid(len) * len;
        (start, start + len)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    Created,
    /// The identity already had a run; this is it, as of its last transition.
    Deduplicated(Box<Run>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    /// One workspace's runs; `None` is every workspace's (the system plane).
    pub workspace: Option<WorkspaceId>,
    pub tenant: Option<TenantId>,
    /// Only these types; `None` means every type.
    pub types: Option<Vec<OperationType>>,
    pub status: Option<RunStatus>,
    pub active: Option<bool>,
    /// Only runs of this problem class.
    pub problem: Option<ProblemFilter>,
    pub limit: usize,
    /// Continue after this run (the previous page's last).
    pub after: Option<RunId>,
}

/// A problem class as a query filter: `stuck` needs the time before which an active run's
/// creation makes it stuck (now less the expected duration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemFilter {
    pub class: ProblemClass,
    pub stuck_before: DateTime<Utc>,
}

/// The attribute a failed run's finish sets to its first failure's reason code (see
/// `transitions.rs`): what the problem class `stale` filters on.
pub(crate) const FINISH_CODE: &str = "finish_code";

/// The smallest run id created at `at`: runs created before `at` sort below it.
pub(crate) fn first_run_id_at(at: DateTime<Utc>) -> String {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    keys::run_sort(RunId::from_ulid(ulid::Ulid::from_parts(ms, 0)))
}

/// The filter expressions of a run list, and the sort-key bound a stuck filter adds to the
/// key condition (`Some`: only runs created before it).
fn run_filters(
    p: &mut Placeholders,
    types: Option<&[OperationType]>,
    status: Option<RunStatus>,
    active: Option<bool>,
    problem: Option<ProblemFilter>,
) -> (Vec<String>, Option<String>) {
    let mut filters = Vec::new();
    if let Some(types) = types {
        filters.push(p.one_of("type", types.iter().map(|t| string_attr(t.as_str()))));
    }
    if let Some(st) = status {
        filters.push(p.eq("status", status_attr(st)));
    }
    let completed = status_attr(RunStatus::Completed);
    match active {
        Some(true) => filters.push(format!(
            "{} <> {}",
            p.name("status"),
            p.value(completed.clone())
        )),
        Some(false) => filters.push(p.eq("status", completed.clone())),
        None => {}
    }
    let mut created_before = None;
    if let Some(problem) = problem {
        match problem.class {
            ProblemClass::Failed => {
                filters.push(p.eq("outcome", string_attr(Outcome::Failed.as_str())));
            }
            ProblemClass::Partial => {
                filters.push(p.eq("outcome", string_attr(Outcome::PartiallySucceeded.as_str())))
            }
            ProblemClass::Stale => {
                filters.push(p.eq("outcome", string_attr(Outcome::Failed.as_str())));
                filters.push(
                    p.one_of(
                        FINISH_CODE,
                        ProblemClass::STALE_REASONS
                            .iter()
                            .map(|c| string_attr(c.as_str())),
                    ),
                );
            }
            ProblemClass::Stuck => {
                filters.push(format!("{} <> {}", p.name("status"), p.value(completed)));
                created_before = Some(first_run_id_at(problem.stuck_before));
            }
        }
    }
    (filters, created_before)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub items: Vec<Run>,
    pub next: Option<RunId>,
}

pub(crate) fn status_attr(status: RunStatus) -> AttributeValue {
    string_attr(status.as_str())
}

/// The run's item: the record, its key, both listing indexes and, while active, the
/// deadline index.
fn run_item(run: &Run) -> Result<Item, StoreError> {
    let item = with_key(to_item("run", run)?, &keys::run(run.id));
    let item = with_index(
        item,
        Index::Gsi1,
        keys::runs_of_workspace(run.workspace_id),
        keys::run_sort(run.id),
    );
    let item = with_index(
        item,
        Index::Gsi2,
        keys::runs_of_tenant(run.workspace_id, run.tenant_id),
        keys::run_sort(run.id),
    );
    let item = with_index(
        item,
        Index::Gsi4,
        keys::runs_of_tenant_type(run.workspace_id, run.tenant_id, run.operation),
        keys::run_sort(run.id),
    );
    let item = with_index(
        item,
        Index::Gsi5,
        keys::platform_runs(keys::active_shard(run.id)),
        keys::run_sort(run.id),
    );
    Ok(match due_by(run) {
        Some(deadline) => with_index(
            item,
            Index::Gsi3,
            keys::active_runs(keys::active_shard(run.id)),
            keys::active_sort(deadline, run.id),
        ),
        None => item,
    })
}

fn lock_item(run: &Run, kind: LockKind, fingerprint: &str) -> Result<Item, StoreError> {
    let mut item = keys::lock(&run.identity).to_item();
    item.insert("run_id".into(), string_attr(run.id.to_string()));
    item.insert("kind".into(), string_attr(lock_kind_name(kind)));
    item.insert("fingerprint".into(), string_attr(fingerprint));
    item.insert("run".into(), AttributeValue::M(to_item("run", run)?));
    Ok(item)
}

impl Store {
    /// Creates a run and its identity lock in one transaction that also checks the caller's
    /// membership and the tenant. A conflicting identity answers with the existing run, from
    /// the failed condition's `ALL_OLD` image.
    /// With a quota, the start counts against it in the same transaction: a dedupe hit answers
    /// its run even when the quota is used up, and a refused start uses none of it.
    ///
    /// A caller's start of an identity that may be held reads first ([`Store::held_for`]): a
    /// clean dedupe hit is then one consistent read, and a new start that read plus the
    /// transaction. A transaction that collides with a concurrent one reads again before it is
    /// retried, so the losers of a storm are answered as soon as the winner commits.
    pub async fn start_run(&self, start: StartRun<'_>) -> Result<Started, WriteError> {
        let (items, at) = self.start_items(&start)?;
        // Only a caller's start, and only if nothing must be refused before a dedupe hit.
        let reader = start.guard.filter(|_| {
            !start.fresh
                && start
                    .preconditions
                    .iter()
                    .all(|p| p.1 == Order::AfterDedupe)
        });
        for attempt in 0..CONFLICT_ATTEMPTS {
            if let Some(guard) = reader
                && let Some(existing) =
                    Box::pin(self.held_for(start.run, guard, start.fingerprint)).await?
            {
                return Ok(Started::Deduplicated(Box::new(existing)));
            }
            match self.transact_once(items.clone()).await? {
                Attempt::Committed => return Ok(Started::Created),
                Attempt::Cancelled(reasons) => return refused(&start, at, &reasons),
                Attempt::Collided => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(contention().into())
    }

    /// The run holding `run`'s identity, if the caller could be answered with it without a
    /// write: one consistent `BatchGetItem` of the membership, the tenant and the lock, and
    /// the transaction's own guards applied to what it read (the caller holds one of the
    /// roles, the tenant is active, and an idempotency lock is this very request's). `None`
    /// leaves the answer to the transaction, which judges everything again.
    async fn held_for(
        &self,
        run: &Run,
        guard: MemberGuard<'_>,
        fingerprint: &str,
    ) -> Result<Option<Run>, StoreError> {
        let member_key = keys::member(run.workspace_id, guard.user);
        let tenant_key = keys::tenant(run.workspace_id, run.tenant_id);
        let lock_key = keys::lock(&run.identity);
        let found = self
            .get_consistently([&member_key, &tenant_key, &lock_key])
            .await?;
        let Some([Some(member), Some(tenant), Some(lock)]) = found else {
            return Ok(None);
        };
        if !Store::member_holds(Some(&member), guard) || !Store::tenant_is_active(Some(&tenant)) {
            return Ok(None);
        }
        let kind = string_of(&lock, "kind").map(String::as_str);
        if kind == Some(lock_kind_name(LockKind::Idempotent))
            && string_of(&lock, "fingerprint").map(String::as_str) != Some(fingerprint)
        {
            return Ok(None);
        }
        match lock.get("run") {
            Some(AttributeValue::M(m)) => Ok(Some(from_item("lock run copy", m.clone())?)),
            _ => Ok(None),
        }
    }

    /// The start transaction's items, and where its guards and locks are in it.
    fn start_items(
        &self,
        start: &StartRun<'_>,
    ) -> Result<(Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StartLayout), StoreError> {
        let (run, quota) = (start.run, start.quota);
        let mut items = Vec::with_capacity(4 + start.preconditions.len());
        let mut guard_at = None;
        if let Some(guard) = start.guard {
            guard_at = Some(items.len());
            items.push(self.member_check(run.workspace_id, guard)?);
        }
        let tenant_at = items.len();
        items.push(self.tenant_active_check(run.workspace_id, run.tenant_id)?);
        let preconditions_at = items.len();
        items.extend(start.preconditions.iter().map(|p| p.0.clone()));
        items.push(self.put_new(run_item(run)?, false)?);
        let lock_at = items.len();
        items.push(self.put_new(lock_item(run, start.lock, start.fingerprint)?, true)?);
        let quota_at = items.len();
        let window = quota.map(|q| q.window_at(run.created_at));
        if let (Some(q), Some((window_start, window_end))) = (quota, window) {
            let mut p = Placeholders::default();
            let cond = format!(
                "{} OR {} < {}",
                p.absent(keys::PK),
                p.name("starts"),
                p.value(number_attr(q.limit))
            );
            let update = Changes::default()
                .add(&["starts"], number_attr(1))
                .set_top(keys::TTL, number_attr(window_end))
                .render(&mut p);
            let key = keys::start_quota(run.workspace_id, run.tenant_id, window_start);
            items.push(self.tx_update(&key, update, cond, p, false)?);
        }

        Ok((
            items,
            StartLayout {
                guard_at,
                tenant_at,
                preconditions_at,
                lock_at,
                quota_at,
                window,
            },
        ))
    }

    /// The run, read consistently. (The read's own future, so that callers' futures stay
    /// shallow; see [`crate::table`].)
    pub fn get_run(
        &self,
        id: RunId,
    ) -> impl Future<Output = Result<Option<Run>, StoreError>> + Send + use<> {
        self.get_as("run", &keys::run(id))
    }

    /// A workspace's runs, newest first, from an index query (never a Scan).
    pub async fn list_runs(&self, q: &RunQuery) -> Result<RunPage, StoreError> {
        let Some(ws) = q.workspace else {
            return self.list_platform_runs(q).await;
        };
        // One tenant and one type: that type's own partition, so runs of other types,
        // however many are newer, are never read past (a filter would evaluate them).
        let one_type = match q.types.as_deref() {
            Some([only]) => Some(*only),
            _ => None,
        };
        let (index, partition) = match (q.tenant, one_type) {
            (Some(t), Some(op)) => (Index::Gsi4, keys::runs_of_tenant_type(ws, t, op)),
            (Some(t), None) => (Index::Gsi2, keys::runs_of_tenant(ws, t)),
            (None, _) => (Index::Gsi1, keys::runs_of_workspace(ws)),
        };
        let types = q.types.as_deref().filter(|_| index != Index::Gsi4);
        let (items, last) = self
            .runs_of_partition(
                index,
                partition,
                |p| run_filters(p, types, q.status, q.active, q.problem),
                q.limit,
                q.after,
            )
            .await?;
        let next = last
            .and_then(|k| string_of(&k, index.sk()).cloned())
            .and_then(|id| id.parse().ok());
        Ok(RunPage {
            items: from_items("run", items)?,
            next,
        })
    }

    /// Runs of every workspace, newest first: each shard of the platform's index queried
    /// for a page after `after`, merged by id. A shard that stopped short of a full page (its
    /// filter read its query budget) bounds what this page may answer, so nothing older than
    /// what every shard has read is skipped.
    async fn list_platform_runs(&self, q: &RunQuery) -> Result<RunPage, StoreError> {
        let shards = (0..keys::PLATFORM_RUN_SHARDS).map(|shard| {
            self.runs_of_partition(
                Index::Gsi5,
                keys::platform_runs(shard),
                |p| {
                    let (mut filters, before) =
                        run_filters(p, q.types.as_deref(), q.status, q.active, q.problem);
                    if let Some(t) = q.tenant {
                        filters.push(p.eq("tenant_id", string_attr(t.to_string())));
                    }
                    (filters, before)
                },
                q.limit,
                q.after,
            )
        });
        let mut merged = Vec::new();
        // The oldest id every shard has read down to (shards that ended are read through).
        let mut read_to: Option<String> = None;
        for result in futures::future::join_all(shards).await {
            let (items, last) = result?;
            merged.extend(items);
            if let Some(last) = last.and_then(|k| string_of(&k, Index::Gsi5.sk()).cloned()) {
                read_to = Some(match read_to {
                    Some(bound) if bound >= last => bound,
                    _ => last,
                });
            }
        }
        let sort_id = |item: &Item| {
            string_of(item, Index::Gsi5.sk())
                .cloned()
                .unwrap_or_default()
        };
        merged.retain(|item| read_to.as_ref().is_none_or(|bound| sort_id(item) >= *bound));
        merged.sort_by_key(|item| std::cmp::Reverse(sort_id(item)));
        let next = if merged.len() >= q.limit {
            merged.truncate(q.limit);
            merged.last().map(sort_id)
        } else {
            read_to
        };
        Ok(RunPage {
            items: from_items("run", merged)?,
            next: next.and_then(|id| id.parse().ok()),
        })
    }

    /// Up to `limit` runs of one index partition after `after`, newest first, filtered.
    async fn runs_of_partition(
        &self,
        index: Index,
        partition: String,
        filters: impl FnOnce(&mut Placeholders) -> (Vec<String>, Option<String>),
        limit: usize,
        after: Option<RunId>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut p = Placeholders::default();
        let mut key_cond = p.eq(index.pk(), string_attr(partition.clone()));
        let (filters, created_before) = filters(&mut p);
        if let Some(bound) = created_before {
            key_cond = format!(
                "{key_cond} AND {} < {}",
                p.name(index.sk()),
                p.value(string_attr(bound))
            );
        }
        let start = after.map(|after| {
            with_index(
                keys::run(after).to_item(),
                index,
                partition,
                keys::run_sort(after),
            )
        });
        let query = Query::new(Some(index), key_cond, p)
            .filtered(filters)
            .newest_first();
        self.query_filling(query, limit, start).await
    }
}

/// When an active run is due to move (its GSI3 time): a queued run from its dispatch (its
/// creation), a running one from its lease's end. The reaper adds its thresholds when it
/// queries ([`crate::reaping`]), so they are configured in one place. `None` for a finished
/// run, which leaves the index.
pub(crate) fn due_by(run: &Run) -> Option<DateTime<Utc>> {
    match run.status {
        RunStatus::Queued => Some(run.created_at),
        RunStatus::Running => Some(run.lease_expires_at.unwrap_or(run.created_at)),
        RunStatus::Completed => None,
    }
}

pub(crate) fn lock_kind_name(kind: LockKind) -> &'static str {
    match kind {
        LockKind::WhileActive => "while_active",
        LockKind::Strict => "strict",
        LockKind::Idempotent => "idempotent",
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

/// Where a start transaction's guards, preconditions, lock and quota are.
#[derive(Debug, Clone, Copy)]
struct StartLayout {
    guard_at: Option<usize>,
    tenant_at: usize,
    preconditions_at: usize,
    lock_at: usize,
    quota_at: usize,
    window: Option<(i64, i64)>,
}

/// A cancelled start transaction read: a refusal, or a dedupe hit from the lock's old image.
fn refused(
    start: &StartRun<'_>,
    at: StartLayout,
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
) -> Result<Started, WriteError> {
    let StartLayout {
        guard_at,
        tenant_at,
        preconditions_at,
        lock_at,
        quota_at,
        window,
    } = at;
    let run = start.run;
    if let Some(rejection) = guard_rejection(reasons, guard_at, Some(tenant_at)) {
        return Err(WriteError::Rejected(rejection));
    }
    let failed = |i: usize| failed_at(reasons, i);
    let lock_failure = failed(lock_at).map(|r| r.item().cloned().unwrap_or_default());
    // A key names one request: another request under the same key is refused as such,
    // whatever else is wrong with it. Route preconditions come next (a restore's token is
    // checked even while its run is active), and only then is a held lock a dedupe hit.
    if let Some(old) = &lock_failure {
        let kind = string_of(old, "kind").map(String::as_str);
        let their_fingerprint = string_of(old, "fingerprint");
        if kind == Some(lock_kind_name(LockKind::Idempotent))
            && their_fingerprint.map(String::as_str) != Some(start.fingerprint)
        {
            return Err(WriteError::Rejected(Rejection::IdempotencyKeyReused));
        }
    }
    let failed_precondition = |order: Order| {
        (0..start.preconditions.len())
            .find(|i| start.preconditions[*i].1 == order && failed(preconditions_at + i).is_some())
    };
    if let Some(i) = failed_precondition(Order::BeforeDedupe) {
        return Err(WriteError::Rejected(Rejection::Precondition(i)));
    }
    if let (None, Some(i)) = (&lock_failure, failed_precondition(Order::AfterDedupe)) {
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
    if let Some((_, window_end)) = window.filter(|_| failed(quota_at).is_some()) {
        let left = window_end - run.created_at.timestamp();
        return Err(WriteError::Rejected(Rejection::QuotaExceeded {
            retry_after_secs: u64::try_from(left).unwrap_or(1).max(1),
        }));
    }
    Err(StoreError::TransitionRefused.into())
}
