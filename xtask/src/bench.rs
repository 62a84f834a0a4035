//! `cargo xtask bench`: runs `tenantops-bench` against freshly started emulators, prints its
//! JSON report and writes `docs/benchmarks.md` (machine, date, method, figures). Benchmarks
//! are not tests: nothing here asserts a timing.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{emulators, install};

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB")
}

fn num(v: &Value, path: &str) -> String {
    match v.pointer(path) {
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| {
                if f.fract() == 0.0 {
                    format!("{f:.0}")
                } else {
                    format!("{f:.2}")
                }
            })
            .unwrap_or_default(),
        Some(other) => other.to_string(),
        None => "n/a".into(),
    }
}

pub fn run(root: &Path) -> anyhow::Result<ExitCode> {
    install::all(root)?;
    let stack = emulators::Stack::start(root)?;
    let out = Command::new("cargo")
        .args(["run", "--quiet", "--package", "tenantops-bench"])
        .current_dir(root)
        .envs(stack.env())
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .context("running tenantops-bench")?;
    drop(stack);
    if !out.status.success() {
        bail!("tenantops-bench failed");
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("the bench printed no JSON report")?;
    println!("{}", serde_json::to_string_pretty(&report)?);

    let md = format!(
        r#"# Benchmarks

Written by `cargo xtask bench` (do not edit by hand). Machine: {machine}. Date: {date}.

Method: `tenantops-bench` runs in the dev profile (dependencies at `opt-level = 1`) against
DynamoDB Local and moto on loopback, started fresh by `cargo xtask bench`; calls go through
the local gateway and the same handler code that runs in Lambda. AWS calls are counted by
SDK interceptors. The sync runs the worker against graph-sim with Microsoft's documented
throttling (Intune 1,000 requests per 20 s per app per tenant; Conditional Access 1 request
per second per tenant). Emulator latency is not AWS latency: compare runs with each other,
not with production.

## Starting runs ({n} sequential starts each)

| | p50 | p99 | max | per second | AWS calls each |
|---|---|---|---|---|---|
| new run (`backup_schedule.run_now`) | {np50} ms | {np99} ms | {nmax} ms | {nps} | {ncalls} |
| dedupe hit (`inventory.sync` while active) | {hp50} ms | {hp99} ms | {hmax} ms | {hps} | {hcalls} |

Goal: a new run costs one DynamoDB transaction and one SQS send (2 calls); a dedupe hit one
call.

## Inventory sync of a 5,000-object tenant

| objects | seconds | objects/s | Graph requests | requests/s | Intune requests/s | share of the Intune budget | 429s met | requests inside Retry-After |
|---|---|---|---|---|---|---|---|---|
| {objects} | {secs} | {ops} | {reqs} | {rps} | {irps} | {share} | {throttled} | {inside} |

The worker lists each of the registry's inventory types with `$select` (100 objects a page,
settings-catalog types 25), writes what it saw and marks what is gone. It keeps a token
bucket per tenant and budget below the documented limits, so it should meet few 429s, and
it must never send a request inside a Retry-After window.
"#,
        machine = machine(),
        date = report["date"].as_str().unwrap_or_default(),
        n = num(&report, "/start/new_run/n"),
        np50 = num(&report, "/start/new_run/p50_ms"),
        np99 = num(&report, "/start/new_run/p99_ms"),
        nmax = num(&report, "/start/new_run/max_ms"),
        nps = num(&report, "/start/new_run/per_second"),
        ncalls = num(&report, "/start/aws_calls_per_new_run"),
        hp50 = num(&report, "/start/dedupe_hit/p50_ms"),
        hp99 = num(&report, "/start/dedupe_hit/p99_ms"),
        hmax = num(&report, "/start/dedupe_hit/max_ms"),
        hps = num(&report, "/start/dedupe_hit/per_second"),
        hcalls = num(&report, "/start/aws_calls_per_dedupe_hit"),
        objects = num(&report, "/sync_5000/objects"),
        secs = num(&report, "/sync_5000/seconds"),
        ops = num(&report, "/sync_5000/objects_per_second"),
        reqs = num(&report, "/sync_5000/graph_requests"),
        rps = num(&report, "/sync_5000/requests_per_second"),
        irps = num(&report, "/sync_5000/intune_requests_per_second"),
        share = num(&report, "/sync_5000/intune_budget_use"),
        throttled = num(&report, "/sync_5000/throttled_429"),
        inside = num(&report, "/sync_5000/requests_inside_retry_after"),
    );
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/benchmarks.md"), md)?;
    eprintln!("xtask: wrote docs/benchmarks.md");
    Ok(ExitCode::SUCCESS)
}
