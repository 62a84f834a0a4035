//! Handler CPU time per request, excluding I/O: the API handler runs on one thread of a
//! current-thread runtime, and the thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`) is read
//! around each call. Time spent waiting for DynamoDB or SQS is not on that clock; request
//! signing, (de)serialization, routing and validation are. The emulators run in other
//! processes, so their work is not counted.

use std::time::Duration;

use cpu_time::ThreadTime;
use serde_json::{Value, json};
use tenantops_local::gateway::EventRequest;
use tenantops_tests::TestStack;

const WARMUP: usize = 20;
const SAMPLES: usize = 300;

fn micros(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
    json!({ "n": samples.len(), "p50_us": at(0.5), "p99_us": at(0.99), "mean_us": mean * 1e6 })
}

/// One request shape: method, path, body.
struct Shape {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
}

async fn measure(stack: &TestStack) -> anyhow::Result<Value> {
    let ws = stack.demo.workspace_id;
    let tenant = stack.demo.tenant_id;
    let owner = stack.users().owner.to_string();
    let start = stack.start_path(ws, tenant);
    // Hundreds of manual backups of one tenant are far over the per-tenant quota.
    let deps = stack.with_unbounded_manual_backups();
    // A run to view and a while-active run to hit.
    let (_, view) = tenantops_local::gateway::invoke(
        &stack.deps,
        "POST",
        &start,
        &owner,
        Some(json!({"type": "inventory.sync"})),
    )
    .await?;
    let run_id: tenantops_core::RunId = view
        .pointer("/run/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()?;
    let shapes = [
        Shape {
            name: "health",
            method: "GET",
            path: "/v1/health".into(),
            body: None,
        },
        Shape {
            name: "start_new_run",
            method: "POST",
            path: start.clone(),
            body: Some(json!({"type": "backup_schedule.run_now"})),
        },
        Shape {
            name: "start_dedupe_hit",
            method: "POST",
            path: start.clone(),
            body: Some(json!({"type": "inventory.sync"})),
        },
        Shape {
            name: "view_run",
            method: "GET",
            path: tenantops_core::links::view(run_id),
            body: None,
        },
        Shape {
            name: "list_runs",
            method: "GET",
            path: tenantops_core::links::collection(ws, None),
            body: None,
        },
    ];
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), Value::String(owner.clone()));
    let mut out = serde_json::Map::new();
    for shape in shapes {
        let mut samples = Vec::with_capacity(SAMPLES);
        let body = shape
            .body
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        for i in 0..WARMUP + SAMPLES {
            // The event is built outside the measured span: that is API Gateway's work.
            let event = EventRequest {
                method: shape.method,
                path: &shape.path,
                query: "",
                headers: vec![("content-type".into(), "application/json".into())],
                claims: (shape.name != "health").then(|| claims.clone()),
                body: body.as_bytes(),
            }
            .event()?;
            let cpu = ThreadTime::now();
            let reply = tenantops_api::handle(event, &deps).await;
            let spent = cpu.elapsed();
            let status = reply.status_code;
            anyhow::ensure!(status < 300, "{} answered {status}", shape.name);
            if i >= WARMUP {
                samples.push(spent);
            }
        }
        out.insert(shape.name.into(), micros(samples));
    }
    Ok(Value::Object(out))
}

/// Runs the measurement on its own thread and current-thread runtime, so that everything the
/// handler computes lands on the measured thread's clock.
pub fn handler_cpu() -> anyhow::Result<Value> {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let stack = TestStack::new().await;
            measure(&stack).await
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the CPU measurement thread panicked"))?
}
