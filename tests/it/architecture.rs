//! ARCHITECTURE.md's structural invariants, stated as absences and held here: no source file
//! without a `//!` line, none over 600 lines, no import between route modules or between job
//! modules, no table-key prefix spelled outside `keys.rs`.

use std::path::{Path, PathBuf};

use super::tidy::{repo_root, rust_files};

fn sources(dirs: &[&str]) -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap()
        .display()
        .to_string()
}

/// The module's names in a directory of Rust files (`mod.rs` and `lib.rs` excluded).
fn modules_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|m| m != "mod" && m != "lib" && m != "main")
        .collect();
    out.sort();
    out
}

/// The lines of `text` before its in-file test module, which does not count toward size.
fn code_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let test_module = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "));
    test_module.unwrap_or(lines.len())
}

/// Whether `text` names module `module` of its own crate as a path: `super::m`, `crate::m`,
/// `crate::routes::m`, or inside a `use crate::{..}` / `use super::{..}` group.
fn imports(text: &str, parent: &str, module: &str) -> bool {
    let paths = [
        format!("super::{module}"),
        format!("crate::{module}::"),
        format!("crate::{module};"),
        format!("crate::{parent}::{module}"),
    ];
    if paths.iter().any(|p| text.contains(p.as_str())) {
        return true;
    }
    // Grouped imports: `use crate::{a, b::c}` / `use super::{a, b}`.
    for group_start in ["use crate::{", "use super::{"] {
        let mut rest = text;
        while let Some(at) = rest.find(group_start) {
            let group = &rest[at + group_start.len()..];
            let end = group.find("};").unwrap_or(group.len());
            let named = group[..end]
                .split(|c: char| c == ',' || c.is_whitespace())
                .any(|item| item == module || item.starts_with(&format!("{module}::")));
            if named {
                return true;
            }
            rest = &group[end..];
        }
    }
    false
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let missing: Vec<String> = sources(&["shared", "functions", "tools", "tests", "xtask"])
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.starts_with("//!")
        })
        .map(|f| relative(f))
        .collect();
    assert!(
        missing.is_empty(),
        "source files that do not open with a `//!` line saying what they are: {missing:?}"
    );
}

#[test]
fn no_source_file_outside_tests_and_graph_sim_is_over_600_lines() {
    let over: Vec<String> = sources(&["shared", "functions", "tools", "xtask"])
        .iter()
        .filter(|f| !relative(f).starts_with("tools/graph-sim"))
        .filter_map(|f| {
            let n = code_lines(&std::fs::read_to_string(f).unwrap());
            (n > 600).then(|| format!("{} ({n} lines)", relative(f)))
        })
        .collect();
    assert!(over.is_empty(), "split these by concept: {over:?}");
}

/// Route modules share what they need through modules below them (`launch`, `error`,
/// `routes/common.rs`), never through each other.
#[test]
fn no_route_module_imports_another() {
    let dir = repo_root().join("functions/api/src/routes");
    let routes: Vec<String> = modules_in(&dir)
        .into_iter()
        .filter(|m| m != "common")
        .collect();
    assert!(routes.len() >= 5, "route modules: {routes:?}");
    let mut offenders = Vec::new();
    for from in &routes {
        let text = std::fs::read_to_string(dir.join(format!("{from}.rs"))).unwrap();
        for to in routes.iter().filter(|to| *to != from) {
            if imports(&text, "routes", to) {
                offenders.push(format!("routes/{from}.rs → {to}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "route modules importing each other: {offenders:?}"
    );
}

/// A job shares what every job needs through `job.rs`; it never reaches into the dispatcher
/// (`execute.rs`) or into another job.
#[test]
fn no_job_module_imports_the_dispatcher_or_another_job() {
    let dir = repo_root().join("functions/worker/src");
    let execute = std::fs::read_to_string(dir.join("execute.rs")).unwrap();
    // The jobs are the modules the dispatcher hands runs to.
    let jobs: Vec<String> = modules_in(&dir)
        .into_iter()
        .filter(|m| m != "execute" && m != "job")
        .filter(|m| imports(&execute, "", m))
        .collect();
    assert!(
        ["backup", "restore", "sync", "verify"]
            .iter()
            .all(|j| jobs.iter().any(|m| m == j)),
        "the dispatcher's jobs: {jobs:?}"
    );
    let mut offenders = Vec::new();
    for from in &jobs {
        let text = std::fs::read_to_string(dir.join(format!("{from}.rs"))).unwrap();
        if imports(&text, "", "execute") {
            offenders.push(format!("{from}.rs → execute"));
        }
        for to in jobs.iter().filter(|to| *to != from) {
            if imports(&text, "", to) {
                offenders.push(format!("{from}.rs → {to}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "job modules importing upward or sideways: {offenders:?}"
    );
}

/// Every key prefix `keys.rs` spells (`"RUN#`, `"WS#`, ...), taken from keys.rs itself.
fn key_prefixes() -> Vec<String> {
    let keys = std::fs::read_to_string(repo_root().join("shared/aws/src/keys.rs")).unwrap();
    let mut out = Vec::new();
    let bytes = keys.as_bytes();
    for (i, _) in keys.match_indices('"') {
        let rest = &bytes[i + 1..];
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || **b == b'_')
            .count();
        if len > 0 && rest.get(len) == Some(&b'#') {
            out.push(format!("\"{}#", &keys[i + 1..i + 1 + len]));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// All DynamoDB keys are built in `shared/aws/src/keys.rs`: no other file spells a prefix.
#[test]
fn only_the_keys_module_spells_a_key_prefix() {
    let prefixes = key_prefixes();
    for expected in [
        "\"RUN#",
        "\"LOCK#",
        "\"WS#",
        "\"USER#",
        "\"ACTIVE#",
        "\"SCHEDULES#",
    ] {
        assert!(
            prefixes.iter().any(|p| p == expected),
            "{expected} in {prefixes:?}"
        );
    }
    let keys = repo_root().join("shared/aws/src/keys.rs");
    let offenders: Vec<String> = sources(&["shared", "functions", "tools"])
        .iter()
        .filter(|f| **f != keys)
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let found: Vec<&String> = prefixes
                .iter()
                .filter(|p| text.contains(p.as_str()))
                .collect();
            (!found.is_empty()).then(|| format!("{} {found:?}", relative(f)))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "table keys built outside keys.rs: {offenders:?}"
    );
}
