//! tenantops domain: what an operation run is and who may do what with it.
//!
//! This crate knows nothing of AWS, HTTP or Lambda (see ARCHITECTURE.md). It holds the
//! operation-type registry, identity derivation, the run record and its state machine, the
//! capability registry, the links module (the only place that mints operations URLs) and the
//! reason codes that runs and problems carry.

pub mod backup;
pub mod batch;
pub mod capability;
pub mod drift;
pub mod identity;
pub mod ids;
pub mod links;
pub mod membership;
pub mod object_type;
pub mod operation;
pub mod params;
pub mod problem;
pub mod reason;
pub mod restore;
pub mod restore_map;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod state;
pub mod tag;
pub mod time;
pub mod webhook;

pub use capability::{Capability, Role};
pub use identity::{Click, Identity, IdentityError, LockKind};
pub use ids::{
    BackupSetId, BatchId, IdError, RestoreId, RunId, ScheduleId, TenantId, UserId, WebhookId,
    WorkspaceId,
};
pub use operation::{IdentityRule, OperationSpec, OperationType, UnknownOperationType};
pub use params::{OperationParams, ParamsError};
pub use reason::ReasonCode;
pub use run::{
    Checkpoint, Counters, Failure, Initiator, Outcome, Run, RunContext, RunStatus, Trigger,
};
pub use state::{NewRun, Transition, TransitionError};

/// Compares `actual` with `golden/{name}`; `UPDATE_GOLDEN=1` rewrites the file instead, for a
/// change that was reviewed.
#[cfg(test)]
pub(crate) fn check_golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("writing the golden file");
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual, golden,
        "{name} changed: review the change, then run the tests with UPDATE_GOLDEN=1"
    );
}
