//! `cargo xtask smoke --api URL --token-command CMD [--workspace ID --tenant ID]
//! [--type TYPE] [--timeout SECONDS]`: a post-deploy check of a tenantops API, each step
//! printed, stopping at the first that fails with what the API answered:
//!
//! 1. `GET /v1/health` answers 200;
//! 2. `GET /v1/openapi.json` answers an OpenAPI 3.1 document with paths;
//! 3. `CMD` (run by `sh -c`) prints a token, and `GET /v1/workspaces` with it answers 200 (a
//!    401 here is API Gateway refusing the token: its issuer or audience is not the stack's
//!    `JwtIssuer`/`JwtAudience`);
//! 4. a start of `TYPE` (default `inventory.sync`) on the tenant (default: the first active
//!    tenant of the first workspace the caller sees) answers 202 or 200 (deduplicated), and
//!    the run, polled every 2 s, completes `succeeded` within `--timeout` (default 300 s).
//!
//! HTTP goes through `curl` (https for a deployment, http for the local stack); the token
//! reaches it on stdin, never on a command line.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Args {
    api: String,
    token_command: String,
    workspace: Option<String>,
    tenant: Option<String>,
    run_type: String,
    timeout: Duration,
}

const USAGE: &str = "usage: cargo xtask smoke --api URL --token-command CMD [--workspace ID --tenant ID] [--type TYPE] [--timeout SECONDS]";

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        run_type: "inventory.sync".into(),
        timeout: Duration::from_secs(300),
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?
            .clone();
        match flag.as_str() {
            "--api" => parsed.api = value.trim_end_matches('/').to_owned(),
            "--token-command" => parsed.token_command = value,
            "--workspace" => parsed.workspace = Some(value),
            "--tenant" => parsed.tenant = Some(value),
            "--type" => parsed.run_type = value,
            "--timeout" => {
                parsed.timeout = Duration::from_secs(value.parse().context("--timeout")?);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if parsed.api.is_empty() || parsed.token_command.is_empty() {
        bail!("{USAGE}");
    }
    if parsed.workspace.is_some() != parsed.tenant.is_some() {
        bail!("--workspace and --tenant go together\n{USAGE}");
    }
    Ok(parsed)
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let args = parse(args)?;
    let started = Instant::now();
    let anonymous = Api {
        base: &args.api,
        token: None,
    };
    println!("smoke: {}", args.api);

    let health = anonymous.expect("GET", "/v1/health", None, &[200])?;
    println!("  ok  GET /v1/health: 200 {health}");

    let doc = anonymous.expect("GET", "/v1/openapi.json", None, &[200])?;
    let version = doc["openapi"].as_str().unwrap_or_default();
    let paths = doc["paths"].as_object().map_or(0, |p| p.len());
    if !version.starts_with("3.1") || paths == 0 {
        bail!("GET /v1/openapi.json is not an OpenAPI 3.1 document with paths");
    }
    println!("  ok  GET /v1/openapi.json: OpenAPI {version}, {paths} paths");

    let token = token(&args.token_command)?;
    let api = Api {
        base: &args.api,
        token: Some(&token),
    };
    let workspaces = api.expect("GET", "/v1/workspaces", None, &[200])?;
    let items = workspaces["items"].as_array().cloned().unwrap_or_default();
    println!(
        "  ok  GET /v1/workspaces with the token: 200, {} workspace(s)",
        items.len()
    );

    let (workspace, tenant) = match (&args.workspace, &args.tenant) {
        (Some(w), Some(t)) => (w.clone(), t.clone()),
        _ => first_tenant(&api, &items)?,
    };
    let path = format!("/v1/workspaces/{workspace}/tenants/{tenant}/operations");
    let body = json!({ "type": args.run_type });
    let start = api.expect("POST", &path, Some(&body), &[200, 202])?;
    let run = start["run"]["id"]
        .as_str()
        .context("the start answered no run id")?
        .to_owned();
    println!(
        "  ok  POST {path} {body}: run {run}{}",
        if start["deduplicated"] == true {
            " (an active one, deduplicated)"
        } else {
            ""
        }
    );
    let view = watch(&api, &run, args.timeout)?;
    let outcome = view["run"]["outcome"].as_str().unwrap_or_default();
    if outcome != "succeeded" {
        bail!(
            "run {run} completed {outcome}: {}",
            json!({"failures": view["run"]["failures"], "counters": view["run"]["counters"]})
        );
    }
    println!(
        "  ok  run {run} completed succeeded: {}",
        view["run"]["counters"]
    );
    println!("smoke: passed in {:.0?}", started.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// Runs the token command; its trimmed output, without a `Bearer ` prefix, is the token.
fn token(command: &str) -> anyhow::Result<String> {
    let out = Command::new("sh")
        .args(["-c", command])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running the token command {command:?}"))?;
    if !out.status.success() {
        bail!("the token command {command:?} failed ({})", out.status);
    }
    let text = String::from_utf8(out.stdout).context("the token command printed non-UTF-8")?;
    let token = text.trim().trim_start_matches("Bearer ").trim().to_owned();
    if token.is_empty() || token == "null" || token.contains(char::is_whitespace) {
        bail!("the token command {command:?} printed no single token");
    }
    println!("  ok  the token command printed a token");
    Ok(token)
}

/// The first active tenant of the first workspace that has one.
fn first_tenant(api: &Api<'_>, workspaces: &[Value]) -> anyhow::Result<(String, String)> {
    for workspace in workspaces {
        let id = workspace["id"].as_str().unwrap_or_default();
        let tenants = api.expect("GET", &format!("/v1/workspaces/{id}/tenants"), None, &[200])?;
        let active = tenants["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["status"] == "active");
        if let Some(tenant) = active.and_then(|t| t["id"].as_str()) {
            return Ok((id.to_owned(), tenant.to_owned()));
        }
    }
    bail!(
        "the caller sees no workspace with an active tenant: onboard one first (README: \"Onboarding a customer tenant\"), or pass --workspace and --tenant"
    )
}

/// Polls the run until it is completed; prints each status it passes through.
fn watch(api: &Api<'_>, run: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let view = api.expect("GET", &format!("/v1/operations/{run}"), None, &[200])?;
        let status = view["run"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status != last {
            println!("      run {run}: {status}");
            last = status;
        }
        if last == "completed" {
            return Ok(view);
        }
        if Instant::now() > deadline {
            bail!("run {run} is still {last} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

struct Api<'a> {
    base: &'a str,
    token: Option<&'a str>,
}

impl Api<'_> {
    /// One request; fails unless the status is one of `want`, showing the answer (a problem
    /// document, or API Gateway's 401).
    fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: &[u16],
    ) -> anyhow::Result<Value> {
        let (status, text) = self.send(method, path, body)?;
        if !want.contains(&status) {
            let hint = if status == 401 {
                "\n(API Gateway refused the token: check that its iss and aud are the stack's JwtIssuer and JwtAudience, and that it has not expired)"
            } else {
                ""
            };
            bail!("{method} {path}: {status} {text}{hint}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: {status} but not JSON: {text}"))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String)> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method])
            .arg(format!("{}{path}", self.base))
            .args(["-H", "accept: application/json", "-w", "\n%{http_code}"])
            // Options on stdin (`-K -`): the token never shows in a process listing.
            .args(["-K", "-"]);
        if let Some(body) = body {
            cmd.args(["-H", "content-type: application/json", "--data-binary"])
                .arg(body.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running curl")?;
        if let Some(mut stdin) = child.stdin.take()
            && let Some(token) = self.token
        {
            writeln!(stdin, "header = \"Authorization: Bearer {token}\"")?;
        }
        let out = child.wait_with_output().context("running curl")?;
        if !out.status.success() {
            bail!(
                "{method} {path}: curl failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text
            .rsplit_once('\n')
            .with_context(|| format!("{method} {path}: no status from curl"))?;
        let status = code
            .trim()
            .parse()
            .with_context(|| format!("{method} {path}: no status from curl"))?;
        Ok((status, body.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_are_checked() {
        let ok = parse(&args(&["--api", "http://x/", "--token-command", "echo t"])).expect("test");
        assert_eq!(ok.api, "http://x");
        assert_eq!(ok.run_type, "inventory.sync");
        assert_eq!(ok.timeout, Duration::from_secs(300));
        for bad in [
            &["--api", "http://x"][..],
            &["--token-command", "echo t"],
            &[
                "--api",
                "http://x",
                "--token-command",
                "echo t",
                "--workspace",
                "W",
            ],
            &["--api", "http://x", "--token-command"],
            &["--api", "http://x", "--token-command", "t", "--other", "1"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_token_is_the_commands_trimmed_output() {
        assert_eq!(
            token("printf 'Bearer abc.def\\n'").expect("test"),
            "abc.def"
        );
        assert!(token("true").is_err());
        assert!(token("echo null").is_err());
        assert!(token("exit 3").is_err());
    }
}
