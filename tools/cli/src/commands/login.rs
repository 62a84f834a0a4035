//! `tenantops login`: writes a profile after checking that the API accepts its token.
//! `--local` reads the local stack's `.local/stack.json` (its API and a demo user's token).

use serde_json::{Value, json};
use tenantops_client::Client;
use tenantops_core::secret::SecretString;

use crate::cli::{Global, LoginArgs};
use crate::config::{self, Profile};
use crate::error::CliError;
use crate::output::{self, Output};

fn from_stack(global: &Global, args: &LoginArgs) -> Result<Profile, CliError> {
    let path = &args.stack;
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        what: "reading the local stack's file (is `cargo xtask local` running?)",
        path: path.clone(),
        source,
    })?;
    let stack: Value = serde_json::from_str(&text).map_err(|source| CliError::FileJson {
        what: "the local stack",
        path: path.clone(),
        source,
    })?;
    let api = stack["api_url"]
        .as_str()
        .ok_or_else(|| CliError::Stack(format!("{} has no api_url", path.display())))?;
    let token = stack["tokens"][args.user.as_str()]
        .as_str()
        .ok_or_else(|| {
            let users: Vec<&str> = stack["tokens"]
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            CliError::Stack(format!(
                "{} has no token for `{}` (users: {})",
                path.display(),
                args.user,
                users.join(", ")
            ))
        })?;
    let workspace = stack["workspace_id"].as_str().and_then(|s| s.parse().ok());
    let tenant = stack["tenant_id"].as_str().and_then(|s| s.parse().ok());
    Ok(Profile {
        api: Some(api.to_owned()),
        token: Some(token.to_owned()),
        token_command: None,
        workspace: global.workspace.or(workspace),
        tenant: global.tenant.or(tenant),
        user: Some(args.user.clone()),
    })
}

pub async fn login(global: &Global, args: &LoginArgs, out: Output) -> Result<u8, CliError> {
    let profile = if args.local {
        from_stack(global, args)?
    } else {
        Profile {
            api: Some(global.api.clone().ok_or(CliError::NoApi)?),
            token: global.token.as_ref().map(|t| t.0.expose().to_owned()),
            token_command: global.token_command.clone(),
            workspace: global.workspace,
            tenant: global.tenant,
            user: None,
        }
    };
    let api = profile.api.clone().ok_or(CliError::NoApi)?;
    let token = match (&profile.token_command, &profile.token) {
        (Some(cmd), _) => Some(config::token_from_command(cmd)?),
        (None, Some(t)) => Some(SecretString::new(t.as_str())),
        (None, None) => None,
    };
    // A profile is written only once the API accepted its token.
    let workspaces = Client::new(&api, token)?.list_workspaces().await?;
    let path = config::save_profile(&global.profile, &profile)?;
    let summary = json!({
        "profile": global.profile,
        "path": path,
        "api": api,
        "user": profile.user,
        "workspace": profile.workspace,
        "tenant": profile.tenant,
        "workspaces": workspaces.items.len(),
    });
    out.show(&summary, || {
        output::line(&format!(
            "profile `{}` ({}): {api}, {} workspace(s) visible",
            global.profile,
            path.display(),
            workspaces.items.len()
        ))?;
        if let Some(user) = &profile.user {
            output::line(&format!("  signed in as the demo {user}"))?;
        }
        if let Some(ws) = profile.workspace {
            output::line(&format!("  workspace {ws}"))?;
        }
        if let Some(t) = profile.tenant {
            output::line(&format!("  tenant {t}"))?;
        }
        Ok(())
    })?;
    Ok(0)
}
