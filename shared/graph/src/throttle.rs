//! Staying inside Microsoft's budgets, and backing off when told to.
//!
//! Each (tenant, app, budget) has a token bucket sized below the documented limit, so the
//! client rarely meets a 429. When it does, `Retry-After` (seconds or an HTTP date) is
//! honoured for every request of that bucket, not only the one that was throttled; without
//! it, exponential backoff with full jitter, bounded.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;

use crate::registry::Budget;

/// Who a budget belongs to: Entra tenant, app (client id), budget.
pub type BucketKey = (String, String, Budget);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// A wait longer than this is not slept in a billed Lambda: the run is handed back.
    pub handback_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            handback_after: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(cap, base · 2^attempt)].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let ceiling = exp.min(self.cap);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn quota(budget: Budget) -> Quota {
    // Sized a little under the documented limits, so bursts of parallel work stay inside.
    let per_second = |n: u32| NonZeroU32::new(n).map(Quota::per_second);
    match budget {
        // 1,000 per 20 s = 50/s; keep 45/s with a burst of 45.
        Budget::Intune => per_second(45),
        // 1 per second per tenant.
        Budget::ConditionalAccess => per_second(1),
        // Directory reads cost a few resource units each against thousands per 10 s.
        Budget::Directory => per_second(100),
    }
    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
}

/// The budgets of one process (one Lambda instance), shared by all its requests.
pub struct Budgets {
    limiters: HashMap<Budget, DefaultKeyedRateLimiter<(String, String)>>,
    /// Until when a bucket must stay silent because Graph said so.
    blocked: Mutex<HashMap<BucketKey, Instant>>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets").finish_non_exhaustive()
    }
}

impl Default for Budgets {
    fn default() -> Self {
        let limiters = [Budget::Intune, Budget::ConditionalAccess, Budget::Directory]
            .into_iter()
            .map(|b| (b, RateLimiter::keyed(quota(b))))
            .collect();
        Self {
            limiters,
            blocked: Mutex::new(HashMap::new()),
        }
    }
}

impl Budgets {
    /// How long the bucket is blocked by an earlier Retry-After, if at all.
    pub fn blocked_for(&self, key: &BucketKey) -> Option<Duration> {
        let blocked = self.blocked.lock().ok()?;
        let until = blocked.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    /// Graph asked this bucket to wait `d`.
    pub fn block(&self, key: BucketKey, d: Duration) {
        if let Ok(mut blocked) = self.blocked.lock() {
            let until = Instant::now() + d;
            let entry = blocked.entry(key).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
    }

    /// Waits for the bucket's next permit.
    pub async fn acquire(&self, key: &BucketKey) {
        if let Some(limiter) = self.limiters.get(&key.2) {
            limiter
                .until_key_ready(&(key.0.clone(), key.1.clone()))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_bounded_by_the_cap() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            assert!(p.backoff(attempt) <= p.cap);
        }
    }

    #[test]
    fn a_retry_after_blocks_the_whole_bucket() {
        let b = Budgets::default();
        let key = ("t".to_owned(), "c".to_owned(), Budget::Intune);
        assert!(b.blocked_for(&key).is_none());
        b.block(key.clone(), Duration::from_secs(5));
        assert!(
            b.blocked_for(&key)
                .is_some_and(|d| d <= Duration::from_secs(5))
        );
        let other = ("t".to_owned(), "c".to_owned(), Budget::Directory);
        assert!(b.blocked_for(&other).is_none());
    }
}
