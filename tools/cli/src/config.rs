//! Where the API and the token come from: flags, environment, or a profile file in the
//! user's config directory (`TENANTOPS_CONFIG_DIR` overrides it); `login` writes profiles,
//! and restore previews keep their confirmation tokens beside them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use tenantops_core::secret::SecretString;
use tenantops_core::{TenantId, WorkspaceId};

use crate::cli::Global;
use crate::error::CliError;

/// One profile: `profiles/{name}.json`.
#[derive(Default, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// A token kept in the file (the local stack's); `token_command` is preferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// Who the profile signs in as, for humans (a demo role, or a note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_command", &self.token_command)
            .field("workspace", &self.workspace)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// What a command runs with.
#[derive(Debug)]
pub struct Settings {
    pub api: String,
    pub token: Option<SecretString>,
    pub workspace: Option<WorkspaceId>,
    pub tenant: Option<TenantId>,
}

/// The config directory.
pub fn dir() -> Result<PathBuf, CliError> {
    if let Some(d) = std::env::var_os("TENANTOPS_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("dev", "tenantops", "tenantops")
        .map(|d| d.config_dir().to_path_buf())
        .ok_or(CliError::NoConfigDir)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn profile_path(name: &str) -> Result<PathBuf, CliError> {
    if !is_name(name) {
        return Err(CliError::ProfileName(name.to_owned()));
    }
    Ok(dir()?.join("profiles").join(format!("{name}.json")))
}

/// The profile `name`, or none if it was never written.
pub fn load_profile(name: &str) -> Result<Option<Profile>, CliError> {
    let path = profile_path(name)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::File {
                what: "reading the profile",
                path,
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| CliError::FileJson {
            what: "a profile",
            path,
            source,
        })
}

pub fn save_profile(name: &str, profile: &Profile) -> Result<PathBuf, CliError> {
    let path = profile_path(name)?;
    let text = serde_json::to_vec_pretty(profile).map_err(|source| CliError::FileJson {
        what: "a profile",
        path: path.clone(),
        source,
    })?;
    write_private(&path, &text, "writing the profile")?;
    Ok(path)
}

/// Writes a file only its owner can read (it may hold a token).
pub fn write_private(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), CliError> {
    let err = |source| CliError::File {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// Flags and environment first, then the profile.
pub fn resolve(global: &Global) -> Result<Settings, CliError> {
    let profile = load_profile(&global.profile)?.unwrap_or_default();
    let api = global
        .api
        .clone()
        .or_else(|| profile.api.clone())
        .ok_or(CliError::NoApi)?;
    let token = if let Some(t) = &global.token {
        Some(t.0.clone())
    } else if let Some(cmd) = global
        .token_command
        .as_ref()
        .or(profile.token_command.as_ref())
    {
        Some(token_from_command(cmd)?)
    } else {
        profile.token.clone().map(SecretString::new)
    };
    Ok(Settings {
        api,
        token,
        workspace: global.workspace.or(profile.workspace),
        tenant: global.tenant.or(profile.tenant),
    })
}

/// Runs the identity provider's helper; its trimmed output, without a `Bearer ` prefix, is
/// the token. Its output is never shown.
pub fn token_from_command(command: &str) -> Result<SecretString, CliError> {
    let out = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(CliError::TokenCommandStart)?;
    if !out.status.success() {
        return Err(CliError::TokenCommandFailed(out.status.to_string()));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| CliError::TokenCommandEmpty)?;
    let token = text.trim().trim_start_matches("Bearer ").trim();
    if token.is_empty() || token == "null" || token.contains(char::is_whitespace) {
        return Err(CliError::TokenCommandEmpty);
    }
    Ok(SecretString::new(token))
}

fn confirmation_path(restore: &str) -> Result<PathBuf, CliError> {
    if !is_name(restore) {
        return Err(CliError::BadId(restore.chars().take(64).collect()));
    }
    Ok(dir()?.join("restores").join(format!("{restore}.token")))
}

/// Keeps a preview's confirmation token for `restores execute`.
pub fn save_confirmation(restore: &str, token: &SecretString) -> Result<PathBuf, CliError> {
    let path = confirmation_path(restore)?;
    write_private(
        &path,
        token.expose().as_bytes(),
        "keeping the confirmation token",
    )?;
    Ok(path)
}

/// The confirmation token a preview of `restore` kept here.
pub fn load_confirmation(restore: &str) -> Result<SecretString, CliError> {
    let path = confirmation_path(restore)?;
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(SecretString::new(t.trim())),
        Ok(_) => Err(CliError::NoConfirmationToken(restore.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(CliError::NoConfirmationToken(restore.to_owned()))
        }
        Err(source) => Err(CliError::File {
            what: "reading the confirmation token",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names_only() {
        assert!(is_name("default"));
        assert!(is_name("prod-eu_1"));
        assert!(!is_name("../x"));
        assert!(!is_name(""));
        assert!(!is_name("a/b"));
    }

    #[test]
    fn a_profile_never_debugs_its_token() {
        let p = Profile {
            token: Some("tok-secret".into()),
            ..Profile::default()
        };
        assert!(!format!("{p:?}").contains("tok-secret"));
    }
}
