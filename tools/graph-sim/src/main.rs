//! `graph-sim [--port N] [--fixture FILE | --demo] [--print-ready] [--tenant-id ID]
//! [--client-id ID] [--client-secret S] [--per-collection N] [--seed N] [--no-throttling]`
//!
//! Serves the simulator on 127.0.0.1 until Ctrl-C or SIGTERM. With `--print-ready` it prints
//! one JSON line with the base URLs once it accepts requests, for scripts (`cargo xtask
//! local`) to read.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::json;
use tenantops_graph_sim::{GraphSim, SimClient, SimConfig};

/// The local stack's demo app registration (see `tools/local-stack/src/seed.rs`).
const DEMO_CLIENT_ID: &str = "6f1c7a52-2d2b-4f0e-9a51-3f0d6c1e9b10";
const DEMO_CLIENT_SECRET: &str = "demo-client-secret-not-for-production";
const DEMO_TENANT_ID: &str = "3f0c9a6e-5d1b-4c1e-8a2f-6b7d9e0a1c2d";

#[derive(Debug)]
struct Args {
    port: u16,
    fixture: Option<PathBuf>,
    print_ready: bool,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    per_collection: usize,
    seed: Option<u64>,
    throttling: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        port: 0,
        fixture: None,
        print_ready: false,
        tenant_id: DEMO_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret: DEMO_CLIENT_SECRET.into(),
        per_collection: 20,
        seed: None,
        throttling: true,
    };
    let mut demo = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => args.port = value("--port")?.parse().context("--port")?,
            "--fixture" => args.fixture = Some(value("--fixture")?.into()),
            "--demo" => demo = true,
            "--print-ready" => args.print_ready = true,
            "--tenant-id" => args.tenant_id = value("--tenant-id")?.to_lowercase(),
            "--client-id" => args.client_id = value("--client-id")?,
            "--client-secret" => args.client_secret = value("--client-secret")?,
            "--per-collection" => {
                args.per_collection = value("--per-collection")?
                    .parse()
                    .context("--per-collection")?;
            }
            "--seed" => args.seed = Some(value("--seed")?.parse().context("--seed")?),
            "--no-throttling" => args.throttling = false,
            "-h" | "--help" => {
                println!(
                    "graph-sim [--port N] [--fixture FILE | --demo] [--print-ready] [--tenant-id ID] [--client-id ID] [--client-secret S] [--per-collection N] [--seed N] [--no-throttling]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (try --help)"),
        }
    }
    if demo && args.fixture.is_some() {
        bail!("--demo and --fixture exclude each other");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or CI output stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = parse_args()?;
    let mut config = match &args.fixture {
        Some(path) => SimConfig::from_fixture(path)?,
        None => SimConfig::demo(
            &args.tenant_id,
            SimClient::new(&args.client_id, &args.client_secret),
            args.per_collection,
        ),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.throttling.enabled &= args.throttling;
    let tenants: Vec<String> = config
        .tenants
        .iter()
        .map(|t| t.tenant_id.to_lowercase())
        .collect();
    let objects: usize = config
        .tenants
        .iter()
        .flat_map(|t| t.collections.values())
        .map(|c| c.objects.len())
        .sum();

    let sim = GraphSim::start_on(config, SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    tracing::info!(
        graph = %sim.graph_base_url(),
        login = %sim.login_base_url(),
        tenants = ?tenants,
        objects,
        "graph-sim ready"
    );
    if args.print_ready {
        println!(
            "{}",
            json!({
                "graph_base_url": sim.graph_base_url(),
                "login_base_url": sim.login_base_url(),
                "tenants": tenants,
            })
        );
    }
    wait_for_stop().await?;
    tracing::info!("graph-sim stopping");
    drop(sim);
    Ok(())
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
