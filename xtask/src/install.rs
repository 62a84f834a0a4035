//! Installs the local stack's tools into `.local/`, from the package registries only:
//! DynamoDB Local (the official jar, shipped in the npm package `amplify-dynamodb-simulator`)
//! and moto's server mode (PyPI) in a virtualenv. Idempotent: present tools are kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Pinned so that every machine runs the same emulators.
const DYNAMODB_NPM_PACKAGE: &str = "amplify-dynamodb-simulator@2.9.30";
const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
/// `cargo xtask fuzz-api` runs it against the local stack.
const SCHEMATHESIS_REQUIREMENT: &str = "schemathesis==4.32.5";

pub fn local_dir(root: &Path) -> PathBuf {
    root.join(".local")
}

pub fn dynamodb_dir(root: &Path) -> PathBuf {
    local_dir(root).join("dynamodb")
}

/// The project's Python virtualenv: moto, and the deploy tools (cfn-lint, cargo-lambda, zig).
pub fn venv_dir(root: &Path) -> PathBuf {
    local_dir(root).join("venv")
}

/// Installs pinned PyPI requirements into the virtualenv, creating it first if needed.
pub fn pip_install(root: &Path, requirements: &[&str]) -> anyhow::Result<()> {
    let venv = venv_dir(root);
    if !venv.join("bin").join("pip").is_file() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "creating the virtualenv",
        )?;
    }
    eprintln!(
        "xtask: installing {} into .local/venv",
        requirements.join(" ")
    );
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(requirements),
        &format!("installing {}", requirements.join(" ")),
    )
}

/// schemathesis (PyPI, pinned) in the project's virtualenv, unless that version is there.
pub fn schemathesis(root: &Path) -> anyhow::Result<()> {
    let version = Command::new(venv_dir(root).join("bin").join("schemathesis"))
        .arg("--version")
        .output();
    let pinned = SCHEMATHESIS_REQUIREMENT.trim_start_matches("schemathesis==");
    if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(pinned)) {
        return Ok(());
    }
    pip_install(root, &[SCHEMATHESIS_REQUIREMENT])
}

pub fn moto_server(root: &Path) -> PathBuf {
    local_dir(root).join("venv").join("bin").join("moto_server")
}

pub fn all(root: &Path) -> anyhow::Result<()> {
    need("java", &["-version"], "Java 17+ runs DynamoDB Local")?;
    dynamodb_local(root)?;
    moto(root)?;
    Ok(())
}

fn need(tool: &str, args: &[&str], why: &str) -> anyhow::Result<()> {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!("`{tool}` is not available ({why})");
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn dynamodb_local(root: &Path) -> anyhow::Result<()> {
    let dir = dynamodb_dir(root);
    if dir.join("DynamoDBLocal.jar").is_file() {
        return Ok(());
    }
    need(
        "npm",
        &["--version"],
        "npm fetches the DynamoDB Local package",
    )?;
    eprintln!("xtask: installing DynamoDB Local from npm ({DYNAMODB_NPM_PACKAGE})");
    let cache = local_dir(root).join("cache");
    std::fs::create_dir_all(&cache)?;
    // `npm pack` fetches only the package tarball: no dependencies, no install scripts.
    let out = Command::new("npm")
        .args([
            "pack",
            DYNAMODB_NPM_PACKAGE,
            "--silent",
            "--pack-destination",
        ])
        .arg(&cache)
        .output()
        .context("running npm pack")?;
    if !out.status.success() {
        bail!("npm pack failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tarball = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| cache.join(l.trim()))
        .context("npm pack named no tarball")?;
    let staging = local_dir(root).join("dynamodb.partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    run(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&staging)
            .args(["--strip-components=2", "package/emulator"]),
        "unpacking DynamoDB Local",
    )?;
    if !staging.join("DynamoDBLocal.jar").is_file() {
        bail!("the npm package did not contain emulator/DynamoDBLocal.jar");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir)?;
    let _ = std::fs::remove_file(&tarball);
    Ok(())
}

fn moto(root: &Path) -> anyhow::Result<()> {
    if moto_server(root).is_file() {
        return Ok(());
    }
    eprintln!("xtask: installing moto ({MOTO_REQUIREMENT}) into .local/venv");
    let venv = local_dir(root).join("venv");
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating the virtualenv",
    )?;
    run(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO_REQUIREMENT,
        ]),
        "installing moto",
    )?;
    Ok(())
}
