//! Runs a parsed command line: resolves the settings, builds the client, dispatches to the
//! resource's module, and answers the exit code.

mod admin;
mod batches;
mod data;
mod drift;
mod login;
mod restores;
mod runs;
mod schedules;
mod system;
mod webhooks;

use clap::CommandFactory;
use tenantops_client::{Client, PageQuery};
use tenantops_core::{TenantId, WorkspaceId};

use crate::cli::{Cli, Command, PageArgs};
use crate::config;
use crate::error::CliError;
use crate::output::Output;

/// What a command runs with.
#[derive(Debug)]
pub struct Ctx {
    pub client: Client,
    pub out: Output,
    workspace: Option<WorkspaceId>,
    tenant: Option<TenantId>,
}

impl Ctx {
    pub fn workspace(&self) -> Result<WorkspaceId, CliError> {
        self.workspace.ok_or(CliError::NoWorkspace)
    }

    /// The workspace and the tenant, both needed.
    pub fn tenant(&self) -> Result<(WorkspaceId, TenantId), CliError> {
        Ok((self.workspace()?, self.tenant.ok_or(CliError::NoTenant)?))
    }
}

pub fn page(p: &PageArgs) -> PageQuery {
    PageQuery {
        limit: p.limit,
        cursor: p.cursor.clone(),
    }
}

/// Runs the command; the exit code on success (a watched run's outcome, else 0).
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let Cli { global, command } = cli;
    let out = Output { json: global.json };
    let command = match command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "tenantops", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Login(args) => return login::login(&global, &args, out).await,
        other => other,
    };
    let settings = config::resolve(&global)?;
    let ctx = Ctx {
        client: Client::new(&settings.api, settings.token)?,
        out,
        workspace: settings.workspace,
        tenant: settings.tenant,
    };
    match command {
        Command::Workspaces(c) => admin::workspaces(&ctx, c).await,
        Command::Tenants(c) => admin::tenants(&ctx, c).await,
        Command::Members(c) => admin::members(&ctx, c).await,
        Command::Runs(c) => runs::runs(&ctx, c).await,
        Command::Backups(c) => data::backups(&ctx, c).await,
        Command::Batches(c) => batches::batches(&ctx, c).await,
        Command::Drift(c) => drift::drift(&ctx, c).await,
        Command::Schedules(c) => schedules::schedules(&ctx, c).await,
        Command::WorkspaceSchedules(c) => schedules::workspace_schedules(&ctx, c).await,
        Command::Restores(c) => restores::restores(&ctx, c).await,
        Command::Webhooks(c) => webhooks::webhooks(&ctx, c).await,
        Command::Inventory(a) => data::inventory(&ctx, a).await,
        Command::Audit(a) => data::audit(&ctx, a).await,
        Command::Notifications(a) => data::notifications(&ctx, a).await,
        Command::System(c) => system::system(&ctx, c).await,
        Command::Completions { .. } | Command::Login(_) => Ok(0),
    }
}
