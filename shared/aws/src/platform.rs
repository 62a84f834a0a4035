//! The system plane's reads: every workspace (GSI5), the runs active now (the sparse GSI3,
//! every shard), a workspace's problem runs of a recent window (GSI1, bounded by the run ids'
//! time), counts, and the audit entries of platform operators' reads. Lists come from
//! indexes, never a Scan; every aggregate is over a bounded key range.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tenantops_core::problem::ProblemClass;
use tenantops_core::{Outcome, Run, TenantId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::Placeholders;
use crate::item::{Index, from_items, keyed_item, string_attr, string_of, with_index};
use crate::keys;
use crate::runs::{FINISH_CODE, first_run_id_at};
use crate::table::{Query, Store, put_request};
use crate::workspaces::WorkspaceRecord;

/// One page of every workspace, oldest first (ids sort by creation).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspacePage {
    pub items: Vec<WorkspaceRecord>,
    pub next: Option<WorkspaceId>,
}

/// A finished run's problem facts, as the recent-problems query reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemRun {
    pub run: Run,
    pub stale: bool,
}

/// The GSI5 item of a workspace (added to its record's item at creation).
pub(crate) fn with_platform_index(item: crate::item::Item, ws: WorkspaceId) -> crate::item::Item {
    with_index(
        item,
        Index::Gsi5,
        keys::platform_workspaces(),
        keys::workspace_sort(ws),
    )
}

impl Store {
    /// Every workspace, a page at a time, from the platform index.
    pub async fn list_all_workspaces(
        &self,
        limit: usize,
        after: Option<WorkspaceId>,
    ) -> Result<WorkspacePage, StoreError> {
        let mut p = Placeholders::default();
        let key_cond = p.eq(keys::GSI5_PK, string_attr(keys::platform_workspaces()));
        let start = after.map(|ws| {
            with_index(
                keys::workspace(ws).to_item(),
                Index::Gsi5,
                keys::platform_workspaces(),
                keys::workspace_sort(ws),
            )
        });
        let (items, last) = self
            .query_filling(Query::new(Some(Index::Gsi5), key_cond, p), limit, start)
            .await?;
        let next = last
            .and_then(|k| string_of(&k, keys::GSI5_SK).cloned())
            .and_then(|id| id.parse().ok());
        Ok(WorkspacePage {
            items: from_items("workspace", items)?,
            next,
        })
    }

    /// Every run queued or running now, optionally of one workspace: every shard of the
    /// sparse active-runs index (bounded by what is in flight, not by history).
    pub async fn active_runs(&self, ws: Option<WorkspaceId>) -> Result<Vec<Run>, StoreError> {
        let shards = (0..keys::ACTIVE_SHARDS).map(|shard| {
            let mut p = Placeholders::default();
            let key_cond = p.eq(keys::GSI3_PK, string_attr(keys::active_runs(shard)));
            let filters: Vec<String> = ws
                .map(|ws| p.eq("workspace_id", string_attr(ws.to_string())))
                .into_iter()
                .collect();
            let q = Query::new(Some(Index::Gsi3), key_cond, p).filtered(filters);
            self.query_all(q)
        });
        let mut runs = Vec::new();
        for items in futures::future::join_all(shards).await {
            runs.extend(from_items::<Run>("run", items?)?);
        }
        Ok(runs)
    }

    /// A workspace's (or one tenant's) runs created since `since` that finished failed or
    /// partially succeeded, each with whether it is stale (its finish's reason).
    pub async fn recent_problem_runs(
        &self,
        ws: WorkspaceId,
        tenant: Option<TenantId>,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProblemRun>, StoreError> {
        let (index, partition) = match tenant {
            Some(t) => (Index::Gsi2, keys::runs_of_tenant(ws, t)),
            None => (Index::Gsi1, keys::runs_of_workspace(ws)),
        };
        let mut p = Placeholders::default();
        let key_cond = format!(
            "{} AND {} >= {}",
            p.eq(index.pk(), string_attr(partition)),
            p.name(index.sk()),
            p.value(string_attr(first_run_id_at(since))),
        );
        let filter = p.one_of(
            "outcome",
            [Outcome::Failed, Outcome::PartiallySucceeded]
                .into_iter()
                .map(|o| string_attr(o.as_str())),
        );
        let q = Query::new(Some(index), key_cond, p)
            .filtered(vec![filter])
            .newest_first();
        let items = self.query_all(q).await?;
        let mut runs = Vec::with_capacity(items.len());
        for item in items {
            let stale = string_of(&item, FINISH_CODE).is_some_and(|code| {
                ProblemClass::STALE_REASONS
                    .iter()
                    .any(|c| c.as_str() == code.as_str())
            });
            runs.push(ProblemRun {
                run: crate::item::from_item("run", item)?,
                stale,
            });
        }
        Ok(runs)
    }

    /// How many tenants a workspace has (archived ones included).
    pub async fn count_tenants(&self, ws: WorkspaceId) -> Result<u64, StoreError> {
        let mut p = Placeholders::default();
        let key_cond = format!(
            "{} AND begins_with({}, {})",
            p.eq(keys::PK, string_attr(keys::workspace(ws).pk)),
            p.name(keys::SK),
            p.value(string_attr(keys::tenant_prefix())),
        );
        self.count(&Query::new(None, key_cond, p)).await
    }

    /// Records platform operators' reads, one entry each, in the read workspaces' logs. Not
    /// a transaction: each entry is its own fact, and none conflicts with another.
    pub async fn record_reads(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let requests = entries
            .iter()
            .map(|e| {
                keyed_item("audit entry", e, &keys::audit(e.workspace_id, e.id))
                    .and_then(put_request)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }
}

/// Groups `runs` by workspace.
pub fn by_workspace(runs: Vec<Run>) -> HashMap<WorkspaceId, Vec<Run>> {
    let mut map: HashMap<WorkspaceId, Vec<Run>> = HashMap::new();
    for run in runs {
        map.entry(run.workspace_id).or_default().push(run);
    }
    map
}
