//! The store's public face: the handle and the types of every aggregate's writes, under the
//! paths other crates use (`tenantops_aws::store::X`). The code lives by aggregate: runs
//! ([`crate::runs`], [`crate::transitions`]), transactions ([`crate::transactions`]),
//! workspaces and members, tenants, connections, audit, notifications, backups, restores,
//! schedules and tenant data; the item layer beneath them is [`crate::item`],
//! [`crate::expr`] and [`crate::table`].

pub use crate::audit::AuditEntry;
pub use crate::runs::{
    IDEMPOTENCY_WINDOW, ProblemFilter, RunPage, RunQuery, StartQuota, StartRun, Started,
};
pub use crate::table::Store;
pub use crate::tenants::{TenantRecord, TenantStatus};
pub use crate::transactions::{MemberGuard, Precondition, Rejection, WriteError};
pub use crate::transitions::Progressed;
