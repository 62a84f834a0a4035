//! The query of a run list, on either plane: its filters parsed once (each mistake its own
//! `query.invalid` detail), the cursor's query key, and the problem-class filter the store
//! applies. The admin plane's list takes no `workspace` (it is in the path); the system
//! plane's does.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use tenantops_aws::ProblemFilter;
use tenantops_core::links::RunFilters;
use tenantops_core::problem::ProblemClass;
use tenantops_core::{RunId, RunStatus};

use crate::cursor;
use crate::error::ApiError;

pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 100;

/// Which plane a list is on: whether `workspace` is a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Admin,
    System,
}

/// A run list's query: its filters, its page size and where it continues.
#[derive(Debug, Default)]
pub struct RunListQuery {
    pub filters: RunFilters,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl RunListQuery {
    pub fn parse(query: &[(String, String)], plane: Plane) -> Result<Self, ApiError> {
        let mut f = RunListQuery::default();
        let mut seen = HashSet::new();
        for (k, v) in query {
            if !seen.insert(k.as_str()) {
                return Err(ApiError::InvalidQuery(format!("`{k}` is given twice")));
            }
            let bad = |what: &str| ApiError::InvalidQuery(format!("`{k}` must be {what}"));
            match k.as_str() {
                "workspace" if plane == Plane::System => {
                    f.filters.workspace = Some(v.parse().map_err(|_| bad("a workspace id"))?);
                }
                "tenant" => f.filters.tenant = Some(v.parse().map_err(|_| bad("a tenant id"))?),
                "type" => {
                    f.filters.operation = Some(v.parse().map_err(|_| bad("an operation type"))?)
                }
                "status" => {
                    f.filters.status = Some(
                        RunStatus::parse(v).ok_or_else(|| bad("queued, running or completed"))?,
                    );
                }
                "active" => {
                    f.filters.active = Some(match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("true or false")),
                    });
                }
                "problem" => {
                    f.filters.problem = Some(
                        ProblemClass::parse(v)
                            .ok_or_else(|| bad("failed, partial, stale or stuck"))?,
                    );
                }
                "limit" => {
                    let n: usize = v.parse().map_err(|_| bad("an integer from 1 to 100"))?;
                    if !(1..=MAX_PAGE).contains(&n) {
                        return Err(bad("an integer from 1 to 100"));
                    }
                    f.limit = Some(n);
                }
                "cursor" => f.cursor = Some(v.clone()),
                other => {
                    return Err(ApiError::InvalidQuery(format!(
                        "unknown query parameter `{}`",
                        other.chars().take(64).collect::<String>()
                    )));
                }
            }
        }
        Ok(f)
    }

    /// The query a cursor belongs to (everything but the cursor and the page size).
    fn key(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_default();
        format!(
            "workspace={}|tenant={}|type={}|status={}|active={}|problem={}",
            opt(self.filters.workspace.map(|w| w.to_string())),
            opt(self.filters.tenant.map(|t| t.to_string())),
            opt(self.filters.operation.map(|t| t.to_string())),
            opt(self.filters.status.map(|s| s.to_string())),
            opt(self.filters.active.map(|a| a.to_string())),
            opt(self.filters.problem.map(|p| p.as_str().to_owned())),
        )
    }

    /// The run the cursor continues after, if the cursor belongs to this query.
    pub fn after(&self) -> Result<Option<RunId>, ApiError> {
        cursor::position::<RunId>(self.cursor.as_deref(), &self.key())
    }

    /// The cursor of the page after `next`.
    pub fn next_cursor(&self, next: Option<RunId>) -> Option<String> {
        next.map(|id| cursor::encode(&self.key(), id))
    }

    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }

    /// The problem filter as the store applies it, judged at `now`.
    pub fn problem_filter(
        &self,
        now: DateTime<Utc>,
        stuck_after: Duration,
    ) -> Option<ProblemFilter> {
        self.filters.problem.map(|class| ProblemFilter {
            class,
            stuck_before: now - stuck_after,
        })
    }
}
