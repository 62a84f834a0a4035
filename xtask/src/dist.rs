//! `cargo xtask dist-cli`: the `tenantops` command line as one static Linux binary
//! (x86_64-unknown-linux-musl, release), copied to `target/dist/`. The target must be
//! installed with rustup; this says how when it is not.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const TARGET: &str = "x86_64-unknown-linux-musl";

fn target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false)
}

pub fn run(root: &Path, target_dir: &Path) -> anyhow::Result<ExitCode> {
    if !target_installed() {
        eprintln!(
            "xtask: the Rust target {TARGET} is not installed. Add it with\n\
             \n    rustup target add {TARGET}\n\n\
             (on Debian or Ubuntu also `apt-get install musl-tools`, for the C parts of the TLS\n\
             stack), then run `cargo xtask dist-cli` again. For your own machine only,\n\
             `cargo install --path tools/cli` installs `tenantops` without it."
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("xtask: cargo build --release --package tenantops-cli --target {TARGET}");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "tenantops-cli",
        ])
        .args(["--bin", "tenantops", "--target", TARGET])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building tenantops for {TARGET} failed");
    }
    let built = target_dir.join(TARGET).join("release").join("tenantops");
    let dist = target_dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let out = dist.join(format!("tenantops-{TARGET}"));
    std::fs::copy(&built, &out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}  {:.2} MiB, statically linked (musl)",
        out.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(ExitCode::SUCCESS)
}
