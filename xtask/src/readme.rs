//! `cargo xtask readme`: runs the README's shell examples, in order, in one bash against a
//! fresh local stack, and fails at the first failing command, naming its README line.
//!
//! # Which blocks run
//!
//! Every fenced block whose info string is `sh` or `bash` carries a marker, an HTML comment
//! (invisible on GitHub) on the line right before its opening fence:
//!
//! - `<!-- readme-test: run -->`: the block runs;
//! - `<!-- readme-test: run twice -->`: it runs, then runs again (an example that must be
//!   safe to repeat, such as onboarding);
//! - `<!-- readme-test: skip: REASON -->`: it does not run (it needs AWS, or starts the
//!   stack itself), and REASON says why.
//!
//! A shell block without a marker, a marker with no block after it, or a marker of another
//! form fails the command, so a new example is never silently left untested. Other fences
//! (`yaml`, diagrams) are not looked at.
//!
//! # How they run
//!
//! The runnable blocks are concatenated into `.local/readme/readme.sh` behind `set -euo
//! pipefail` (the README asks readers for `set -eo pipefail`; `-u` here also catches a
//! misspelt variable) and an `ERR` trap that prints the README line of the command that
//! failed. The script runs in `.local/readme/`, whose `.local/stack.json` is the stack's (so
//! the blocks' `S=.local/stack.json` finds it, as from the repository root), with
//! `TENANTOPS_STATE_DIR` pointing there for the `cargo xtask` commands the blocks call. The
//! stack is `tenantops-local` as `cargo xtask local` runs it, built in debug (CI's tests
//! already built it), on fresh emulators and a free port; it is stopped with SIGTERM after.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{emulators, install, localstack};

/// The whole script may take this long.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    RunTwice,
    Skip,
}

/// One shell block of the README.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// 1-based line of its opening fence.
    fence_line: usize,
    mode: Mode,
    text: String,
}

fn marker(line: &str) -> Option<anyhow::Result<Mode>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim()
        .strip_prefix("readme-test:")?
        .trim();
    Some(match inner {
        "run" => Ok(Mode::Run),
        "run twice" => Ok(Mode::RunTwice),
        skip if skip
            .strip_prefix("skip:")
            .is_some_and(|r| !r.trim().is_empty()) =>
        {
            Ok(Mode::Skip)
        }
        other => Err(anyhow::anyhow!(
            "unknown marker `readme-test: {other}` (run, run twice, or skip: REASON)"
        )),
    })
}

/// The README's shell blocks, each with its marker's mode.
fn blocks(readme: &str) -> anyhow::Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, Mode)> = None;
    let mut lines = readme.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, line)) = lines.next() {
        if let Some(mode) = marker(line) {
            let mode = mode.with_context(|| format!("README.md:{n}"))?;
            if let Some((m, _)) = pending {
                bail!("README.md:{m}: a readme-test marker with no shell block after it");
            }
            pending = Some((n, mode));
            continue;
        }
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if let Some((m, _)) = pending.filter(|_| !line.trim().is_empty()) {
                bail!("README.md:{m}: a readme-test marker must stand right before a ```sh fence");
            }
            continue;
        };
        let shell = matches!(info.trim(), "sh" | "bash");
        let marked = pending.take();
        if shell && marked.is_none() {
            bail!(
                "README.md:{n}: a shell block without a readme-test marker (see xtask/src/readme.rs)"
            );
        }
        if let (Some((m, _)), false) = (marked, shell) {
            bail!("README.md:{m}: a readme-test marker before a fence that is not ```sh");
        }
        let mut text = String::new();
        let mut closed = false;
        for (_, body) in lines.by_ref() {
            if body.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            text.push_str(body);
            text.push('\n');
        }
        if !closed {
            bail!("README.md:{n}: the fence is never closed");
        }
        if let Some((_, mode)) = marked {
            out.push(Block {
                fence_line: n,
                mode,
                text,
            });
        }
    }
    if let Some((m, _)) = pending {
        bail!("README.md:{m}: a readme-test marker with no shell block after it");
    }
    Ok(out)
}

/// The script: the runnable blocks in order, each announced, under an `ERR` trap that maps
/// the failing command's script line back to its README line.
fn script(blocks: &[Block]) -> String {
    let mut s = String::from(
        "#!/usr/bin/env bash\n\
         # Generated by `cargo xtask readme` from README.md; do not edit.\n\
         set -euo pipefail\n\
         README_FENCE=0; README_SHIFT=0\n\
         trap 'rc=$?; echo \"xtask readme: README.md:$((LINENO + README_SHIFT)) failed (exit $rc), in the block opened at README.md:$README_FENCE: $BASH_COMMAND\" >&2' ERR\n",
    );
    for block in blocks {
        let times = match block.mode {
            Mode::Run => 1,
            Mode::RunTwice => 2,
            Mode::Skip => 0,
        };
        for round in 1..=times {
            let again = if round > 1 { " (again)" } else { "" };
            // The line after these two header lines is the block's first, README line
            // fence_line + 1.
            let first = s.lines().count() + 3;
            let shift = (block.fence_line + 1) as i64 - first as i64;
            let _ = writeln!(s, "README_FENCE={}; README_SHIFT={shift}", block.fence_line);
            let _ = writeln!(
                s,
                "printf '\\n== README.md:%s%s, at %ss\\n' {} '{again}' \"$SECONDS\" >&2",
                block.fence_line
            );
            s.push_str(&block.text);
        }
    }
    s.push_str("trap - ERR\necho \"xtask readme: every block ran, in ${SECONDS}s\" >&2\n");
    s
}

pub fn run(root: &Path, target_dir: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let blocks = blocks(&readme)?;
    let runnable = blocks.iter().filter(|b| b.mode != Mode::Skip).count();
    eprintln!(
        "xtask: README.md has {} shell blocks, {runnable} to run",
        blocks.len()
    );
    install::all(root)?;
    let binary = localstack::build(root, target_dir)?;
    // The blocks run here, so that their `.local/stack.json` is this stack's, and a
    // developer's own `cargo xtask local` (the root's `.local/stack.json`) is left alone.
    let work = install::local_dir(root).join("readme");
    let state_dir = work.join(".local");
    std::fs::create_dir_all(&state_dir)?;
    let script_file = work.join("readme.sh");
    std::fs::write(&script_file, script(&blocks))?;

    let stack = emulators::Stack::start(root)?;
    let (host, _) = localstack::start_host(root, &binary, &state_dir, &stack)?;
    eprintln!(
        "xtask: local stack up after {:.0?}; running {}",
        started.elapsed(),
        script_file.display()
    );
    let ran = Instant::now();
    let mut child = Command::new("bash")
        .arg(&script_file)
        .current_dir(&work)
        .env("TENANTOPS_STATE_DIR", &state_dir)
        .stdin(Stdio::null())
        .spawn()
        .context("running bash")?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if ran.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let blocks_took = ran.elapsed();
    host.stop(&state_dir.join("stack.json"))?;
    drop(stack);
    eprintln!(
        "xtask: readme finished in {:.0?} (the blocks {blocks_took:.0?})",
        started.elapsed()
    );
    Ok(match status {
        Some(s) if s.success() => ExitCode::SUCCESS,
        Some(_) => {
            eprintln!(
                "xtask: a README block failed (above); the local stack's log: {}",
                state_dir.join("local.err.log").display()
            );
            ExitCode::FAILURE
        }
        None => {
            eprintln!("xtask: the README blocks did not finish within {SCRIPT_TIMEOUT:?}");
            ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# Title\n\
        \n\
        <!-- readme-test: run -->\n\
        ```sh\n\
        A=1\n\
        echo $A\n\
        ```\n\
        \n\
        ```yaml\n\
        k: v\n\
        ```\n\
        <!-- readme-test: skip: needs AWS -->\n\
        ```sh\n\
        sam deploy\n\
        ```\n\
        <!-- readme-test: run twice -->\n\
        ```bash\n\
        false\n\
        ```\n";

    #[test]
    fn marked_shell_blocks_are_found_with_their_mode() {
        let found = blocks(README).expect("test");
        let summary: Vec<_> = found.iter().map(|b| (b.fence_line, b.mode)).collect();
        assert_eq!(
            summary,
            vec![(4, Mode::Run), (13, Mode::Skip), (17, Mode::RunTwice)]
        );
        assert_eq!(found[0].text, "A=1\necho $A\n");
    }

    #[test]
    fn every_shell_block_of_the_readme_is_marked() {
        let root = crate::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
        let found = blocks(&readme).expect("README.md's markers");
        assert!(found.iter().filter(|b| b.mode != Mode::Skip).count() >= 5);
    }

    #[test]
    fn unmarked_or_misplaced_markers_are_refused() {
        for bad in [
            "```sh\necho\n```\n",
            "<!-- readme-test: run -->\n\ntext\n```sh\necho\n```\n",
            "<!-- readme-test: run -->\n```yaml\nk: v\n```\n",
            "<!-- readme-test: skip: -->\n```sh\necho\n```\n",
            "<!-- readme-test: maybe -->\n```sh\necho\n```\n",
            "<!-- readme-test: run -->\n```sh\necho\n",
            "<!-- readme-test: run -->\n",
        ] {
            assert!(blocks(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_script_runs_blocks_in_order_and_maps_failures_to_readme_lines() {
        let s = script(&blocks(README).expect("test"));
        assert!(!s.contains("sam deploy"));
        assert_eq!(s.matches("false\n").count(), 2);
        // Each block's first line sits at the script line that, shifted, is fence + 1.
        let lines: Vec<&str> = s.lines().collect();
        for (fence, first) in [(4, "A=1"), (17, "false")] {
            let at = lines.iter().position(|l| *l == first).expect("test") + 1;
            let shift_line = lines[at - 3];
            let shift: i64 = shift_line
                .rsplit('=')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("test");
            assert_eq!(at as i64 + shift, fence + 1, "{shift_line}");
        }
    }

    #[test]
    fn the_script_stops_at_the_failing_line_and_names_it() {
        let out = Command::new("bash")
            .args(["-c", &script(&blocks(README).expect("test"))])
            .output()
            .expect("test");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("README.md:18 failed (exit 1), in the block opened at README.md:17"),
            "{stderr}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
        assert!(!stderr.contains("(again)"), "{stderr}");
    }
}
