//! `cargo xtask`: the project's commands, in Rust instead of Makefiles.
//!
//! - `cargo xtask local`: install what is missing, start the emulators, serve the API.
//! - `cargo xtask test`: install what is missing, start the emulators, run every test.
//! - `cargo xtask install`: only install (DynamoDB Local and moto under `.local/`).
//! - `cargo xtask lint-infra`: cfn-lint (and `sam validate --lint`) on the SAM template.
//! - `cargo xtask build-lambdas`: every function, built for arm64 Lambda and zipped.
//! - `cargo xtask fuzz-api`: schemathesis against a local stack, from the API's OpenAPI document.
//! - `cargo xtask readme`: the README's shell examples, in order, against a local stack.
//! - `cargo xtask demo-drift`: the running local stack's demo tenant drifts from its backups.
//! - `cargo xtask smoke --api URL --token-command CMD`: a post-deploy check of an API.
//! - `cargo xtask dist-cli`: the `tenantops` command line as a static Linux binary.
//!
//! xtask is the developer's terminal: it prints to it directly.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod dist;
mod drift;
mod emulators;
mod fuzz;
mod infra;
mod install;
mod lambdas;
mod localstack;
mod readme;
mod smoke;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("install") => {
            install::all(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("local") => local(&root),
        Some("test") => test(&root, &args[1..]),
        Some("lint-infra") => infra::lint(&root),
        Some("bench") => bench::run(&root, &target_dir(&root)),
        Some("build-lambdas") => lambdas::build(&root, &target_dir(&root)),
        Some("fuzz-api") => fuzz::run(&root, &target_dir(&root)),
        Some("readme") => readme::run(&root, &target_dir(&root)),
        Some("demo-drift") => drift::run(&root, &args[1..]),
        Some("smoke") => smoke::run(&args[1..]),
        Some("migrate") => migrate(&root, &args[1..]),
        Some("dist-cli") => dist::run(&root, &target_dir(&root)),
        _ => {
            eprintln!(
                "usage: cargo xtask <local | test [args for the test runner] | install | lint-infra | build-lambdas | bench | fuzz-api | readme | demo-drift [--stack FILE] | smoke --api URL --token-command CMD | migrate platform-index --table NAME | dist-cli>"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// `cargo xtask migrate <migration> --table NAME`: a data migration of a deployment upgraded
/// in place, against the table of the standard AWS environment (see `tools/migrate`).
fn migrate(root: &Path, args: &[String]) -> anyhow::Result<ExitCode> {
    let status = Command::new("cargo")
        .args(["run", "--quiet", "--package", "tenantops-migrate", "--"])
        .args(args)
        .current_dir(root)
        .status()
        .context("running tenantops-migrate")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C/SIGTERM handler")?;
    Ok(stop)
}

fn local(root: &Path) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    install::all(root)?;
    let stack = emulators::Stack::start(root)?;
    let binary = localstack::build(root, &target_dir(root))?;
    let mut host = Command::new(&binary)
        .current_dir(root)
        .envs(stack.env())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let code = loop {
        if stop.load(Ordering::SeqCst) {
            eprintln!("xtask: stopping");
            // The host shuts down on the same Ctrl-C; give it a moment, then make sure.
            std::thread::sleep(Duration::from_millis(500));
            let _ = host.kill();
            let _ = host.wait();
            break ExitCode::SUCCESS;
        }
        if let Some(status) = host.try_wait()? {
            break if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(stack);
    Ok(code)
}

fn test(root: &Path, extra: &[String]) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    let started = Instant::now();
    install::all(root)?;
    // tests/it/cli.rs runs the `tenantops` binary, another package's, which the test build
    // does not link: build it now, outside the tests' time.
    let built = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--package",
            "tenantops-cli",
            "--bin",
            "tenantops",
        ])
        .current_dir(root)
        .status()
        .context("building the tenantops command line")?;
    if !built.success() {
        anyhow::bail!("building the tenantops command line failed");
    }
    let stack = emulators::Stack::start(root)?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new("cargo");
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    let mut child = cmd
        .args(extra)
        .current_dir(root)
        .envs(stack.env())
        .spawn()
        .context("running the tests")?;
    let status = loop {
        if stop.load(Ordering::SeqCst) {
            let _ = child.kill();
            break None;
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(stack);
    eprintln!("xtask: tests finished in {:.0?}", started.elapsed());
    Ok(match status {
        Some(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
