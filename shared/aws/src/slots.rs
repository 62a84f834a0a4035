//! Per-workspace run slots: at most `limit` runs of one workspace run at once, so a burst
//! from one workspace cannot take every worker from the others.
//!
//! A workspace has `limit` slot items. A worker's claim takes one in the claim's own
//! transaction, under the condition that it is free (absent), its lease has expired, or it
//! is this run's own (a re-claim after a lost lease): two claims can never hold one slot,
//! and no claim runs without one. A slot's lease is the run's lease (same claim time and
//! length), so a worker that dies frees its slot when its run's lease expires: nothing is
//! counted, so nothing leaks. The worker releases its slot after it finishes or yields the
//! run (a delete conditional on its own run and lease owner, so it never frees a slot that
//! another run has taken over); a worker that dies in between leaves it to expire.

use tenantops_core::{Run, RunId, Transition};

use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{Item, number_attr, string_attr, string_of, time_attr};
use crate::keys;
use crate::table::Store;
use crate::transactions::failed_at;
use crate::transitions::Seen;

/// The slot item's index attribute.
const SLOT: &str = "slot";
/// How many different free slots one claim tries before it counts the workspace as full
/// (each try lost a race to another claim).
const TRIES: usize = 3;

/// What a claim with a slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotClaim {
    /// The run is claimed and holds this slot of its workspace.
    Claimed(u32),
    /// Every slot of the run's workspace is held under a live lease by another run: nothing
    /// was written.
    WorkspaceFull,
}

/// A slot as read: its index, its holder, and whether its lease is live at `now`.
struct Held {
    index: u32,
    run_id: Option<String>,
    live: bool,
}

fn held(item: &Item, now: &str) -> Option<Held> {
    let index = match item.get(SLOT) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().ok()?,
        _ => return None,
    };
    Some(Held {
        index,
        run_id: string_of(item, "run_id").cloned(),
        live: string_of(item, "lease_expires_at").is_some_and(|t| t.as_str() >= now),
    })
}

impl Store {
    /// A worker's claim (as [`Store::claim_dispatched`]) that also takes one of the run's
    /// workspace's `limit` slots in the same transaction. The slots are read first only to
    /// pick a candidate; the transaction's condition decides. A refused run transition is
    /// [`StoreError::TransitionRefused`].
    pub async fn claim_with_slot(
        &self,
        run: &Run,
        worker: &str,
        claim: &Transition,
        dispatch: u32,
        limit: u32,
    ) -> Result<SlotClaim, StoreError> {
        let Transition::Claim { now, lease } = claim else {
            return Err(StoreError::TransitionRefused);
        };
        let now_s = tenantops_core::time::format(*now);
        let own = run.id.to_string();
        let mut taken: Vec<u32> = Vec::new();
        for _ in 0..TRIES {
            let items = self
                .partition(keys::slots_of(run.workspace_id), None, None)
                .await?;
            let seen: Vec<Held> = items.iter().filter_map(|i| held(i, &now_s)).collect();
            let busy = |i: u32| {
                taken.contains(&i)
                    || seen
                        .iter()
                        .any(|h| h.index == i && h.live && h.run_id.as_deref() != Some(&own))
            };
            // Its own slot first (a re-claim), then a free one, starting at a random one so
            // that concurrent claims spread over the slots instead of colliding on the first.
            let mine = seen
                .iter()
                .find(|h| h.index < limit && h.run_id.as_deref() == Some(&own))
                .map(|h| h.index);
            let offset =
                u32::try_from(ulid::Ulid::new().random() % u128::from(limit.max(1))).unwrap_or(0);
            let free = (0..limit)
                .map(|i| (i + offset) % limit.max(1))
                .find(|i| !busy(*i));
            let Some(index) = mine.or(free) else {
                return Ok(SlotClaim::WorkspaceFull);
            };
            let mut items = self
                .transition_items(run, Some(worker), Some(Seen::Dispatch(dispatch)), claim)?
                .unwrap_or_default();
            let slot_at = items.len();
            items.push(self.slot_put(run, worker, index, *now, *now + *lease)?);
            let Some(reasons) = self.transact(items).await? else {
                return Ok(SlotClaim::Claimed(index));
            };
            if failed_at(&reasons, slot_at).is_none() {
                return Err(StoreError::TransitionRefused);
            }
            // Another claim took this slot since it was read: try another.
            taken.push(index);
        }
        Ok(SlotClaim::WorkspaceFull)
    }

    /// Releases the slot `index` of workspace `ws` that `run` took with `worker`'s claim. `false`: it is no
    /// longer theirs (taken over after its lease expired), and stays as it is.
    pub async fn release_slot(
        &self,
        ws: tenantops_core::WorkspaceId,
        run: RunId,
        worker: &str,
        index: u32,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {}",
            p.eq("run_id", string_attr(run.to_string())),
            p.eq("lease_owner", string_attr(worker))
        );
        self.delete_if(&keys::slot(ws, index), cond, p).await
    }

    /// The runs holding a live slot of workspace `ws` at `now` (operators, tests).
    pub async fn slot_holders(
        &self,
        ws: tenantops_core::WorkspaceId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<RunId>, StoreError> {
        let now_s = tenantops_core::time::format(now);
        let items = self.partition(keys::slots_of(ws), None, None).await?;
        Ok(items
            .iter()
            .filter_map(|i| held(i, &now_s))
            .filter(|h| h.live)
            .filter_map(|h| h.run_id.and_then(|r| r.parse().ok()))
            .collect())
    }

    /// The put that takes slot `index` for `run` until `until`: only if it is free, its lease
    /// has expired at `now`, or it is already this run's.
    fn slot_put(
        &self,
        run: &Run,
        worker: &str,
        index: u32,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut item = keys::slot(run.workspace_id, index).to_item();
        item.insert(SLOT.into(), number_attr(index));
        item.insert("run_id".into(), string_attr(run.id.to_string()));
        item.insert("lease_owner".into(), string_attr(worker));
        item.insert("lease_expires_at".into(), time_attr(until));
        // A released slot is deleted; one left by a dead worker is cleaned up a day later.
        item.insert(
            keys::TTL.into(),
            number_attr((until + chrono::TimeDelta::days(1)).timestamp()),
        );
        let mut p = Placeholders::default();
        let lease = p.name("lease_expires_at");
        let cond = format!(
            "{} OR {lease} < {} OR {}",
            p.absent(keys::PK),
            p.value(time_attr(now)),
            p.eq("run_id", string_attr(run.id.to_string()))
        );
        self.tx_put(item, cond, p, false)
    }
}
