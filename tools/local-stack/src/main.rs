//! `tenantops-local`: provisions and seeds the emulated stack, writes `.local/stack.json`, and
//! serves the API on loopback until Ctrl-C or SIGTERM. Started by `cargo xtask local`, which
//! also starts the emulators and sets the AWS endpoint variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tenantops_local::{gateway, provision, seed, tokens::TokenIssuer};

const TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// As the template's `rate(5 minutes)`.
const REAPER_TICK: std::time::Duration = std::time::Duration::from_secs(300);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or CI output stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let port: u16 = std::env::var("TENANTOPS_API_PORT")
        .ok()
        .map(|p| {
            p.parse()
                .context("TENANTOPS_API_PORT must be a port number")
        })
        .transpose()?
        .unwrap_or(3000);
    let state_dir =
        PathBuf::from(std::env::var("TENANTOPS_STATE_DIR").unwrap_or_else(|_| ".local".into()));

    let sdk = tenantops_aws::config::load().await;
    // A fresh prefix per start: an emulator that outlived an earlier stack keeps its data
    // without clashing with ours.
    let prefix = format!("tenantops-{}", ulid::Ulid::new().to_string().to_lowercase());
    let resources = provision::provision(&sdk, &prefix).await?;
    let deps = Arc::new(tenantops_api::Deps {
        store: tenantops_aws::Store::from_sdk(&sdk, &resources.table_name),
        secrets: tenantops_aws::SecretVault::from_sdk(&sdk, format!("{prefix}/")),
        events: tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, &resources.event_bus_name),
        // Every minute is allowed locally, to watch the scheduler fire without waiting an hour.
        // The manual backup quota is generous locally, to try run-now freely.
        limits: tenantops_api::Limits {
            min_schedule_interval_minutes: 1,
            manual_backup_quota: 1000,
            manual_backup_quota_window_seconds: 60,
            ..tenantops_api::Limits::default()
        },
        platform: tenantops_api::PlatformOperators::defaults(),
        snapshots: tenantops_aws::SnapshotStore::from_sdk(&sdk, &resources.snapshot_bucket),
        webhook_urls: webhook_urls()?,
    });
    let demo = seed::seed(&deps, seed::DemoUsers::named("demo")?).await?;

    // Microsoft Graph: graph-sim playing the demo tenant, unless a Graph is configured.
    let entra = deps
        .store
        .get_tenant(demo.workspace_id, demo.tenant_id)
        .await?
        .context("the demo tenant was not seeded")?
        .entra_tenant_id;
    let configured = tenantops_graph::GraphConfig::from_env();
    let onboarding_entra = seed::fresh_entra_id();
    let (_sim, graph_config) = if std::env::var(tenantops_graph::client::GRAPH_BASE_URL).is_ok() {
        (None, configured)
    } else {
        let client =
            tenantops_graph_sim::SimClient::new(seed::DEMO_CLIENT_ID, seed::DEMO_CLIENT_SECRET);
        let mut config = tenantops_graph_sim::SimConfig::demo(&entra, client, 20);
        // A second customer tenant, not yet onboarded: the README's walkthrough adds it.
        let counts: Vec<(&str, usize)> = tenantops_graph_sim::DEMO_COLLECTIONS
            .iter()
            .map(|p| (*p, 10))
            .collect();
        config
            .tenants
            .push(tenantops_graph_sim::SimTenant::generated(
                &onboarding_entra,
                vec![tenantops_graph_sim::SimClient::new(
                    seed::ONBOARDING_CLIENT_ID,
                    seed::ONBOARDING_CLIENT_SECRET,
                )],
                &counts,
                config.seed,
            ));
        let sim = tenantops_graph_sim::GraphSim::start(config).await?;
        let cfg = tenantops_graph::GraphConfig {
            graph_base: sim.graph_base_url(),
            login_base: sim.login_base_url(),
        };
        (Some(sim), cfg)
    };
    let worker = Arc::new(tenantops_worker::Deps {
        store: deps.store.clone(),
        graph: tenantops_graph::GraphClient::new(graph_config.clone(), Default::default())?,
        secrets: deps.secrets.clone(),
        queue: tenantops_aws::WorkQueue::from_sdk(&sdk, &resources.queue_url),
        events: tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, &resources.event_bus_name),
        lease: tenantops_worker::LEASE,
        snapshots: tenantops_aws::SnapshotStore::from_sdk(&sdk, &resources.snapshot_bucket),
        deadline_margin: tenantops_worker::config::DEFAULT_DEADLINE_MARGIN,
        fairness: Default::default(),
    });
    // Lambda's limits, from the template: the worker's timeout, batch size and concurrency.
    let worker_host = tenantops_local::worker_host::WorkerHost::configured()?;
    tracing::info!(limits = ?worker_host.limits, "worker host");
    let poller = worker.clone();
    tokio::spawn(async move { worker_host.run(&poller).await });
    let pipe = tenantops_local::run_pipe::RunPipe::new(
        &sdk,
        &resources.table_name,
        tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, &resources.event_bus_name),
        false,
    )
    .await?;
    tokio::spawn(pipe.run());
    // The relay's event source mapping on the same stream.
    let relay =
        tenantops_local::relay_host::RelayHost::new(&sdk, &resources.table_name, false).await?;
    tokio::spawn(relay.run(tenantops_relay::Deps {
        store: deps.store.clone(),
        dispatcher: tenantops_aws::Dispatcher::from_sdk(&sdk, &resources.queue_url),
    }));
    // The reaper's EventBridge schedule: a tick every 5 minutes.
    let reaper = tenantops_reaper::Deps {
        store: deps.store.clone(),
        dispatcher: tenantops_aws::Dispatcher::from_sdk(&sdk, &resources.queue_url),
        dead_letters: tenantops_aws::DeadLetters::from_sdk(&sdk, &resources.dead_letter_queue_url),
        events: tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, &resources.event_bus_name),
        thresholds: tenantops_reaper::Thresholds::default(),
    };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REAPER_TICK);
        loop {
            every.tick().await;
            tenantops_reaper::tick(chrono::Utc::now(), &reaper).await;
        }
    });

    // The notifier's event source mapping on the webhook queue (which the bus's rule feeds).
    let notifier = tenantops_notifier::Deps {
        store: deps.store.clone(),
        secrets: deps.secrets.clone(),
        queue: tenantops_aws::webhook_queue::WebhookQueue::from_sdk(
            &sdk,
            &resources.webhook_queue_url,
            &resources.webhook_dead_letter_queue_url,
        ),
        retries: Default::default(),
        urls: deps.webhook_urls,
        timeout: tenantops_notifier::DELIVERY_TIMEOUT,
    };
    let notifier_host = tenantops_local::notifier_host::NotifierHost::new(&sdk, &notifier);
    tokio::spawn(notifier_host.run(notifier));

    // The scheduler's EventBridge rule: a tick at every minute, for that minute.
    let scheduler = tenantops_scheduler::Deps {
        store: deps.store.clone(),
    };
    let scheduler_timeout = tenantops_local::scheduler_host::timeout()?;
    let scheduler_events =
        tenantops_aws::events::LifecycleEvents::from_sdk(&sdk, &resources.event_bus_name);
    tokio::spawn(async move {
        tenantops_local::scheduler_host::run(&scheduler, &scheduler_events, scheduler_timeout).await
    });

    let tokens = TokenIssuer::generate();
    let mut minted = serde_json::Map::new();
    let mut users = serde_json::Map::new();
    for (role, user) in demo.users.all() {
        minted.insert(
            role.into(),
            json!(tokens.mint(user.as_str(), TOKEN_TTL_SECS)?),
        );
        users.insert(role.into(), json!(user));
    }
    // The platform operator: a member of no workspace, with the operators' group claim.
    let platform = &demo.users.platform;
    minted.insert(
        "platform".into(),
        json!(tokens.mint_platform_operator(platform.as_str(), TOKEN_TTL_SECS)?),
    );
    users.insert("platform".into(), json!(platform));

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("port {port} is taken; set TENANTOPS_API_PORT to another"))?;
    let api_url = format!("http://{addr}");
    let stack = json!({
        "api_url": api_url,
        "aws_endpoint_url": std::env::var("AWS_ENDPOINT_URL").ok(),
        "aws_endpoint_url_dynamodb": std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok(),
        "table_name": resources.table_name,
        "queue_url": resources.queue_url,
        "secret_prefix": format!("{prefix}/"),
        "event_bus_name": resources.event_bus_name,
        "graph_base_url": graph_config.graph_base,
        "login_base_url": graph_config.login_base,
        "entra_tenant_id": entra,
        // A customer tenant graph-sim knows but no workspace has yet (README walkthrough).
        "onboarding": {
            "entra_tenant_id": onboarding_entra,
            "client_id": seed::ONBOARDING_CLIENT_ID,
            "client_secret": seed::ONBOARDING_CLIENT_SECRET,
        },
        "dead_letter_queue_url": resources.dead_letter_queue_url,
        "workspace_id": demo.workspace_id,
        "tenant_id": demo.tenant_id,
        "other_workspace_id": demo.other_workspace_id,
        "other_tenant_id": demo.other_tenant_id,
        "tokens": minted,
        "users": users,
        "jwt_hs256_key": tokens.key_base64(),
    });
    std::fs::create_dir_all(&state_dir)?;
    let stack_file = state_dir.join("stack.json");
    std::fs::write(&stack_file, serde_json::to_vec_pretty(&stack)?)
        .with_context(|| format!("writing {}", stack_file.display()))?;

    let app = gateway::router(gateway::Gateway::configured(deps, tokens)?);
    tracing::info!(
        "tenantops is up at {api_url} (stack: {}). Try:\n  curl -s -X POST {api_url}{start} -H \"Authorization: Bearer $(jq -r .tokens.owner {file})\" -H 'content-type: application/json' -d '{{\"type\":\"inventory.sync\"}}'",
        stack_file.display(),
        start = tenantops_core::links::start(demo.workspace_id, demo.tenant_id),
        file = stack_file.display(),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await;
    // A stopped stack leaves no stack.json pointing at dead ports.
    if let Err(e) = std::fs::remove_file(&stack_file) {
        tracing::warn!(error = %e, "could not remove {}", stack_file.display());
    }
    served?;
    Ok(())
}

/// Set to `1` to let webhooks reach loopback receivers (over http too) locally. The template
/// never sets it, and the deployed functions read no such variable.
const WEBHOOK_ALLOW_LOOPBACK: &str = "TENANTOPS_LOCAL_WEBHOOK_ALLOW_LOOPBACK";

fn webhook_urls() -> anyhow::Result<tenantops_core::webhook::UrlPolicy> {
    match std::env::var(WEBHOOK_ALLOW_LOOPBACK).ok().as_deref() {
        None | Some("" | "0") => Ok(tenantops_core::webhook::UrlPolicy::PUBLIC),
        Some("1") => Ok(tenantops_core::webhook::UrlPolicy::LOCAL),
        Some(other) => anyhow::bail!("{WEBHOOK_ALLOW_LOOPBACK} must be 0 or 1, not {other:?}"),
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
