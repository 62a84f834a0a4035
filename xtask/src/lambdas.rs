//! `cargo xtask build-lambdas`: every crate under `functions/`, built by cargo-lambda for
//! Lambda's arm64 runtime (`provided.al2023`), one `bootstrap.zip` per binary. cargo-lambda
//! and its Zig toolchain come from PyPI into `.local/venv` when missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::install;

/// Pinned so that every machine builds the same way.
const CARGO_LAMBDA_REQUIREMENT: &str = "cargo-lambda==1.9.2";
const ZIG_REQUIREMENT: &str = "ziglang==0.14.1";

#[derive(Debug)]
pub(crate) struct FunctionCrate {
    pub(crate) dir: String,
    pub(crate) package: String,
    pub(crate) binaries: Vec<String>,
}

pub fn build(root: &Path, target_dir: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let crates = function_crates(root)?;
    if crates.is_empty() {
        bail!("no crate under functions/");
    }
    let venv_bin = install::venv_dir(root).join("bin");
    let (program, prefix) = cargo_lambda(root, &venv_bin)?;
    zig(root, &venv_bin)?;
    // The venv first, so that cargo-lambda finds `python3 -m ziglang` when no `zig` is
    // installed system-wide.
    let mut path = OsString::from(&venv_bin);
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }

    for c in &crates {
        eprintln!(
            "xtask: cargo lambda build --release --arm64 --output-format zip --package {}",
            c.package
        );
        let status = Command::new(&program)
            .args(&prefix)
            .args(["build", "--release", "--arm64", "--output-format", "zip"])
            .args(["--package", &c.package])
            .env("PATH", &path)
            .current_dir(root)
            .status()
            .with_context(|| format!("running {}", program.display()))?;
        if !status.success() {
            bail!("building functions/{} failed", c.dir);
        }
    }

    for c in &crates {
        for binary in &c.binaries {
            let zip = target_dir.join("lambda").join(binary).join("bootstrap.zip");
            let meta = std::fs::metadata(&zip)
                .with_context(|| format!("functions/{}: no {}", c.dir, zip.display()))?;
            println!(
                "functions/{} ({binary}): {}  {:.2} MiB ({} bytes)",
                c.dir,
                zip.display(),
                meta.len() as f64 / (1024.0 * 1024.0),
                meta.len()
            );
        }
    }
    eprintln!(
        "xtask: built {} function crate(s) in {:.0?}",
        crates.len(),
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

/// How to run cargo-lambda: `cargo lambda` when installed, else the venv's `cargo-lambda`
/// (installed from PyPI when missing), as (program, leading arguments).
fn cargo_lambda(root: &Path, venv_bin: &Path) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let installed = Command::new("cargo")
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok((PathBuf::from("cargo"), vec!["lambda".into()]));
    }
    let bin = venv_bin.join("cargo-lambda");
    if !bin.is_file() {
        install::pip_install(root, &[CARGO_LAMBDA_REQUIREMENT, ZIG_REQUIREMENT])?;
        if !bin.is_file() {
            bail!("pip installed no {}", bin.display());
        }
    }
    // Run as a cargo subcommand runs it: `cargo-lambda lambda ...`.
    Ok((bin, vec!["lambda".into()]))
}

/// Zig links the arm64 binary: a `zig` on PATH, or the venv's ziglang package.
fn zig(root: &Path, venv_bin: &Path) -> anyhow::Result<()> {
    let runs = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let python = venv_bin.join("python3");
    if runs(Path::new("zig"), &["version"]) || runs(&python, &["-m", "ziglang", "version"]) {
        return Ok(());
    }
    install::pip_install(root, &[ZIG_REQUIREMENT])?;
    if !runs(&python, &["-m", "ziglang", "version"]) {
        bail!("ziglang installed, but `python3 -m ziglang version` fails");
    }
    Ok(())
}

/// The crates under `functions/` (every directory with a Cargo.toml), by name.
pub(crate) fn function_crates(root: &Path) -> anyhow::Result<Vec<FunctionCrate>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root.join("functions")).context("listing functions/")? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let package = section_names(&text, "[package]")
            .into_iter()
            .next()
            .with_context(|| format!("{}: no package name", manifest.display()))?;
        let mut binaries = section_names(&text, "[[bin]]");
        if binaries.is_empty() {
            binaries.push(package.clone());
        }
        crates.push(FunctionCrate {
            dir: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            package,
            binaries,
        });
    }
    crates.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(crates)
}

/// The `name = "..."` of every manifest section with this header (a line-level reading that
/// is enough for our own manifests; xtask carries no TOML parser).
fn section_names(manifest: &str, header: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
            continue;
        }
        if inside
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            names.push(value.trim().trim_matches('"').to_owned());
            inside = false;
        }
    }
    names
}
