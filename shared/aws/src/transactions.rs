//! TransactWriteItems, shared by every aggregate: the items of a transaction (condition
//! checks, conditional puts, updates and deletes), the guards most transactions carry (the
//! caller's membership, an active tenant), running a transaction with retries on collisions,
//! and reading its cancellation reasons as a [`Rejection`].

use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use tenantops_core::{Role, TenantId, UserId, WorkspaceId};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{Item, string_attr, string_of};
use crate::keys::{self, Key};
use crate::table::{Store, build_error};

/// Attempts at a transaction that collides with concurrent ones before giving up. Twelve
/// attempts wait at most about 4.5 s in backoff (within the API's 10 s), enough for twenty
/// scheduler ticks racing over the same slots, where eight gave up under load.
pub(crate) const CONFLICT_ATTEMPTS: u32 = 12;

/// The caller must be a member of the run's workspace with one of `roles`.
#[derive(Debug, Clone, Copy)]
pub struct MemberGuard<'a> {
    pub user: &'a UserId,
    pub roles: &'a [Role],
}

/// One more item of a start transaction, built by the store module that owns its key. If its
/// condition fails, the start is refused with [`Rejection::Precondition`] and its index:
/// before a held lock is read as a dedupe hit, unless it is [`Precondition::after_dedupe`].
#[derive(Debug, Clone)]
pub struct Precondition(pub(crate) TransactWriteItem, pub(crate) Order);

/// When a failed precondition refuses a start whose lock is held too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Refuses even a replay of the running start (a restore's token is always checked).
    BeforeDedupe,
    /// A replay of the running start is its dedupe hit: the condition may have failed only
    /// because that start's own write moved it (an inventory stamp it moves on).
    AfterDedupe,
}

impl Precondition {
    pub(crate) fn new(item: TransactWriteItem) -> Self {
        Precondition(item, Order::BeforeDedupe)
    }

    pub(crate) fn after_dedupe(item: TransactWriteItem) -> Self {
        Precondition(item, Order::AfterDedupe)
    }
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
    /// The tenant's start quota for the current window is used up; it frees after this many
    /// seconds (at least 1, at most the window).
    QuotaExceeded {
        retry_after_secs: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write rejected: {0:?}")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a failed condition answers with the item as it was (`ALL_OLD`).
fn old_image(return_old: bool) -> Option<ReturnValuesOnConditionCheckFailure> {
    return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld)
}

impl Store {
    /// A condition on the item at `key`, which the transaction does not write (old image on
    /// failure).
    pub(crate) fn condition_check(
        &self,
        key: Key,
        cond: String,
        p: Placeholders,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(self.table())
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

    /// A put under `cond`.
    pub(crate) fn tx_put(
        &self,
        item: Item,
        cond: String,
        p: Placeholders,
        return_old: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .set_return_values_on_condition_check_failure(old_image(return_old))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put of an item that must not exist yet.
    pub(crate) fn put_new(
        &self,
        item: Item,
        return_old: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = p.absent(keys::PK);
        self.tx_put(item, cond, p, return_old)
    }

    /// An update of the item at `key` under `cond`.
    pub(crate) fn tx_update(
        &self,
        key: &Key,
        update: String,
        cond: String,
        p: Placeholders,
        return_old: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .set_return_values_on_condition_check_failure(old_image(return_old))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A delete of the item at `key` under `cond`.
    pub(crate) fn tx_delete(
        &self,
        key: &Key,
        cond: String,
        p: Placeholders,
        return_old: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key.to_item()))
            .condition_expression(cond)
            .set_expression_attribute_names(p.names())
            .set_expression_attribute_values(p.values())
            .set_return_values_on_condition_check_failure(old_image(return_old))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The caller is a member of `ws` with one of the guard's roles (old image on failure).
    pub(crate) fn member_check(
        &self,
        ws: WorkspaceId,
        guard: MemberGuard<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let exists = p.exists(keys::PK);
        let cond = if guard.roles.is_empty() {
            format!("{exists} AND {}", p.absent(keys::PK))
        } else {
            let roles = guard.roles.iter().map(|r| string_attr(r.as_str()));
            format!("{exists} AND {}", p.one_of("role", roles))
        };
        self.condition_check(keys::member(ws, guard.user), cond, p)
    }

    /// What [`Store::member_check`] requires, of the membership item as read: a member
    /// holding one of the guard's roles.
    pub(crate) fn member_holds(item: Option<&Item>, guard: MemberGuard<'_>) -> bool {
        item.and_then(|i| string_of(i, "role"))
            .is_some_and(|role| guard.roles.iter().any(|r| r.as_str() == role))
    }

    /// What [`Store::tenant_active_check`] requires, of the tenant item as read.
    pub(crate) fn tenant_is_active(item: Option<&Item>) -> bool {
        item.and_then(|i| string_of(i, "status"))
            .is_some_and(|s| s == "active")
    }

    /// The tenant exists in `ws` and is active (old image on failure).
    pub(crate) fn tenant_active_check(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.exists(keys::PK),
            p.eq("status", string_attr("active"))
        );
        self.condition_check(keys::tenant(ws, tenant), cond, p)
    }

    /// Runs a transaction. `Ok(None)`: committed. `Ok(Some(reasons))`: cancelled by a failed
    /// condition. Collisions with concurrent transactions are retried with jittered backoff.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<CancellationReason>>, StoreError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            match self.transact_once(items.clone()).await? {
                Attempt::Committed => return Ok(None),
                Attempt::Cancelled(reasons) => return Ok(Some(reasons)),
                Attempt::Collided => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(contention())
    }

    /// One attempt at a transaction, a collision with a concurrent one left to the caller
    /// (a start reads the lock again rather than retrying blind).
    pub(crate) async fn transact_once(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Attempt, StoreError> {
        let err = match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Attempt::Committed),
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
        let collided = match reasons {
            Some(rs) => {
                if rs
                    .iter()
                    .any(|r| r.code() == Some("ConditionalCheckFailed"))
                {
                    return Ok(Attempt::Cancelled(rs));
                }
                rs.iter().any(|r| r.code() == Some("TransactionConflict"))
            }
            None => matches!(
                &err,
                SdkError::ServiceError(se)
                    if matches!(se.err(), TransactWriteItemsError::TransactionInProgressException(_))
            ),
        };
        if collided {
            Ok(Attempt::Collided)
        } else {
            Err(StoreError::dynamo(TRANSACT, err))
        }
    }
}

const TRANSACT: &str = "TransactWriteItems";

/// What became of one attempt at a transaction.
#[derive(Debug)]
pub(crate) enum Attempt {
    Committed,
    /// A condition failed: the reasons, with the old images asked for.
    Cancelled(Vec<CancellationReason>),
    /// A concurrent transaction held an item; nothing was written.
    Collided,
}

/// Gave up on a transaction that kept colliding.
pub(crate) fn contention() -> StoreError {
    StoreError::Contention {
        operation: TRANSACT,
    }
}

/// A transaction's answer ([`Store::transact`]) where a failed condition means the state
/// moved under it: [`StoreError::TransitionRefused`].
pub(crate) fn committed(cancelled: Option<Vec<CancellationReason>>) -> Result<(), StoreError> {
    match cancelled {
        None => Ok(()),
        Some(_) => Err(StoreError::TransitionRefused),
    }
}

/// A transaction's answer ([`Store::transact`]) where the first item is a
/// [`Store::member_check`] and the item at `tenant_at` (if any) a
/// [`Store::tenant_active_check`]: a failed guard answers as such, any other failed
/// condition as `otherwise`.
pub(crate) fn committed_guarded(
    cancelled: Option<Vec<CancellationReason>>,
    tenant_at: Option<usize>,
    otherwise: Rejection,
) -> Result<(), WriteError> {
    match cancelled {
        None => Ok(()),
        Some(reasons) => Err(WriteError::Rejected(
            guard_rejection(&reasons, Some(0), tenant_at).unwrap_or(otherwise),
        )),
    }
}

/// The refusal of a failed guard: the membership check at `member_at` first, then the tenant
/// check at `tenant_at`. `None`: neither failed.
pub(crate) fn guard_rejection(
    reasons: &[CancellationReason],
    member_at: Option<usize>,
    tenant_at: Option<usize>,
) -> Option<Rejection> {
    if let Some(r) = member_at.and_then(|i| failed_at(reasons, i)) {
        return Some(member_rejection(r));
    }
    tenant_at
        .and_then(|i| failed_at(reasons, i))
        .map(tenant_rejection)
}

/// A failed membership check: no item means not a member; an item means the wrong role.
fn member_rejection(reason: &CancellationReason) -> Rejection {
    let role = reason
        .item()
        .and_then(|i| string_of(i, "role"))
        .and_then(|r| r.parse::<Role>().ok());
    match role {
        Some(role) => Rejection::MissingCapability(role),
        None => Rejection::NotMember,
    }
}

/// A failed tenant check: no item means no such tenant here; an item means archived.
fn tenant_rejection(reason: &CancellationReason) -> Rejection {
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

pub(crate) fn backoff(attempt: u32) -> StdDuration {
    // Full jitter over an exponential cap: colliding starts spread out instead of re-colliding.
    let cap_ms = 10u64 << attempt.min(6);
    let jitter = u64::try_from(ulid::Ulid::new().random() % u128::from(cap_ms)).unwrap_or(0);
    StdDuration::from_millis(jitter + 1)
}
