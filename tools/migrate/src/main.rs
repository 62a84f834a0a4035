//! `tenantops-migrate <migration> --table NAME`: runs one data migration of
//! `tenantops_aws::migrations` against a deployment's table, with the standard AWS
//! environment (profile, region, credentials). Idempotent: a rerun changes nothing.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};

const USAGE: &str = "usage: tenantops-migrate platform-index --table NAME";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (migration, table) = match args.as_slice() {
        [m, flag, table] if flag == "--table" => (m.as_str(), table.as_str()),
        _ => bail!("{USAGE}"),
    };
    let sdk = tenantops_aws::config::load().await;
    let store = tenantops_aws::Store::from_sdk(&sdk, table);
    match migration {
        "platform-index" => {
            let done = store
                .migrate_platform_index()
                .await
                .context("migrating the platform index")?;
            println!(
                "platform-index on {table}: {} run and workspace items lacked GSI5 keys, {} updated",
                done.found, done.updated
            );
        }
        other => bail!("no migration named {other}; {USAGE}"),
    }
    Ok(())
}
