//! `cargo xtask bench`: runs `tenantops-bench` against freshly started emulators, prints its
//! JSON report and writes `docs/benchmarks.md` (machine, date, method, figures). Benchmarks
//! are not tests: nothing here asserts a timing.
//!
//! `cargo xtask bench <name>...` runs only the named measurements (keys of the report, e.g.
//! `large_backup`) and prints their JSON; their figures replace the earlier ones in
//! `docs/benchmarks.json`, from which `docs/benchmarks.md` is written again.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod drift;
mod fleet;
mod starts;

use crate::{emulators, install, lambdas};

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

/// The profile everything `cargo xtask bench` measures is built in (`[profile.bench]`:
/// release optimisation), and the directory cargo puts it in.
const PROFILE: &str = "bench";
const PROFILE_DIR: &str = "release";

/// Builds every function's binary in the bench's profile and answers `name=path;...` for the
/// init-time measurement.
fn function_binaries(root: &Path, target_dir: &Path) -> anyhow::Result<String> {
    let crates = lambdas::function_crates(root)?;
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--quiet", "--profile", PROFILE, "--bins"])
        .current_dir(root);
    for c in &crates {
        cmd.args(["--package", &c.package]);
    }
    if !cmd
        .status()
        .context("building the function binaries")?
        .success()
    {
        bail!("building the function binaries failed");
    }
    Ok(crates
        .iter()
        .flat_map(|c| c.binaries.iter())
        .map(|b| format!("{b}={}", target_dir.join(PROFILE_DIR).join(b).display()))
        .collect::<Vec<_>>()
        .join(";"))
}

/// Stripped arm64 package sizes from the last `cargo xtask build-lambdas` (release, LTO), if
/// one ran: building them here would compile everything a second time, in release.
fn package_sizes(root: &Path, target_dir: &Path) -> anyhow::Result<String> {
    let mut rows = String::new();
    for c in lambdas::function_crates(root)? {
        for b in &c.binaries {
            let dir = target_dir.join("lambda").join(b);
            let size = |name: &str| std::fs::metadata(dir.join(name)).map(|m| m.len()).ok();
            let mib = |n: Option<u64>| {
                n.map(|n| format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0)))
                    .unwrap_or_else(|| "not built".into())
            };
            rows.push_str(&format!(
                "| {b} | {} | {} |\n",
                mib(size("bootstrap")),
                mib(size("bootstrap.zip"))
            ));
        }
    }
    Ok(rows)
}

/// The stored report with this run's measurements replacing their earlier figures, each
/// with this run's date (a partial run, `cargo xtask bench <name>`, updates its own
/// measurements only), written back to `docs/benchmarks.json`.
fn merge(root: &Path, fresh: &Value) -> anyhow::Result<Value> {
    let path = root.join("docs/benchmarks.json");
    let mut report = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("reading docs/benchmarks.json")?,
        Err(_) => json!({}),
    };
    let date = fresh["date"].clone();
    if let (Value::Object(stored), Value::Object(measured)) = (&mut report, fresh) {
        for (name, value) in measured.iter().filter(|(k, _)| *k != "date") {
            if value.get("error").is_some() {
                eprintln!("xtask: {name} failed; its earlier figures (if any) are kept");
                continue;
            }
            stored.insert(name.clone(), value.clone());
            let dates = stored.entry("dates").or_insert_with(|| json!({}));
            dates[name.as_str()] = date.clone();
        }
        stored.remove("date");
    }
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    Ok(report)
}

/// When the stored measurements were taken: the first and last date.
fn dates(report: &Value) -> String {
    let mut all: Vec<&str> = report["dates"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    all.sort_unstable();
    match (all.first(), all.last()) {
        (Some(first), Some(last)) if first != last => format!("between {first} and {last}"),
        (Some(only), _) => format!("on {only}"),
        _ => "n/a".into(),
    }
}

/// The named measurements, each preceded by the one it is compared with when that one is
/// not named too: a ratio is always of two figures from the same invocation.
fn with_companions(names: Vec<String>) -> Vec<String> {
    const COMPANIONS: &[(&str, &str)] = &[("starvation", "starvation_unlimited")];
    let mut out = Vec::with_capacity(names.len() + COMPANIONS.len());
    for name in &names {
        for (measured, companion) in COMPANIONS {
            if name == measured && !names.iter().any(|n| n == companion) {
                out.push((*companion).to_owned());
            }
        }
        out.push(name.clone());
    }
    out
}

pub fn run(root: &Path, target_dir: &Path) -> anyhow::Result<ExitCode> {
    // `cargo xtask bench <name>...`: the names after `bench`.
    let names: Vec<String> = std::env::args().skip(2).collect();
    install::all(root)?;
    let functions = if names.is_empty() || names.iter().any(|n| n == "function_init") {
        function_binaries(root, target_dir)?
    } else {
        String::new()
    };
    // Each measurement on emulators of its own, started fresh: DynamoDB Local slows as its
    // tables fill, so a measurement after the 20,000-object backup would measure that
    // backup's residue as much as itself.
    let build = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--profile",
            PROFILE,
            "--package",
            "tenantops-bench",
        ])
        .current_dir(root)
        .status()
        .context("building tenantops-bench")?;
    if !build.success() {
        bail!("building tenantops-bench failed");
    }
    let bench = target_dir.join(PROFILE_DIR).join("tenantops-bench");
    let names: Vec<String> = if names.is_empty() {
        let listed = Command::new(&bench)
            .arg("--list")
            .output()
            .context("listing the measurements")?;
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    } else {
        with_companions(names)
    };
    // The anchor runs first, on emulators of its own of the same versions.
    let anchor = names
        .iter()
        .any(|n| n == "starts")
        .then(|| starts::anchor(root));
    let mut fresh = serde_json::Map::new();
    for name in &names {
        let stack = emulators::Stack::start(root)?;
        let out = Command::new(&bench)
            .arg(name)
            .current_dir(root)
            .envs(stack.env())
            .env("TENANTOPS_BENCH_FUNCTIONS", &functions)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running tenantops-bench {name}"))?;
        drop(stack);
        let mut report = serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null);
        if let Some(date) = report.get_mut("date").map(Value::take) {
            fresh.entry("date").or_insert(date);
        }
        let value = report
            .get_mut(name.as_str())
            .map(Value::take)
            .unwrap_or_else(|| {
                json!({ "error": format!("tenantops-bench {name} printed no report ({})", out.status) })
            });
        let value = match (name.as_str(), &anchor) {
            ("starts", Some(anchor)) => starts::compare(anchor, value),
            _ => value,
        };
        println!("{}", json!({ name.as_str(): &value }));
        fresh.insert(name.clone(), value);
    }
    let fresh = Value::Object(fresh);
    if fresh.get("starvation").is_some() {
        eprintln!(
            "xtask: starvation: the other workspace waited {} times longer without the \
             per-workspace limit",
            fleet::wait_ratio(&fresh)
        );
    }
    let report = merge(root, &fresh)?;
    let failed: Vec<&String> = fresh
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.get("error").is_some())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();

    let md = format!(
        r#"# Benchmarks

Written by `cargo xtask bench` (do not edit by hand) from `docs/benchmarks.json`, which holds
each measurement with its date. Machine: {machine}. Measured {date}.

Method: `tenantops-bench` runs in the bench profile (release optimisation, without the
Lambda package's LTO; measurements dated before 2026-12-06 ran in the dev profile) against
DynamoDB Local and moto on loopback, started fresh for each measurement by `cargo xtask
bench`; calls go through
the local gateway and the same handler code that runs in Lambda. AWS calls are counted by
SDK interceptors. The sync runs the worker against graph-sim with Microsoft's documented
throttling (Intune 1,000 requests per 20 s per app per tenant; Conditional Access 1 request
per second per tenant). Emulator latency is not AWS latency: compare runs with each other,
not with production.

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
        date = dates(&report),
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
    let md = md
        + &starts::section(&report)
        + &large_backup_section(&report)
        + &drift::section(&report)
        + &fleet::sections(&report)
        + &more_sections(&report, &package_sizes(root, target_dir)?);
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/benchmarks.md"), md)?;
    eprintln!("xtask: wrote docs/benchmarks.md");
    // For scripts: the start-path figures, last line of stdout.
    if let Some(measured) = fresh.get("starts") {
        println!("{}", starts::script_line(measured));
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: failed measurements: {failed:?}");
        Ok(ExitCode::FAILURE)
    }
}

/// Per registry type: list pages and reads below objects (`by_type` of a Graph cost).
fn by_type_rows(v: &Value) -> String {
    let mut rows = String::new();
    if let Some(Value::Object(types)) = v.get("by_type") {
        for (name, t) in types {
            rows.push_str(&format!(
                "| {name} | {} | {} |\n",
                num(t, "/list_pages"),
                num(t, "/object_reads")
            ));
        }
    }
    rows
}

/// The large backup on the strict worker host, and the requests per object by type.
fn large_backup_section(report: &Value) -> String {
    let v = &report["large_backup"];
    let g = |p: &str| num(v, &format!("/graph{p}"));
    format!(
        r#"
## Backup of a {objects}-object tenant on the strict worker host

| objects in the manifest | distinct | complete | outcome | seconds | objects/s | invocations | killed | claims | Graph requests | per object | requests/s | share of the Intune budget | 429s met | inside Retry-After | URLs read twice |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| {entries} | {distinct} | {complete} | {outcome} | {secs} | {ops} | {inv} | {killed} | {claims} | {reqs} | {per} | {rps} | {share} | {throttled} | {inside} | {twice} |

`TENANTOPS_BENCH_LARGE_BACKUP_OBJECTS=N cargo xtask bench large_backup` measures another size.
An ad-hoc backup of every backup-capable type, worked by the local worker host exactly as
the template configures Lambda: a {timeout} s timeout (an invocation past it is killed), batches
of {batch}, at most {conc} invocations at once. The run checkpoints at
`deadline - TENANTOPS_WORKER_DEADLINE_MARGIN_S` and continues in a new message, so
"invocations" counts its continuations (and "claims" the run's claims). Complete means the
set's manifest names each generated object exactly once; "URLs read twice" counts successful
GETs graph-sim served more than once (a page or object read again by a continuation): it
must be 0.

Graph requests by type (list pages; reads below objects: item GETs, sub-collections,
assignments):

| type | list pages | object reads |
|---|---|---|
{rows}"#,
        objects = num(v, "/objects_generated"),
        entries = num(v, "/manifest_entries"),
        distinct = num(v, "/distinct_objects"),
        complete = num(v, "/complete"),
        outcome = v
            .pointer("/outcome")
            .and_then(Value::as_str)
            .unwrap_or("n/a"),
        secs = num(v, "/seconds"),
        ops = num(v, "/objects_per_second"),
        inv = num(v, "/invocations"),
        killed = num(v, "/invocations_killed"),
        claims = num(v, "/claims"),
        reqs = g("/requests"),
        per = g("/requests_per_object"),
        rps = g("/requests_per_second"),
        share = g("/intune_budget_use"),
        throttled = g("/throttled_429"),
        inside = g("/requests_inside_retry_after"),
        twice = g("/urls_read_twice"),
        timeout = num(v, "/timeout_s"),
        batch = num(v, "/batch_size"),
        conc = num(v, "/concurrency"),
        rows = by_type_rows(&v["graph"]),
    )
}

/// The dedupe storm, handler CPU time and function init sections.
fn more_sections(report: &Value, sizes: &str) -> String {
    let mut cpu_rows = String::new();
    if let Some(Value::Object(shapes)) = report.get("handler_cpu") {
        for (name, v) in shapes {
            cpu_rows.push_str(&format!(
                "| {name} | {} µs | {} µs | {} µs |\n",
                num(v, "/p50_us"),
                num(v, "/p99_us"),
                num(v, "/mean_us")
            ));
        }
    }
    let mut init_rows = String::new();
    if let Some(Value::Object(functions)) = report.get("function_init") {
        for (name, v) in functions {
            let failed = v["failed_rounds"].as_array().map_or(0, Vec::len);
            init_rows.push_str(&format!(
                "| {name} | {} ms | {} ms | {failed} |\n",
                num(v, "/init_ms_median"),
                num(v, "/first_request_ms_median"),
            ));
        }
    }
    format!(
        r#"
## Backup of a 1,000-object tenant

| objects | seconds | objects/s | Graph requests | per object | Intune requests/s | share of the Intune budget | 429s met | requests inside Retry-After | outcome |
|---|---|---|---|---|---|---|---|---|---|
| {bobjects} | {bsecs} | {bops} | {breqs} | {bper} | {birps} | {bshare} | {bthrottled} | {binside} | {boutcome} |

An ad-hoc backup (`backup_schedule.run_now`) of every backup-capable type: each object is read
in full (its GET, settings or definition values, script content, assignments), normalized,
hashed and stored in S3 (moto) under its content hash. Unlike the inventory sync, this is
bound by Graph: the client's token bucket for Intune admits 45 requests/s (90 % of the
documented 1,000 per 20 s), so the share of the budget shows how well the worker keeps it busy.

## Dedupe storm

| identical starts at once | created | deduplicated | runs stored | wall time | starts/s | DynamoDB calls | SQS calls |
|---|---|---|---|---|---|---|---|
| {starts} | {created} | {dedup} | {stored} | {wall} ms | {sps} | {dynamo} | {sqs} |

Every start of the storm goes through the gateway and the handler at the same time; the
conditional transaction lets exactly one create the run, and every other start is answered
from the lock's old image. DynamoDB calls above one per start are transactions retried after
a `TransactionConflict` with a concurrent one.

## A 1,000-tenant batch

| tenants | create (API) | DynamoDB calls to create | until every child is dispatched | children/s | relay DynamoDB calls per child | relay SQS calls per child |
|---|---|---|---|---|---|---|
| {btenants} | {bcreate} ms | {bcreatecalls} | {bdispatched} s | {bcps} | {bdynper} | {bsqsper} |

`POST /v1/workspaces/{{ws}}/batches` with `"tenants": "all"` (a `backup_schedule.run_now` each)
through the handler, then the relay as the stream delivers the batch and its children, 100
records an invocation: the children's start transactions (16 at once), then their audit
entries (`BatchWriteItem`) and work messages (`SendMessageBatch` of 10). The calls are counted
by SDK interceptors on the relay's own clients.

## Scheduler tick ({sched} enabled schedules, {due} due)

| | fired | wall time | runs/s | DynamoDB calls | per fired run | SQS calls |
|---|---|---|---|---|---|---|
| tick | {fired} | {swall} ms | {srps} | {sdyn} | {sper} | {ssqs} |
| the same minute again | {afired} | {awall} ms | | {adyn} | | {asqs} |

DynamoDB calls by operation: {sops}.

The scheduler queries the sparse due index (4 shards, `next_fire_at <= now`), so the 9,500
schedules that are not due cost nothing; each due schedule is one `TransactWriteItems`
(schedule advance, tenant check, run, strict lock), 16 at a time; the relay dispatches the
runs from the table's stream. A repeated tick for the same minute finds nothing due: 4
queries.

## Handler CPU time per request (excluding I/O)

| request | p50 | p99 | mean |
|---|---|---|---|
{cpu_rows}
The API handler runs on one thread of a current-thread runtime; the thread's CPU clock
(`CLOCK_THREAD_CPUTIME_ID`) is read around each call, so waiting for DynamoDB and SQS is not
counted, while routing, validation, serialization and SDK request signing are. Events are
built outside the measured span (that is API Gateway's work). Dev profile: release code is
faster.

## Function init

| function | init (spawn → first event requested) | first request served | failed rounds |
|---|---|---|---|
{init_rows}
Each function binary is started as Lambda starts it, against a local Runtime API that hands it
one event (the API: `GET /v1/health`; the worker: an empty SQS batch; the scheduler and the
reaper: a scheduled event over empty tables), median of 5 cold starts. These are the dev-profile
binaries; Lambda runs the release builds below.

## Package size (arm64, release, stripped; from the last `cargo xtask build-lambdas`)

| function | bootstrap | bootstrap.zip |
|---|---|---|
{sizes}"#,
        sched = num(report, "/scheduler_tick/schedules"),
        due = num(report, "/scheduler_tick/due"),
        fired = num(report, "/scheduler_tick/fired"),
        swall = num(report, "/scheduler_tick/wall_ms"),
        srps = num(report, "/scheduler_tick/runs_per_second"),
        sdyn = num(report, "/scheduler_tick/dynamodb_calls"),
        sper = num(report, "/scheduler_tick/dynamodb_calls_per_fired_run"),
        ssqs = num(report, "/scheduler_tick/sqs_calls"),
        afired = num(report, "/scheduler_tick/repeated_tick/fired"),
        awall = num(report, "/scheduler_tick/repeated_tick/wall_ms"),
        adyn = num(report, "/scheduler_tick/repeated_tick/dynamodb_calls"),
        asqs = num(report, "/scheduler_tick/repeated_tick/sqs_calls"),
        sops = report
            .pointer("/scheduler_tick/dynamodb_calls_by_operation")
            .and_then(Value::as_object)
            .map(|m| m
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        bobjects = num(report, "/backup_1000/objects"),
        bsecs = num(report, "/backup_1000/seconds"),
        bops = num(report, "/backup_1000/objects_per_second"),
        breqs = num(report, "/backup_1000/graph_requests"),
        bper = num(report, "/backup_1000/graph_requests_per_object"),
        birps = num(report, "/backup_1000/intune_requests_per_second"),
        bshare = num(report, "/backup_1000/intune_budget_use"),
        bthrottled = num(report, "/backup_1000/throttled_429"),
        binside = num(report, "/backup_1000/requests_inside_retry_after"),
        boutcome = report
            .pointer("/backup_1000/outcome")
            .and_then(Value::as_str)
            .unwrap_or("n/a"),
        starts = num(report, "/dedupe_storm/starts"),
        created = num(report, "/dedupe_storm/created"),
        dedup = num(report, "/dedupe_storm/deduplicated"),
        stored = num(report, "/dedupe_storm/runs_stored"),
        wall = num(report, "/dedupe_storm/wall_ms"),
        sps = num(report, "/dedupe_storm/starts_per_second"),
        dynamo = num(report, "/dedupe_storm/dynamodb_calls"),
        sqs = num(report, "/dedupe_storm/sqs_calls"),
        btenants = num(report, "/batch_1000/tenants"),
        bcreate = num(report, "/batch_1000/create_ms"),
        bcreatecalls = num(report, "/batch_1000/create_dynamodb_calls_total"),
        bdispatched = num(report, "/batch_1000/until_every_child_dispatched_s"),
        bcps = num(report, "/batch_1000/children_per_s"),
        bdynper = num(report, "/batch_1000/relay_dynamodb_calls_per_child"),
        bsqsper = num(report, "/batch_1000/relay_sqs_calls_per_child"),
    )
}
