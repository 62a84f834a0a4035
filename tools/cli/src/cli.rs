//! The command line's grammar (clap derive): global flags, then a resource noun and its verb.

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tenantops_core::secret::SecretString;
use tenantops_core::{OperationType, RunId, TenantId, UserId, WorkspaceId};

mod batches;
mod drift;
mod webhooks;

pub use batches::BatchesCmd;
pub use drift::DriftCmd;
pub use webhooks::WebhooksCmd;

#[derive(Debug, Parser)]
#[command(
    name = "tenantops",
    version,
    about = "The tenantops command line: runs, backups, schedules and restores of your customer tenants.",
    after_help = "Configuration: --api/--token flags, TENANTOPS_API/TENANTOPS_TOKEN, or a profile written by `tenantops login`. Exit codes of watched runs: 0 succeeded, 2 partially succeeded, 1 failed or cancelled."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// A token given on the command line or in the environment; never printed.
#[derive(Clone)]
pub struct TokenArg(pub SecretString);

impl fmt::Debug for TokenArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenArg(<redacted>)")
    }
}

impl FromStr for TokenArg {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(SecretString::new(s)))
    }
}

#[derive(Debug, Args)]
pub struct Global {
    /// The API's base URL, e.g. http://127.0.0.1:3000
    #[arg(long, global = true, env = "TENANTOPS_API")]
    pub api: Option<String>,
    /// A bearer token (a profile's --token-command avoids keeping one around)
    #[arg(long, global = true, env = "TENANTOPS_TOKEN", hide_env_values = true)]
    pub token: Option<TokenArg>,
    /// A command that prints a token (your identity provider's helper), run with `sh -c`
    #[arg(long, global = true, env = "TENANTOPS_TOKEN_COMMAND")]
    pub token_command: Option<String>,
    /// The profile to read (and `login` to write) in the config directory
    #[arg(
        long,
        global = true,
        env = "TENANTOPS_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// The workspace (default: the profile's)
    #[arg(long, short = 'w', global = true, env = "TENANTOPS_WORKSPACE")]
    pub workspace: Option<WorkspaceId>,
    /// The customer tenant (default: the profile's)
    #[arg(long, short = 't', global = true, env = "TENANTOPS_TENANT")]
    pub tenant: Option<TenantId>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a profile: the API's URL and how to get a token
    Login(LoginArgs),
    /// Your workspaces
    #[command(subcommand)]
    Workspaces(WorkspacesCmd),
    /// The workspace's customer tenants
    #[command(subcommand)]
    Tenants(TenantsCmd),
    /// The workspace's members and their roles
    #[command(subcommand)]
    Members(MembersCmd),
    /// Operation runs: start, list, show, watch, cancel
    #[command(subcommand)]
    Runs(RunsCmd),
    /// The tenant's backup sets
    #[command(subcommand, visible_alias = "backup")]
    Backups(BackupsCmd),
    /// Batches: one type's run in many tenants at once
    #[command(subcommand, visible_alias = "batch")]
    Batches(BatchesCmd),
    /// The tenant's drift reports: list, view, accept, revert
    #[command(subcommand)]
    Drift(DriftCmd),
    /// The tenant's backup schedules
    #[command(subcommand)]
    Schedules(SchedulesCmd),
    /// The workspace's own backup schedules, over all its tenants or a tag's
    #[command(subcommand, visible_alias = "ws-schedules")]
    WorkspaceSchedules(WorkspaceSchedulesCmd),
    /// Restores: preview, show, execute
    #[command(subcommand)]
    Restores(RestoresCmd),
    /// The workspace's webhook subscriptions and their deliveries
    #[command(subcommand, visible_alias = "webhook")]
    Webhooks(WebhooksCmd),
    /// The tenant's last observed objects
    Inventory(InventoryArgs),
    /// The workspace's audit log, newest first
    Audit(AuditArgs),
    /// Your runs' queued and finished notices
    Notifications(NotificationsArgs),
    /// The system plane, for platform operators: runs and workspaces across every workspace
    #[command(subcommand)]
    System(SystemCmd),
    /// Prints a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Use the local stack (`cargo xtask local`): its API and a demo user's token
    #[arg(long)]
    pub local: bool,
    /// The local stack's file
    #[arg(long, default_value = ".local/stack.json")]
    pub stack: PathBuf,
    /// The demo user to sign in as (owner, manager, operator, readonly, outsider, or the
    /// platform operator: platform)
    #[arg(long, default_value = "owner")]
    pub user: String,
}

#[derive(Debug, Args, Default)]
pub struct PageArgs {
    /// At most this many items
    #[arg(long)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCmd {
    /// The workspaces you belong to, with your role
    List,
    /// The --workspace: name, settings, your role, counts and attention
    Show,
    /// A new workspace (you become its owner)
    Create { name: String },
    /// Changes the workspace's settings (owners)
    Settings {
        /// Allow restores of high-risk object types
        #[arg(long, action = clap::ArgAction::Set)]
        restore_high_risk: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCmd {
    /// The workspace's tenants
    List {
        /// Only the tenants carrying this tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// One tenant (--tenant)
    Show,
    /// Adds a customer tenant by its Entra tenant id
    Create {
        #[arg(long)]
        entra_tenant_id: String,
        #[arg(long)]
        name: String,
    },
    /// Renames the tenant
    Rename {
        #[arg(long)]
        name: String,
    },
    /// Sets the tenant's tags: the whole set, replacing the current one (none: removes all)
    Tag { tags: Vec<String> },
    /// Archives the tenant: no new runs, history kept
    Archive,
    /// Where onboarding stands and what blocks it
    Onboarding,
    /// The tenant's provider connection (metadata; never the secret)
    Connection,
    /// Stores or rotates the tenant's app registration; the secret is read from
    /// TENANTOPS_CLIENT_SECRET or the first line of standard input
    Connect {
        #[arg(long)]
        client_id: String,
        /// When the secret expires (RFC 3339)
        #[arg(long)]
        secret_expires_at: Option<String>,
    },
    /// The tenant's cached directory groups (for restore mappings)
    Groups {
        /// Display-name prefix
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Owner,
    Manager,
    Operator,
    Readonly,
}

impl RoleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Owner => "owner",
            RoleArg::Manager => "manager",
            RoleArg::Operator => "operator",
            RoleArg::Readonly => "readonly",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MembersCmd {
    /// Members and roles
    List,
    /// Adds a member or changes their role (their user id is their token's `sub`)
    Set {
        user: UserId,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Removes a member
    Remove { user: UserId },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Queued,
    Running,
    Completed,
}

/// A problem class of runs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProblemArg {
    /// Finished failed
    Failed,
    /// Finished partially succeeded
    Partial,
    /// Failed because no worker finished it (run.stale, worker.exhausted)
    Stale,
    /// Queued or running past its expected duration
    Stuck,
}

impl ProblemArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemArg::Failed => "failed",
            ProblemArg::Partial => "partial",
            ProblemArg::Stale => "stale",
            ProblemArg::Stuck => "stuck",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Runs across every workspace, newest first (every read is audited in its workspace)
    Runs {
        /// Only this workspace's runs (else every workspace's)
        #[arg(long = "in-workspace", value_name = "WORKSPACE")]
        workspace: Option<WorkspaceId>,
        /// Only this tenant's runs
        #[arg(long = "of-tenant", value_name = "TENANT")]
        tenant: Option<TenantId>,
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<OperationType>,
        #[arg(long, value_enum)]
        problem: Option<ProblemArg>,
        /// Only queued and running runs
        #[arg(long)]
        active: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Any run, with its system links
    Run { run: RunId },
    /// Every workspace with its counts
    Workspaces {
        #[command(flatten)]
        page: PageArgs,
    },
    /// One workspace: its tenants' connection and onboarding, its recent problem runs
    Workspace { workspace: WorkspaceId },
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Follow the run until it completes; the exit code follows its outcome
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Starts a run on the tenant, e.g. `inventory.sync`
    Start {
        /// The operation type
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The type's params, as JSON
        #[arg(long)]
        params: Option<String>,
        /// Makes a retried start return the same run (types without their own dedupe)
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// The workspace's runs, newest first
    List {
        /// Only the --tenant's runs
        #[arg(long)]
        tenant_only: bool,
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only queued and running runs
        #[arg(long)]
        active: bool,
        /// Only runs of this problem class
        #[arg(long, value_enum)]
        problem: Option<ProblemArg>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One run: status, counters, failures
    Show { run: RunId },
    /// Follows a run until it completes; the exit code follows its outcome
    Watch { run: RunId },
    /// Cancels a queued or running run
    Cancel { run: RunId },
}

#[derive(Debug, Subcommand)]
pub enum BackupsCmd {
    /// The tenant's backup sets, newest first
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// One backup set and its manifest entries
    Show {
        set: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// What changed from one backup set to another: objects added, removed and changed, and
    /// a changed object's fields
    Diff { from: String, to: String },
}

#[derive(Debug, Args, Default)]
pub struct ScheduleFields {
    /// What the slots start: `backup` (the default) or `drift_check` (no retention); set at
    /// creation only
    #[arg(long, value_parser = ["backup", "drift_check"])]
    pub kind: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// `daily:HH:MM`, `hourly:MM`, `weekly:DAY:HH:MM`, `cron:EXPR`, or the cadence as JSON
    #[arg(long)]
    pub cadence: Option<String>,
    /// An IANA timezone (default UTC)
    #[arg(long)]
    pub timezone: Option<String>,
    /// Object types in scope, comma separated (default: every backup-capable type)
    #[arg(long, value_delimiter = ',')]
    pub types: Option<Vec<String>>,
    /// Keep the newest N sets
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep sets younger than N days
    #[arg(long)]
    pub keep_days: Option<u32>,
    #[arg(long, action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCmd {
    /// A new schedule (needs --cadence, and a retention unless --kind drift_check)
    Create(ScheduleFields),
    /// The tenant's schedules
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// One schedule
    Show { schedule: String },
    /// Changes the given fields of a schedule
    Update {
        schedule: String,
        #[command(flatten)]
        fields: ScheduleFields,
    },
    /// Deletes a schedule (its runs and backup sets stay)
    Delete { schedule: String },
    /// A backup (a drift check, for a drift schedule) of the schedule's scope now
    RunNow {
        schedule: String,
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Retries a failed or partially succeeded run of the schedule
    Retry {
        schedule: String,
        #[arg(long)]
        run: RunId,
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
}

/// A workspace schedule's targets: every active tenant, or a tag's.
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct ScheduleTargets {
    /// Every active tenant of the workspace
    #[arg(long)]
    pub all: bool,
    /// The active tenants carrying this tag
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceSchedulesCmd {
    /// A new schedule over the workspace's tenants: each slot fires one batch (needs
    /// --cadence, a retention, and --all or --tag)
    Create {
        #[command(flatten)]
        fields: ScheduleFields,
        #[command(flatten)]
        targets: ScheduleTargets,
    },
    /// The workspace's own schedules
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// One schedule
    Show { schedule: String },
    /// Changes the given fields (and targets) of a schedule
    Update {
        schedule: String,
        #[command(flatten)]
        fields: ScheduleFields,
        #[command(flatten)]
        targets: ScheduleTargets,
    },
    /// Deletes a schedule (its batches, runs and backup sets stay)
    Delete { schedule: String },
}

#[derive(Debug, Subcommand)]
pub enum RestoresCmd {
    /// A dry run of restoring a backup set (or some of its items); the confirmation token is
    /// kept in the config directory for `restores execute`
    Preview {
        #[arg(long)]
        backup_set: String,
        /// `[{"object_type", "object_id"}]`, as JSON (default: the whole set)
        #[arg(long)]
        items: Option<String>,
        /// `{"groups": {old: new}, "filters": {...}, "drop": [...]}`, as JSON
        #[arg(long)]
        mapping: Option<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// A restore, its summary and a page of its items
    Show {
        restore: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Executes a previewed restore after you type the tenant's display name
    Execute {
        restore: String,
        /// Do not ask: execute at once
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        watch: WatchArgs,
    },
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// A registry object type, e.g. deviceConfigurations
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this action, e.g. restore.executed
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries about the --tenant
    #[arg(long)]
    pub tenant_only: bool,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    #[arg(long)]
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tenantops").chain(args.iter().copied()))
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_batch_names_exactly_one_kind_of_target() {
        let t = "01JD0000000000000000000003";
        let ok = parse(&[
            "batch",
            "start",
            "--type",
            "inventory.sync",
            "--tenants",
            &format!("{t},{t}"),
        ])
        .expect("a tenant list");
        let Command::Batches(BatchesCmd::Start { tenants, all, .. }) = ok.command else {
            panic!("not a batch start");
        };
        assert_eq!(tenants.len(), 2);
        assert!(!all);
        assert!(
            parse(&[
                "batch",
                "start",
                "--type",
                "inventory.sync",
                "--all",
                "--wait"
            ])
            .is_ok()
        );
        assert!(parse(&["batches", "start", "--type", "x", "--tag", "gold"]).is_ok());
        for bad in [
            vec!["batch", "start", "--type", "inventory.sync"],
            vec![
                "batch",
                "start",
                "--type",
                "inventory.sync",
                "--all",
                "--tag",
                "gold",
            ],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_revert_names_all_or_items() {
        let r = "01JD0000000000000000000005";
        assert!(parse(&["drift", "revert", r, "--all"]).is_ok());
        assert!(parse(&["drift", "revert", r, "--item", "a/b", "--item", "c/d"]).is_ok());
        assert!(parse(&["drift", "revert", r]).is_err());
        assert!(parse(&["drift", "revert", r, "--all", "--item", "a/b"]).is_err());
        assert!(parse(&["backup", "diff", "A", "B"]).is_ok());
    }
}
