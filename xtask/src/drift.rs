//! `cargo xtask demo-drift [--stack FILE]`: makes the running local stack's demo tenant drift
//! from its backups as an administrator would in the Intune portal, through graph-sim's admin
//! routes (`/admin/tenants/{tenant}/...`), so that a restore preview has something to do:
//!
//! - edits a device restrictions policy's settings (`passwordMinimumLength`,
//!   `passwordRequired`): the preview shows an `update`;
//! - renames a compliance policy (a property): another `update`;
//! - deletes a device restrictions policy: a `create`.
//!
//! The policies picked are the first with a group assignment (so a restore has a target to
//! map); each run drifts again. The stack is read from `--stack`, else
//! `$TENANTOPS_STATE_DIR/stack.json` (where the local stack writes it), else
//! `.local/stack.json` at the repository root. graph-sim must be the stack's own (loopback).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::localstack::{field, http, loopback_addr, read_stack};

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const COMPLIANCE: &str = "deviceManagement/deviceCompliancePolicies";

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<ExitCode> {
    let stack_file = match args {
        [] => default_stack_file(root),
        [flag, file] if flag == "--stack" => PathBuf::from(file),
        _ => bail!("usage: cargo xtask demo-drift [--stack FILE]"),
    };
    let info = read_stack(&stack_file)?;
    let graph = field(&info, "/graph_base_url")?;
    let addr = loopback_addr(graph).with_context(|| {
        format!("the stack's Graph is {graph}: demo-drift changes only the local graph-sim")
    })?;
    let tenant = field(&info, "/entra_tenant_id")?;
    let admin = Admin { addr, tenant };
    println!("demo-drift: the demo tenant {tenant} (graph-sim at {graph})");

    let configs = admin.with_group_assignments(CONFIGS, 2)?;
    let [edited, deleted] = configs.as_slice() else {
        bail!("the demo tenant has fewer than 2 assigned device configurations");
    };
    let length = edited["passwordMinimumLength"].as_u64().unwrap_or(6);
    let required = edited["passwordRequired"].as_bool().unwrap_or(false);
    let changed = admin.patch(
        CONFIGS,
        edited,
        &json!({"passwordMinimumLength": length + 2, "passwordRequired": !required}),
    )?;
    println!(
        "  settings  deviceConfigurations/{} {}: passwordMinimumLength {length} → {}, passwordRequired {required} → {}",
        changed["id"].as_str().unwrap_or_default(),
        changed["displayName"],
        changed["passwordMinimumLength"],
        changed["passwordRequired"]
    );

    let compliance = admin.with_group_assignments(COMPLIANCE, 1)?;
    let [renamed] = compliance.as_slice() else {
        bail!("the demo tenant has no assigned compliance policy");
    };
    let name = renamed["displayName"].as_str().unwrap_or_default();
    let changed = admin.patch(
        COMPLIANCE,
        renamed,
        &json!({"displayName": format!("{name} (edited)"), "description": "Changed in the portal"}),
    )?;
    println!(
        "  property  deviceCompliancePolicies/{} \"{name}\" → {}",
        changed["id"].as_str().unwrap_or_default(),
        changed["displayName"]
    );

    admin.delete(CONFIGS, deleted)?;
    println!(
        "  deleted   deviceConfigurations/{} {}",
        deleted["id"].as_str().unwrap_or_default(),
        deleted["displayName"]
    );
    println!("An inventory sync lets tenantops see it; a restore preview then plans the repair.");
    Ok(ExitCode::SUCCESS)
}

fn default_stack_file(root: &Path) -> PathBuf {
    match std::env::var_os("TENANTOPS_STATE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("stack.json"),
        _ => root.join(".local").join("stack.json"),
    }
}

/// graph-sim's admin routes for one tenant.
struct Admin<'a> {
    addr: SocketAddr,
    tenant: &'a str,
}

impl Admin<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("/admin/tenants/{}/{path}", self.tenant);
        let (status, answer) = http(self.addr, method, &url, None, body)
            .with_context(|| format!("{method} {url} (is the local stack running?)"))?;
        if !(200..300).contains(&status) {
            bail!("{method} {url}: {status} {answer}");
        }
        Ok(answer)
    }

    /// The first `n` objects of the collection that are assigned to at least one group.
    fn with_group_assignments(&self, collection: &str, n: usize) -> anyhow::Result<Vec<Value>> {
        let listed = self.call("GET", collection, None)?;
        let mut found = Vec::new();
        for object in listed["value"].as_array().into_iter().flatten() {
            let id = object["id"].as_str().context("an object without id")?;
            let assignments = self.call("GET", &format!("{collection}/{id}/assignments"), None)?;
            let grouped = assignments["value"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a.pointer("/target/groupId").is_some_and(Value::is_string));
            if grouped {
                found.push(object.clone());
                if found.len() == n {
                    break;
                }
            }
        }
        Ok(found)
    }

    fn patch(&self, collection: &str, object: &Value, fields: &Value) -> anyhow::Result<Value> {
        let id = object["id"].as_str().context("an object without id")?;
        self.call("PATCH", &format!("{collection}/{id}"), Some(fields))
    }

    fn delete(&self, collection: &str, object: &Value) -> anyhow::Result<()> {
        let id = object["id"].as_str().context("an object without id")?;
        self.call("DELETE", &format!("{collection}/{id}"), None)
            .map(drop)
    }
}
