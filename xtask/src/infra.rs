//! `cargo xtask lint-infra`: cfn-lint on the SAM template, and `sam validate --lint` too when
//! the SAM CLI is installed. Any finding fails.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;

use crate::install;

/// Pinned so that CI and every machine judge the template by the same rules.
const CFN_LINT_VERSION: &str = "1.58.0";
pub const TEMPLATE: &str = "infra/template.yaml";

pub fn lint(root: &Path) -> anyhow::Result<ExitCode> {
    let cfn_lint = cfn_lint(root)?;
    let mut clean = true;

    eprintln!("xtask: cfn-lint {CFN_LINT_VERSION} {TEMPLATE}");
    let out = Command::new(&cfn_lint)
        .arg("--")
        .arg(TEMPLATE)
        .current_dir(root)
        .output()
        .with_context(|| format!("running {}", cfn_lint.display()))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    // cfn-lint exits non-zero for errors (2), warnings (4) and informational findings (8);
    // anything it prints is a finding too.
    if !out.status.success() || !out.stdout.is_empty() {
        eprintln!("xtask: cfn-lint found problems in {TEMPLATE}");
        clean = false;
    }

    if available("sam") {
        eprintln!("xtask: sam validate --lint");
        let status = Command::new("sam")
            .args(["validate", "--lint", "--template-file", TEMPLATE])
            .current_dir(root)
            .status()
            .context("running sam validate")?;
        if !status.success() {
            eprintln!("xtask: sam validate --lint failed");
            clean = false;
        }
    } else {
        eprintln!("xtask: no `sam` on PATH; skipping sam validate --lint");
    }

    if clean {
        eprintln!("xtask: {TEMPLATE} is clean");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// `.local/venv/bin/cfn-lint` at the pinned version, installed from PyPI when missing.
fn cfn_lint(root: &Path) -> anyhow::Result<PathBuf> {
    let bin = install::venv_dir(root).join("bin").join("cfn-lint");
    let pinned = |bin: &Path| {
        Command::new(bin).arg("--version").output().is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == CFN_LINT_VERSION)
        })
    };
    if !pinned(&bin) {
        install::pip_install(root, &[&format!("cfn-lint=={CFN_LINT_VERSION}")])?;
        if !pinned(&bin) {
            anyhow::bail!("{} is not cfn-lint {CFN_LINT_VERSION}", bin.display());
        }
    }
    Ok(bin)
}

/// Whether `tool --version` runs.
pub fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
