//! The command line's errors. None of them carries a token: the token command's output and
//! the profile's token never reach a message.

use std::path::PathBuf;

use tenantops_client::Error as ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("no API URL: pass --api, set TENANTOPS_API, or run `tenantops login`")]
    NoApi,
    #[error("no workspace: pass --workspace (-w), set TENANTOPS_WORKSPACE, or log in with one")]
    NoWorkspace,
    #[error("no tenant: pass --tenant (-t), set TENANTOPS_TENANT, or log in with one")]
    NoTenant,
    #[error("the token command could not be run: {0}")]
    TokenCommandStart(#[source] std::io::Error),
    #[error("the token command failed ({0}); its output is not shown, since it may hold a token")]
    TokenCommandFailed(String),
    #[error("the token command printed no single token")]
    TokenCommandEmpty,
    #[error("no config directory: set TENANTOPS_CONFIG_DIR")]
    NoConfigDir,
    #[error("`{0}` is not a profile name (letters, digits, `-` and `_`)")]
    ProfileName(String),
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON for {what}: {source}")]
    FileJson {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Stack(String),
    #[error("--{flag} is not valid JSON: {source}")]
    ArgJson {
        flag: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("--cadence `{0}`: use daily:HH:MM, hourly:MM, weekly:DAY:HH:MM, cron:EXPR or JSON")]
    Cadence(String),
    #[error("the client secret: set TENANTOPS_CLIENT_SECRET or give it on standard input")]
    NoClientSecret,
    #[error("reading standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("writing the output: {0}")]
    Stdout(#[source] std::io::Error),
    #[error(
        "no confirmation token for restore {0} here: the API gives it once, to the preview that created the restore; preview again with `tenantops restores preview`"
    )]
    NoConfirmationToken(String),
    #[error("what was typed is not what was asked for: nothing was executed")]
    NotConfirmed,
    #[error("`{0}` is not an id the API answered")]
    BadId(String),
    #[error("--item `{0}`: use TYPE/ID, e.g. deviceConfigurations/<object id>")]
    ItemRef(String),
    #[error("drift report {0} has no changed or removed object to revert")]
    NothingToRevert(String),
}
