//! The run record.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ids::{BatchId, RunId, TenantId, UserId, WorkspaceId};
use crate::operation::OperationType;
use crate::reason::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 3] = [RunStatus::Queued, RunStatus::Running, RunStatus::Completed];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
        }
    }

    pub fn is_active(self) -> bool {
        self != RunStatus::Completed
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Succeeded,
    PartiallySucceeded,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Succeeded => "succeeded",
            Outcome::PartiallySucceeded => "partially_succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Who started a run: a user, or the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiator {
    User(UserId),
    Scheduler,
}

const SCHEDULER: &str = "system:scheduler";

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Initiator::User(u) => f.write_str(u.as_str()),
            Initiator::Scheduler => f.write_str(SCHEDULER),
        }
    }
}

impl Serialize for Initiator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Initiator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == SCHEDULER {
            Ok(Initiator::Scheduler)
        } else {
            s.parse()
                .map(Initiator::User)
                .map_err(serde::de::Error::custom)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A user through the API.
    Manual,
    /// The scheduler, for a schedule slot.
    Schedule,
    /// A user retrying an earlier run.
    Retry,
    /// A user's batch over many tenants (`context.batch_id` names it).
    Batch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    pub trigger: Trigger,
    /// What the run covers: "tenant" or the object types it is limited to.
    pub target_scope: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_schedule_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::option"
    )]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RunId>,
    /// The batch that started the run (see `crate::batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<BatchId>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: ReasonCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<String>,
}

impl Failure {
    /// A failure with the code's own safe message.
    pub fn of(code: ReasonCode) -> Self {
        Self {
            code,
            message: code.message().to_owned(),
            object_ref: None,
        }
    }
}

/// One operation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub operation: OperationType,
    pub status: RunStatus,
    pub outcome: Outcome,
    pub identity: String,
    pub initiator: Initiator,
    pub params: Value,
    pub context: RunContext,
    pub counters: Counters,
    pub failures: Vec<Failure>,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Until when the worker that claimed the run owns it; past it, another may re-claim.
    #[serde(default, with = "crate::time::option")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// When someone asked a running run to stop: the worker stops at its next checkpoint
    /// (a progress write) and finishes it `cancelled`. Absent until then; never written as
    /// null, since the checkpoint's condition is that the attribute does not exist.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::option"
    )]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// What the run found, for types that report (e.g. a connection check's checks).
    #[serde(default)]
    pub result: Option<Value>,
    /// Where a run that continues across invocations stands: saved under the lease before
    /// an invocation's deadline, resumed by the next claim, removed by the finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// A resumable run's saved position: the counters as of the checkpoint and the job's own
/// resume state (page links, pages done, items done; bulky state lives in S3, so this stays
/// far below DynamoDB's 400 KB item limit). Counters and state are written together, so a
/// claim that resumes from it never counts work twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub counters: Counters,
    /// Job-specific and opaque to everything but its job.
    pub state: Value,
    #[serde(with = "crate::time")]
    pub saved_at: DateTime<Utc>,
}
