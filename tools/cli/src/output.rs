//! What the command line prints: tables for people, JSON for scripts (`--json`), and
//! problems as their title, detail and code. Results go to stdout; prompts, progress and
//! errors to stderr.

use std::io::Write;

use comfy_table::{Table, presets};
use serde::Serialize;
use tenantops_client::Error as ApiError;

use crate::error::CliError;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON with `--json`; else runs `human`.
    pub fn show<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        if self.json {
            let text = serde_json::to_string_pretty(value).map_err(|e| {
                CliError::Stdout(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            line(&text)
        } else {
            human()
        }
    }
}

/// One line on stdout.
pub fn line(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(CliError::Stdout)
}

/// One line on stderr (notes, hints), never part of a script's output.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A table with a header row; `-` for an empty cell.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> Result<(), CliError> {
    if rows.is_empty() {
        note("(none)");
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.to_vec());
    for row in rows {
        t.add_row(
            row.into_iter()
                .map(|c| if c.is_empty() { "-".to_owned() } else { c })
                .collect::<Vec<_>>(),
        );
    }
    line(&t.to_string())
}

/// Key-value lines.
pub fn fields(pairs: &[(&str, String)]) -> Result<(), CliError> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        line(&format!("{k:<width$}  {v}"))?;
    }
    Ok(())
}

/// Where the next page is, when there is one.
pub fn more(next_cursor: Option<&str>) {
    if let Some(c) = next_cursor {
        note(&format!("more: --cursor {c}"));
    }
}

/// Prints an error on stderr: a problem as its title, detail and code (JSON with `--json`).
pub fn error(err: &CliError, json: bool) {
    let mut e = std::io::stderr().lock();
    if let CliError::Api(ApiError::Problem(p)) = err {
        if json {
            let text = serde_json::json!({ "error": p }).to_string();
            let _ = writeln!(e, "{text}");
            return;
        }
        let _ = writeln!(e, "error: {} ({})", p.title, p.status);
        let _ = writeln!(e, "  {}", p.detail);
        let _ = writeln!(e, "  code: {}", p.code);
        if let Some(c) = &p.capability {
            let _ = writeln!(e, "  capability: {c}");
        }
        if let Some(r) = &p.run_id {
            let _ = writeln!(e, "  run: {r}");
        }
        if let Some(s) = p.retry_after {
            let _ = writeln!(e, "  retry after: {s} s");
        }
        return;
    }
    if json {
        let text = serde_json::json!({ "error": { "message": err.to_string() } }).to_string();
        let _ = writeln!(e, "{text}");
        return;
    }
    let _ = writeln!(e, "error: {err}");
    if let CliError::Api(ApiError::Status { status: 401, .. }) = err {
        let _ = writeln!(
            e,
            "  the API refused the token: pass --token or --token-command, or run `tenantops login`"
        );
    }
}

/// `Some(x)` as text, `None` as empty.
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}
