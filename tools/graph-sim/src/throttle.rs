//! Graph's service-specific limits as token buckets: which budget a request draws on, what it
//! costs, and how long the caller must wait when a bucket is empty.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Throttling;

/// A throttling budget of Microsoft Graph, as Microsoft documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Budget {
    /// Intune (`deviceManagement/*`, `deviceAppManagement/*`): requests per app per tenant.
    Intune,
    /// Intune writes per app per tenant (drawn on together with [`Budget::Intune`]).
    IntuneWrites,
    /// Conditional Access (`identity/conditionalAccess/*`): per tenant, all apps together.
    ConditionalAccess,
    /// Directory (groups, users, role management): resource units per app per tenant.
    Directory,
    /// Directory writes per app per tenant (drawn on together with [`Budget::Directory`]).
    DirectoryWrites,
    /// Anything else: not limited, but injected throttles still set windows on it.
    Other,
}

impl Budget {
    /// The budget family of a Graph path (without version).
    pub fn of_path(path: &str) -> Budget {
        let first = path.split('/').next().unwrap_or_default();
        if path.starts_with("identity/conditionalAccess") {
            Budget::ConditionalAccess
        } else if matches!(first, "deviceManagement" | "deviceAppManagement") {
            Budget::Intune
        } else if matches!(
            first,
            "groups"
                | "users"
                | "roleManagement"
                | "directoryRoles"
                | "directoryObjects"
                | "servicePrincipals"
                | "applications"
                | "devices"
        ) {
            Budget::Directory
        } else {
            Budget::Other
        }
    }

    /// The buckets a request draws on, with its cost in each.
    pub(crate) fn draws(path: &str, write: bool, query_cost: i64) -> Vec<(Budget, f64)> {
        match Budget::of_path(path) {
            Budget::Intune if write => vec![(Budget::Intune, 1.0), (Budget::IntuneWrites, 1.0)],
            Budget::Intune => vec![(Budget::Intune, 1.0)],
            Budget::ConditionalAccess => vec![(Budget::ConditionalAccess, 1.0)],
            Budget::Directory if write => {
                vec![(Budget::Directory, 1.0), (Budget::DirectoryWrites, 1.0)]
            }
            Budget::Directory => vec![(Budget::Directory, directory_cost(path, query_cost))],
            _ => Vec::new(),
        }
    }

    /// Whether the bucket is shared by every app of the tenant.
    fn per_tenant(self) -> bool {
        matches!(self, Budget::ConditionalAccess)
    }

    /// (capacity, window) for the configured limits.
    fn limit(self, t: &Throttling) -> (f64, Duration) {
        match self {
            Budget::Intune => (f64::from(t.intune_per_20s), Duration::from_secs(20)),
            Budget::IntuneWrites => (f64::from(t.intune_writes_per_20s), Duration::from_secs(20)),
            Budget::ConditionalAccess => (
                f64::from(t.conditional_access_per_s),
                Duration::from_secs(1),
            ),
            Budget::Directory => (f64::from(t.directory_per_10s), Duration::from_secs(10)),
            Budget::DirectoryWrites => (
                f64::from(t.directory_writes_per_150s),
                Duration::from_secs(150),
            ),
            Budget::Other => (f64::INFINITY, Duration::from_secs(1)),
        }
    }
}

/// Resource units of a directory read, per Microsoft's "Identity and access service limits":
/// a base cost by endpoint (1 when not listed), `$select` −1, `$expand` +1, `$top` under 20 −1,
/// never below 1. `query_cost` carries the query adjustments.
fn directory_cost(path: &str, query_cost: i64) -> f64 {
    let segments: Vec<&str> = path.split('/').collect();
    let base: i64 = match segments.as_slice() {
        ["users"] => 2,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitiveMembers"] => 5,
        ["users", _, "memberOf"] => 2,
        ["users", _, "transitiveMemberOf"] => 5,
        _ => 1,
    };
    (base + query_cost).max(1) as f64
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BucketKey {
    pub tenant: String,
    /// Empty for per-tenant budgets.
    pub client: String,
    pub budget: Budget,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// How long until `cost` tokens are available (zero if they are now).
    fn wait_for(&self, cost: f64) -> Duration {
        if self.tokens >= cost {
            Duration::ZERO
        } else if self.per_sec <= 0.0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs_f64((cost - self.tokens) / self.per_sec)
        }
    }
}

/// Every bucket of every (tenant, app, budget).
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    buckets: HashMap<BucketKey, Bucket>,
}

/// A request was over budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverBudget {
    pub budget: Budget,
    /// Whole seconds, at least 1: what `Retry-After` says.
    pub retry_after_secs: u64,
}

impl Buckets {
    /// Takes the request's cost from all its buckets, or none of them if any is short.
    pub(crate) fn take(
        &mut self,
        limits: &Throttling,
        tenant: &str,
        client: &str,
        draws: &[(Budget, f64)],
        now: Instant,
    ) -> Result<(), OverBudget> {
        if !limits.enabled {
            return Ok(());
        }
        let mut worst: Option<(Budget, Duration)> = None;
        for (budget, cost) in draws {
            let bucket = self.bucket(limits, tenant, client, *budget, now);
            bucket.refill(now);
            let wait = bucket.wait_for(*cost);
            if wait > Duration::ZERO && worst.is_none_or(|(_, w)| wait > w) {
                worst = Some((*budget, wait));
            }
        }
        if let Some((budget, wait)) = worst {
            return Err(OverBudget {
                budget,
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        for (budget, cost) in draws {
            self.bucket(limits, tenant, client, *budget, now).tokens -= cost;
        }
        Ok(())
    }

    fn bucket(
        &mut self,
        limits: &Throttling,
        tenant: &str,
        client: &str,
        budget: Budget,
        now: Instant,
    ) -> &mut Bucket {
        let key = BucketKey {
            tenant: tenant.to_owned(),
            client: if budget.per_tenant() {
                String::new()
            } else {
                client.to_owned()
            },
            budget,
        };
        self.buckets.entry(key).or_insert_with(|| {
            let (capacity, window) = budget.limit(limits);
            Bucket {
                tokens: capacity,
                capacity,
                per_sec: capacity / window.as_secs_f64(),
                last: now,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_documented_budgets() {
        assert_eq!(
            Budget::of_path("deviceManagement/deviceConfigurations"),
            Budget::Intune
        );
        assert_eq!(
            Budget::of_path("identity/conditionalAccess/policies"),
            Budget::ConditionalAccess
        );
        assert_eq!(Budget::of_path("groups/delta"), Budget::Directory);
        assert_eq!(
            Budget::of_path("roleManagement/directory/roleDefinitions"),
            Budget::Directory
        );
        assert_eq!(Budget::of_path("me"), Budget::Other);
    }

    #[test]
    fn directory_costs_follow_the_query() {
        assert_eq!(directory_cost("users", 0), 2.0);
        assert_eq!(directory_cost("users", -1), 1.0);
        assert_eq!(directory_cost("groups", -2), 1.0);
        assert_eq!(directory_cost("groups/x/transitiveMembers", 1), 6.0);
    }

    #[test]
    fn an_empty_bucket_names_its_wait_and_takes_nothing() {
        let limits = Throttling {
            intune_per_20s: 2,
            intune_writes_per_20s: 1,
            ..Throttling::default()
        };
        let mut buckets = Buckets::default();
        let now = Instant::now();
        let write = Budget::draws("deviceManagement/x", true, 0);
        assert!(buckets.take(&limits, "t", "c", &write, now).is_ok());
        let over = buckets.take(&limits, "t", "c", &write, now);
        assert!(matches!(
            over,
            Err(OverBudget {
                budget: Budget::IntuneWrites,
                retry_after_secs: 20
            })
        ));
        // The refused write took nothing: one read still fits.
        let read = Budget::draws("deviceManagement/x", false, 0);
        assert!(buckets.take(&limits, "t", "c", &read, now).is_ok());
        assert!(buckets.take(&limits, "t", "c", &read, now).is_err());
    }
}
