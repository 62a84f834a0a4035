//! Executing a claimed run: dispatch by its operation type to the job that does it, and turn
//! how the job ended into what the handler does next. What jobs share is in [`crate::job`].

use std::time::Duration;

use tenantops_core::OperationType;

use crate::job::{Job, Report, Stop};
use crate::{backup, drift, preview, restore, sync, verify};

/// What the handler does with the run next.
#[derive(Debug)]
pub enum Execution {
    /// Finish it with this report.
    Done(Report),
    /// Throttled for longer than a Lambda should sleep: come back after this long.
    HandBack(Duration),
    /// Checkpointed near the deadline: hand the run on to a new invocation now.
    Continue,
}

pub async fn execute(job: Job<'_>) -> Execution {
    let result = match job.run.operation {
        OperationType::InventorySync => sync::inventory(job).await,
        OperationType::DirectoryGroupsSync => sync::groups(job).await,
        OperationType::DirectoryRoleDefinitionsSync => sync::role_definitions(job).await,
        OperationType::ProviderConnectionVerify => verify::check(job).await,
        OperationType::BackupScheduleRunNow
        | OperationType::BackupScheduleRetry
        | OperationType::BackupScheduleScheduled => backup::backup(job).await,
        OperationType::RestorePreview => preview::preview(job).await,
        OperationType::RestoreExecute => restore::execute(job).await,
        OperationType::DriftCheck | OperationType::DriftScheduled => drift::check(job).await,
    };
    match result {
        Ok(report) => Execution::Done(report),
        Err(Stop::HandBack(after)) => Execution::HandBack(after),
        Err(Stop::Continue) => Execution::Continue,
        Err(Stop::Fail(code)) => Execution::Done(Report::failed(code)),
        Err(Stop::Cancelled) => Execution::Done(Report::cancelled()),
    }
}
