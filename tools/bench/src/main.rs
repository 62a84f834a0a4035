//! `tenantops-bench`: measures what the design promises, against the emulators that
//! `cargo xtask bench` starts, and prints one JSON report (stdout) for `docs/benchmarks.md`.
//!
//! - starts: new starts and dedupe hits one after another, in-process (as the Powertools
//!   anchor measures itself) and through the gateway, the AWS calls each costs (counted by SDK
//!   interceptors, not assumed), and a 1,000-way dedupe storm in-process;
//! - scheduler tick: one tick over 10,000 schedules of which 500 are due (wall time, AWS
//!   calls), and a repeated tick for the same minute;
//! - sync: an inventory sync of a 5,000-object tenant through the worker against graph-sim
//!   with its default (Microsoft's documented) throttling: objects/s, requests/s, use of the
//!   Intune budget, throttles met, and requests sent inside a Retry-After window (must be 0);
//! - backup: a 1,000-object backup, with Graph requests per backed-up object, by type;
//! - large backup: a 20,000-object backup (another size with
//!   `TENANTOPS_BENCH_LARGE_BACKUP_OBJECTS`) on the strict worker host (the template's 120 s timeout), across continuations, checked
//!   complete (manifest, no GET served twice).
//! - fan-in: 300 tenants' nightly backups fired by one scheduler tick on the strict host
//!   with the reaper ticking beside them: queue waits, 0 `run.stale`, nothing read twice;
//! - starvation (and starvation_unlimited): one workspace bursts 500 run-now, another starts
//!   one sync: its wait, with the per-workspace limit (and without it);
//! - batch: a 1,000-tenant batch: its request (time, DynamoDB calls), the time until the
//!   relay has dispatched every child, and the relay's AWS calls per child.
//! - drift: a drift check of a 3,000-object tenant with 50 changed objects (after its baseline
//!   backup): wall time, Graph requests, S3 reads and writes.
//!
//! `tenantops-bench <name>` runs one measurement (the report's key), e.g. `large_backup`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod backup;
mod batch;
mod cpu;
mod drift;
mod fan_in;
mod fleet;
mod graph_log;
mod graph_run;
mod init;
mod large_backup;
mod scheduler;
mod starts;
mod starvation;
mod storm;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_graph::registry::ObjectType;

const SYNC_OBJECTS: usize = 5_000;

async fn sync_throughput() -> anyhow::Result<Value> {
    let types: Vec<&ObjectType> = ObjectType::inventory().collect();
    graph_run::measure(
        &types,
        &[],
        SYNC_OBJECTS,
        json!({ "type": "inventory.sync" }),
        Duration::from_secs(600),
    )
    .await
}

/// The function binaries `cargo xtask bench` built, as `name=path;name=path`.
async fn function_init() -> anyhow::Result<Value> {
    let functions: Vec<init::Function> = std::env::var("TENANTOPS_BENCH_FUNCTIONS")
        .unwrap_or_default()
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, path)| init::Function {
            name: name.to_owned(),
            binary: path.into(),
        })
        .collect();
    let sdk = tenantops_aws::config::load().await;
    let prefix = format!(
        "bench-init-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let resources = tenantops_local::provision::provision(&sdk, &prefix).await?;
    init::init_times(&functions, &resources).await
}

/// Runs the measurement named `name` (its key in the report).
async fn measure(name: &str) -> anyhow::Result<Value> {
    Ok(match name {
        "starts" => starts::starts().await?,
        "sync_5000" => sync_throughput().await?,
        "backup_1000" => backup::backup_throughput().await?,
        "large_backup" => large_backup::large_backup(large_backup::objects()).await?,
        "fan_in" => fan_in::fan_in().await?,
        "starvation_unlimited" => starvation::starvation_unlimited().await?,
        "starvation" => starvation::starvation().await?,
        "dedupe_storm" => storm::dedupe_storm().await?,
        "batch_1000" => batch::batch_1000().await?,
        "drift_3000" => drift::drift_3000().await?,
        "scheduler_tick" => scheduler::tick_cost().await?,
        "handler_cpu" => tokio::task::spawn_blocking(cpu::handler_cpu).await??,
        "function_init" => function_init().await?,
        other => anyhow::bail!("no measurement named {other}; one of {MEASUREMENTS:?}"),
    })
}

/// Every measurement, in the report's order.
const MEASUREMENTS: [&str; 13] = [
    "starts",
    "sync_5000",
    "backup_1000",
    "large_backup",
    "fan_in",
    "starvation_unlimited",
    "starvation",
    "dedupe_storm",
    "batch_1000",
    "drift_3000",
    "scheduler_tick",
    "handler_cpu",
    "function_init",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `tenantops-bench <name>...`: only those measurements (legacy aliases kept).
    let names: Vec<String> = std::env::args()
        .skip(1)
        .map(|n| match n.as_str() {
            "scheduler" => "scheduler_tick".to_owned(),
            "backup" => "backup_1000".to_owned(),
            _ => n,
        })
        .collect();
    // `--list`: the measurements, one a line, for `cargo xtask bench` (which gives each its
    // own fresh emulators).
    if names.iter().any(|n| n == "--list") {
        for name in MEASUREMENTS {
            println!("{name}");
        }
        return Ok(());
    }
    let names: Vec<&str> = if names.is_empty() {
        MEASUREMENTS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    let mut report = serde_json::Map::new();
    report.insert("date".into(), json!(chrono::Utc::now().to_rfc3339()));
    for name in names {
        eprintln!("tenantops-bench: {name}");
        let started = Instant::now();
        // One failed measurement does not cost the others: it is reported as an error,
        // and `cargo xtask bench` keeps that measurement's earlier figures.
        let value = match measure(name).await {
            Ok(value) => value,
            Err(e) => {
                eprintln!("tenantops-bench: {name} FAILED: {e:#}");
                json!({ "error": format!("{e:#}") })
            }
        };
        eprintln!("tenantops-bench: {name} done in {:.0?}", started.elapsed());
        // Printed at once too, so a bench stopped later still leaves this figure in its log.
        eprintln!("tenantops-bench: {name} = {value}");
        report.insert(name.to_owned(), value);
    }
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(())
}
