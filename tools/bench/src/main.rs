//! `tenantops-bench`: measures what the design promises, against the emulators that
//! `cargo xtask bench` starts, and prints one JSON report (stdout) for `docs/benchmarks.md`.
//!
//! - start: latency of new starts and of dedupe hits through the gateway and handler, and
//!   the AWS calls each costs (counted by SDK interceptors, not assumed);
//! - scheduler tick: one tick over 10,000 schedules of which 500 are due (wall time, AWS
//!   calls), and a repeated tick for the same minute;
//! - sync: an inventory sync of a 5,000-object tenant through the worker against graph-sim
//!   with its default (Microsoft's documented) throttling: objects/s, requests/s, use of the
//!   Intune budget, throttles met, and requests sent inside a Retry-After window (must be 0).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod backup;
mod cpu;
mod init;
mod scheduler;
mod storm;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_graph::registry::ObjectType;
use tenantops_graph::throttle::RetryPolicy;
use tenantops_tests::{ApiCall, TestStack};

const STARTS: usize = 200;
const SYNC_OBJECTS: usize = 5_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>, wall: Duration) -> Value {
    samples.sort();
    json!({
        "n": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": percentile(&samples, 1.0),
        "per_second": samples.len() as f64 / wall.as_secs_f64(),
    })
}

async fn start_path() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let owner = stack.users().owner.clone();
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let body = json!({ "type": "backup_schedule.run_now" }).to_string();

    let mut new_runs = Vec::with_capacity(STARTS);
    let wall = Instant::now();
    for _ in 0..STARTS {
        let t = Instant::now();
        let r = stack
            .call(ApiCall::post(path.clone(), body.clone()).by(&owner))
            .await;
        anyhow::ensure!(r.status == 202, "start answered {}", r.status);
        new_runs.push(t.elapsed());
    }
    let new_wall = wall.elapsed();
    let dynamo_new = stack.dynamodb_calls.take();
    let sqs_new = stack.sqs_calls.take();

    let sync = json!({ "type": "inventory.sync" }).to_string();
    stack
        .call(ApiCall::post(path.clone(), sync.clone()).by(&owner))
        .await;
    stack.dynamodb_calls.take();
    stack.sqs_calls.take();
    let mut hits = Vec::with_capacity(STARTS);
    let wall = Instant::now();
    for _ in 0..STARTS {
        let t = Instant::now();
        let r = stack
            .call(ApiCall::post(path.clone(), sync.clone()).by(&owner))
            .await;
        anyhow::ensure!(r.status == 200, "dedupe answered {}", r.status);
        hits.push(t.elapsed());
    }
    let hit_wall = wall.elapsed();
    let dynamo_hit = stack.dynamodb_calls.take();
    let sqs_hit = stack.sqs_calls.take();
    Ok(json!({
        "new_run": summary(new_runs, new_wall),
        "dedupe_hit": summary(hits, hit_wall),
        "aws_calls_per_new_run": (dynamo_new.len() + sqs_new.len()) as f64 / STARTS as f64,
        "aws_calls_per_dedupe_hit": (dynamo_hit.len() + sqs_hit.len()) as f64 / STARTS as f64,
    }))
}

async fn sync_throughput() -> anyhow::Result<Value> {
    let stack = TestStack::new().await;
    let types: Vec<&ObjectType> = ObjectType::inventory().collect();
    let per_type = SYNC_OBJECTS / types.len();
    let counts: Vec<(&str, usize)> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.path,
                if i == 0 {
                    SYNC_OBJECTS - per_type * (types.len() - 1)
                } else {
                    per_type
                },
            )
        })
        .collect();
    let worker = stack.worker(&counts, RetryPolicy::default()).await;
    let run_id = stack.start(json!({ "type": "inventory.sync" })).await;
    let wall = Instant::now();
    // Runs handed back come back after their Retry-After: keep draining until it finishes.
    loop {
        worker.drain().await;
        let run = stack.run(&run_id).await;
        if !run.status.is_active() {
            break;
        }
        anyhow::ensure!(
            wall.elapsed() < Duration::from_secs(600),
            "the sync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let run = stack.run(&run_id).await;
    let requests = worker.sim.requests();
    let graph: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .collect();
    let intune = graph
        .iter()
        .filter(|r| {
            r.path.contains("/deviceManagement/") || r.path.contains("/deviceAppManagement/")
        })
        .count();
    let intune_budget_per_s = 1000.0 / 20.0;
    Ok(json!({
        "objects": run.counters.processed,
        "outcome": run.outcome.as_str(),
        "seconds": elapsed,
        "objects_per_second": run.counters.processed as f64 / elapsed,
        "graph_requests": graph.len(),
        "requests_per_second": graph.len() as f64 / elapsed,
        "intune_requests_per_second": intune as f64 / elapsed,
        "intune_budget_use": (intune as f64 / elapsed) / intune_budget_per_s,
        "throttled_429": graph.iter().filter(|r| r.status == 429).count(),
        "requests_inside_retry_after": worker.sim.requests_inside_retry_after().len(),
        "attempts": run.attempts,
    }))
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `tenantops-bench scheduler`: only the scheduler tick, for a quick measurement.
    if std::env::args().nth(1).as_deref() == Some("scheduler") {
        let report = json!({ "scheduler_tick": scheduler::tick_cost().await? });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let report = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "start": start_path().await?,
        "sync_5000": sync_throughput().await?,
        "backup_1000": backup::backup_throughput().await?,
        "dedupe_storm": storm::dedupe_storm().await?,
        "scheduler_tick": scheduler::tick_cost().await?,
        "handler_cpu": tokio::task::spawn_blocking(cpu::handler_cpu).await??,
        "function_init": function_init().await?,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
