//! Problem classes: which runs need someone's attention. The same four classes filter both
//! planes' run lists and make a tenant's "attention" counts.

use chrono::{DateTime, Utc};

use crate::reason::ReasonCode;
use crate::run::{Outcome, Run, RunStatus};

/// A class of runs that need attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemClass {
    /// Finished `failed`, for whatever reason.
    Failed,
    /// Finished `partially_succeeded`.
    Partial,
    /// Failed because no worker ever finished it: `run.stale` (the reaper gave up on a lost
    /// message) or `worker.exhausted` (its message went to the dead-letter queue).
    Stale,
    /// Still queued or running past its expected duration.
    Stuck,
}

impl ProblemClass {
    pub const ALL: [ProblemClass; 4] = [
        ProblemClass::Failed,
        ProblemClass::Partial,
        ProblemClass::Stale,
        ProblemClass::Stuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemClass::Failed => "failed",
            ProblemClass::Partial => "partial",
            ProblemClass::Stale => "stale",
            ProblemClass::Stuck => "stuck",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The finish reasons that make a failed run stale.
    pub const STALE_REASONS: [ReasonCode; 2] = [ReasonCode::RunStale, ReasonCode::WorkerExhausted];

    /// Whether `run` is of this class at `now`, a run being stuck once it has been active
    /// for `stuck_after`. (The store filters by the same rules inside its queries; this is
    /// the rule in one place, for tests and in-memory callers.)
    pub fn matches(self, run: &Run, now: DateTime<Utc>, stuck_after: chrono::Duration) -> bool {
        match self {
            ProblemClass::Failed => run.outcome == Outcome::Failed,
            ProblemClass::Partial => run.outcome == Outcome::PartiallySucceeded,
            ProblemClass::Stale => {
                run.outcome == Outcome::Failed
                    && run
                        .failures
                        .iter()
                        .any(|f| Self::STALE_REASONS.contains(&f.code))
            }
            ProblemClass::Stuck => {
                run.status != RunStatus::Completed && run.created_at + stuck_after <= now
            }
        }
    }
}

/// How many of a set of runs fall in each class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attention {
    pub failed: u32,
    pub partial: u32,
    pub stale: u32,
    pub stuck: u32,
}

impl Attention {
    pub fn count(&mut self, class: ProblemClass) {
        let n = match class {
            ProblemClass::Failed => &mut self.failed,
            ProblemClass::Partial => &mut self.partial,
            ProblemClass::Stale => &mut self.stale,
            ProblemClass::Stuck => &mut self.stuck,
        };
        *n += 1;
    }

    /// The runs counted, each once (a stale run is also failed).
    pub fn total(&self) -> u32 {
        self.failed + self.partial + self.stuck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_parse_as_they_print() {
        for c in ProblemClass::ALL {
            assert_eq!(ProblemClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(ProblemClass::parse("broken"), None);
    }
}
