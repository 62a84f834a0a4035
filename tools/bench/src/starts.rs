//! Starting runs, measured the way the Powertools anchor (`../shared/anchors/powertools-start`)
//! measures itself, so that `cargo xtask bench starts` can print the two side by side:
//! sequential new starts, sequential dedupe hits, the AWS calls each costs, and a dedupe storm.
//! Each is measured in-process (the handler called with an API Gateway v2 event, as the anchor
//! calls its handler) and, for the sequences, through the local gateway too (JWT check, event
//! building, the template's timeout).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantops_api::Deps;
use tenantops_tests::{ApiCall, TestStack};

/// Sequential starts of each kind, as the anchor's `BENCH_N`.
pub const SEQUENTIAL: usize = 500;
/// Unmeasured starts first (connections, endpoint resolution), as the anchor's `WARMUP`.
const WARMUP: usize = 20;
/// Simultaneous starts of one identity.
pub const STORM: usize = 1_000;

/// How a start reaches the handler.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// The handler called with the event, in this process.
    InProcess,
    /// Through the local gateway.
    Gateway,
}

/// One start: its status and the run it answered with.
async fn start(
    stack: &TestStack,
    deps: &Arc<Deps>,
    via: Via,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, String)> {
    let owner = &stack.users().owner;
    let (status, body) = match via {
        Via::InProcess => {
            tenantops_local::gateway::invoke(
                deps,
                "POST",
                path,
                &owner.to_string(),
                Some(body.clone()),
            )
            .await?
        }
        Via::Gateway => {
            let r = stack
                .call_with(deps, ApiCall::post(path, body.to_string()).by(owner))
                .await;
            (r.status, r.body)
        }
    };
    let run = body["run"]["id"].as_str().unwrap_or_default().to_owned();
    Ok((status, run))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn summary(mut samples: Vec<Duration>, wall: Duration) -> Value {
    samples.sort();
    json!({
        "n": samples.len(),
        "per_s": samples.len() as f64 / wall.as_secs_f64(),
        "p50_ms": percentile(&samples, 0.50),
        "p90_ms": percentile(&samples, 0.90),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": percentile(&samples, 1.0),
    })
}

/// `SEQUENTIAL` starts one after another, each answering `expect`; their latencies and the
/// AWS calls they made.
async fn sequence(
    stack: &TestStack,
    deps: &Arc<Deps>,
    via: Via,
    path: &str,
    body: &Value,
    expect: u16,
) -> anyhow::Result<Value> {
    for _ in 0..WARMUP {
        start(stack, deps, via, path, body).await?;
    }
    stack.dynamodb_calls.take();
    stack.sqs_calls.take();
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    let wall = Instant::now();
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        let (status, _) = start(stack, deps, via, path, body).await?;
        anyhow::ensure!(status == expect, "a start answered {status}, not {expect}");
        samples.push(t.elapsed());
    }
    let wall = wall.elapsed();
    let calls = stack.dynamodb_calls.take().len() + stack.sqs_calls.take().len();
    let mut out = summary(samples, wall);
    out["aws_calls_each"] = json!(calls as f64 / SEQUENTIAL as f64);
    Ok(out)
}

/// New starts (a manual backup, every request a new run) and dedupe hits (an inventory
/// sync while one is active), one after another.
async fn sequences(stack: &TestStack, via: Via) -> anyhow::Result<Value> {
    // More manual backups of one tenant than its quota allows.
    let deps = stack.with_unbounded_manual_backups();
    let path = stack.start_path(stack.demo.workspace_id, stack.demo.tenant_id);
    let new_start = sequence(
        stack,
        &deps,
        via,
        &path,
        &json!({ "type": "backup_schedule.run_now" }),
        202,
    )
    .await?;
    let sync = json!({ "type": "inventory.sync" });
    start(stack, &deps, via, &path, &sync).await?;
    let dedupe_hit = sequence(stack, &deps, via, &path, &sync, 200).await?;
    Ok(json!({ "new_start": new_start, "dedupe_hit": dedupe_hit }))
}

/// `STORM` simultaneous in-process starts of one identity (an inventory sync of a tenant
/// with none active): how many callers got the one run, and how long the storm took.
async fn storm(stack: &TestStack) -> anyhow::Result<Value> {
    let tenant = stack
        .add_connected_tenants(stack.demo.workspace_id, &stack.users().owner, 1)
        .await
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no tenant for the storm"))?;
    let path = stack.start_path(stack.demo.workspace_id, tenant.id);
    let body = json!({ "type": "inventory.sync" });
    stack.dynamodb_calls.take();
    stack.sqs_calls.take();
    let wall = Instant::now();
    let answers = futures::future::join_all((0..STORM).map(|_| async {
        let t = Instant::now();
        let answer = start(stack, &stack.deps, Via::InProcess, &path, &body).await;
        (answer, t.elapsed())
    }))
    .await;
    let wall = wall.elapsed();
    let dynamodb = stack.dynamodb_calls.take().len();
    let sqs = stack.sqs_calls.take().len();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs: Vec<&str> = Vec::new();
    let mut slowest = Duration::ZERO;
    for (answer, took) in &answers {
        slowest = slowest.max(*took);
        match answer {
            Ok((status, run)) => {
                *statuses.entry(status.to_string()).or_default() += 1;
                if matches!(status, 200 | 202) {
                    runs.push(run);
                }
            }
            Err(_) => *statuses.entry("error".into()).or_default() += 1,
        }
    }
    let answered = runs.len();
    runs.sort_unstable();
    runs.dedup();
    Ok(json!({
        "callers": STORM,
        "wall_ms": wall.as_secs_f64() * 1000.0,
        "max_latency_ms": slowest.as_secs_f64() * 1000.0,
        "responses_by_status": statuses,
        "callers_answered_with_the_run_pct": if runs.len() == 1 {
            answered as f64 * 100.0 / STORM as f64
        } else {
            0.0
        },
        "distinct_runs": runs.len(),
        "dynamodb_calls": dynamodb,
        "sqs_calls": sqs,
    }))
}

/// The start path: in-process (the anchor's way) and through the gateway.
pub async fn starts() -> anyhow::Result<Value> {
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let stack = TestStack::new().await;
    // The API alone, as the anchor's handler alone: the relay (a function of its own in AWS,
    // on the table's stream) is held still while starts are measured, and timed after.
    let paused = stack.pause_relay().await;
    let in_process = sequences(&stack, Via::InProcess).await?;
    let storm = storm(&stack).await?;
    let gateway = sequences(&stack, Via::Gateway).await?;
    let runs = stack
        .snapshot_unsettled()
        .await
        .keys()
        .filter(|(_, sk)| sk == "RUN")
        .count();
    drop(paused);
    // Until every run the starts created has its work message waiting.
    let wall = Instant::now();
    let mut waiting = 0;
    while waiting < runs && wall.elapsed() < Duration::from_secs(120) {
        stack.try_settle().await?;
        waiting = stack.queued_messages().await;
    }
    let took = wall.elapsed().as_secs_f64();
    let relay = json!({
        "runs": runs,
        "messages_waiting": waiting,
        "wall_ms": took * 1000.0,
        "per_s": runs as f64 / took,
    });
    Ok(json!({
        "profile": profile,
        "relay": relay,
        "in_process": {
            "new_start": in_process["new_start"],
            "dedupe_hit": in_process["dedupe_hit"],
            "storm": storm,
        },
        "gateway": gateway,
    }))
}
