//! `tenantops drift ...`: a tenant's drift reports.

use clap::Subcommand;
use tenantops_core::RunId;

use super::{PageArgs, WatchArgs};

#[derive(Debug, Subcommand)]
pub enum DriftCmd {
    /// The tenant's drift reports, newest first
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// A report: its counts and a page of its items (what changed, which fields, who)
    #[command(visible_alias = "show")]
    View {
        report: RunId,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Accepts a report: backs up its types now, the tenant's state becoming the baseline
    Accept {
        report: RunId,
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Reverts items of a report: a restore preview of its baseline for exactly those
    /// (then `tenantops restores execute`)
    Revert {
        report: RunId,
        /// Every changed and removed object of the report
        #[arg(long, conflicts_with = "item", required_unless_present = "item")]
        all: bool,
        /// An object of the report, as TYPE/ID (repeat for more)
        #[arg(long, value_name = "TYPE/ID")]
        item: Vec<String>,
        /// `{"groups": {old: new}, "filters": {...}, "drop": [...]}`, as JSON
        #[arg(long)]
        mapping: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
}
