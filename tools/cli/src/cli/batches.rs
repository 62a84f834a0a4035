//! `tenantops batch ...`: one type's run in many tenants.

use clap::{ArgGroup, Subcommand};
use tenantops_core::{BatchId, TenantId};

#[derive(Debug, Subcommand)]
pub enum BatchesCmd {
    /// Starts a type's run in every targeted tenant, e.g.
    /// `batch start --type backup_schedule.run_now --all --wait`
    #[command(group(ArgGroup::new("targets").required(true).multiple(false)))]
    Start {
        /// The operation type
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// The type's params, as JSON (applied to every tenant)
        #[arg(long)]
        params: Option<String>,
        /// Every active tenant of the workspace
        #[arg(long, group = "targets")]
        all: bool,
        /// The active tenants carrying this tag
        #[arg(long, group = "targets")]
        tag: Option<String>,
        /// These tenants, comma separated or repeated (`--tenant` is the one tenant of other
        /// commands)
        #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1.., group = "targets")]
        tenants: Vec<TenantId>,
        /// Tenants left out, comma separated or repeated
        #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1..)]
        exclude: Vec<TenantId>,
        /// Makes a retried start answer the batch it created
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the batch until every child is done; the exit code follows its status
        #[arg(long, visible_alias = "watch")]
        wait: bool,
    },
    /// A batch: status, counts, failed tenants with reasons, one line per child
    #[command(visible_alias = "show")]
    View { batch: BatchId },
    /// Cancels a batch: no child starts after it, its queued children are cancelled
    Cancel { batch: BatchId },
    /// Confirms a restore batch (`--type restore.preview`) once its previews are done: its
    /// restores are executed, as a new batch, after you type the number of tenants (the token
    /// its start kept in the config directory is sent)
    Execute {
        batch: BatchId,
        /// Do not ask: execute at once
        #[arg(long)]
        yes: bool,
        /// Follow the execution batch until every child is done
        #[arg(long, visible_alias = "watch")]
        wait: bool,
    },
    /// Retries the tenants whose child failed or was refused, as a new batch
    Retry {
        batch: BatchId,
        /// Makes a retried request answer the retry batch it created
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the new batch until every child is done; the exit code follows its status
        #[arg(long, visible_alias = "watch")]
        wait: bool,
    },
}
