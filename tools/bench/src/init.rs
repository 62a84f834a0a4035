//! Function init time: each Lambda binary is started as Lambda starts it (with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a local Runtime API), and the harness records when the
//! process asked for its first event (init done) and when it posted the answer (first request
//! served), both from process spawn. The binaries are those `cargo xtask bench` built (dev
//! profile, so slower than the release builds Lambda runs).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tenantops_local::provision::Resources;

const ROUNDS: usize = 5;
const REQUEST_ID: &str = "bench-request-0001";

#[derive(Debug, Default)]
struct Seen {
    first_next: Option<Instant>,
    answered: Option<(Instant, bool)>,
}

#[derive(Clone)]
struct Runtime {
    event: Arc<Value>,
    seen: Arc<Mutex<Seen>>,
}

async fn next(State(rt): State<Runtime>) -> (StatusCode, HeaderMap, String) {
    let first = {
        let mut seen = rt.seen.lock().unwrap_or_else(|p| p.into_inner());
        let first = seen.first_next.is_none();
        if first {
            seen.first_next = Some(Instant::now());
        }
        first
    };
    if !first {
        // One event per process: hold the second poll until the harness kills it.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    for (k, v) in [
        ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    (StatusCode::OK, headers, rt.event.to_string())
}

async fn answered(State(rt): State<Runtime>, ok: bool) -> StatusCode {
    let mut seen = rt.seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.answered.get_or_insert((Instant::now(), ok));
    StatusCode::ACCEPTED
}

/// One function binary and the event it is given.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub binary: PathBuf,
}

/// The event a function is started with: what its trigger sends when there is little to do.
fn event_for(name: &str) -> Value {
    match name {
        "api" => json!({
            "version": "2.0", "routeKey": "GET /v1/health", "rawPath": "/v1/health",
            "rawQueryString": "", "headers": {}, "isBase64Encoded": false,
            "requestContext": {"accountId": "000000000000", "apiId": "bench", "domainName": "127.0.0.1",
                "domainPrefix": "127", "requestId": "bench", "routeKey": "GET /v1/health",
                "stage": "$default", "time": "24/Nov/2026:06:00:00 +0000", "timeEpoch": 0,
                "http": {"method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "bench"}}
        }),
        "worker" => json!({ "Records": [] }),
        _ => json!({
            "version": "0", "id": "00000000-0000-0000-0000-000000000000",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": "000000000000",
            "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:00Z").to_string(),
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/bench"], "detail": {}
        }),
    }
}

async fn once(f: &Function, env: &[(String, String)]) -> anyhow::Result<Value> {
    let rt = Runtime {
        event: Arc::new(event_for(&f.name)),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(|s: State<Runtime>, _: Path<String>| answered(s, true)),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(|s: State<Runtime>, _: Path<String>| answered(s, false)),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(|s: State<Runtime>| answered(s, false)),
        )
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let spawned = Instant::now();
    let mut child = tokio::process::Command::new(&f.binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{}", f.name))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let give_up = spawned + Duration::from_secs(30);
    let result = loop {
        let answered = {
            let seen = rt.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.answered.map(|a| (seen.first_next, a))
        };
        if let Some((first_next, (at, ok))) = answered {
            break json!({
                "init_ms": first_next.map(|t| (t - spawned).as_secs_f64() * 1000.0),
                "first_request_ms": (at - spawned).as_secs_f64() * 1000.0,
                "ok": ok,
            });
        }
        if Instant::now() > give_up || child.try_wait()?.is_some() {
            child.kill().await.ok();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                pipe.read_to_string(&mut stderr).await.ok();
            }
            let last: String = stderr
                .lines()
                .last()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            break json!({ "error": "no answer within 30 s, or the process exited", "stderr": last });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    child.kill().await.ok();
    server.abort();
    Ok(result)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Median init and first-request times over `ROUNDS` cold starts per function.
pub async fn init_times(functions: &[Function], resources: &Resources) -> anyhow::Result<Value> {
    let env: Vec<(String, String)> = [
        ("TENANTOPS_TABLE_NAME", resources.table_name.clone()),
        ("TENANTOPS_QUEUE_URL", resources.queue_url.clone()),
        (
            "TENANTOPS_DEAD_LETTER_QUEUE_URL",
            resources.dead_letter_queue_url.clone(),
        ),
        ("TENANTOPS_EVENT_BUS_NAME", resources.event_bus_name.clone()),
        ("TENANTOPS_SECRET_PREFIX", "tenantops/bench/".to_owned()),
        (
            "TENANTOPS_SNAPSHOT_BUCKET",
            "tenantops-bench-snapshots".to_owned(),
        ),
        (
            "TENANTOPS_GRAPH_BASE_URL",
            "http://127.0.0.1:9/graph".to_owned(),
        ),
        (
            "TENANTOPS_LOGIN_BASE_URL",
            "http://127.0.0.1:9/login".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut out = serde_json::Map::new();
    for f in functions {
        let size = std::fs::metadata(&f.binary).map(|m| m.len()).ok();
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut errors = Vec::new();
        for _ in 0..ROUNDS {
            let r = once(f, &env).await?;
            match (
                r["init_ms"].as_f64(),
                r["first_request_ms"].as_f64(),
                r["ok"].as_bool(),
            ) {
                (Some(i), Some(first), Some(true)) => {
                    inits.push(i);
                    firsts.push(first);
                }
                _ => errors.push(r),
            }
        }
        out.insert(
            f.name.clone(),
            json!({
                "rounds": ROUNDS,
                "init_ms_median": median(inits),
                "first_request_ms_median": median(firsts),
                "failed_rounds": errors,
                "dev_binary_bytes": size,
            }),
        );
    }
    Ok(Value::Object(out))
}
