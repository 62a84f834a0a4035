//! The demo stack for the commands that run against one (`fuzz-api`, `readme`):
//! `tenantops-local` built (a no-op when the tests already built it), started on a free
//! loopback port with its own state directory, and stopped with SIGTERM. Plus the loopback
//! HTTP/1.1 client those commands and `demo-drift` talk to it with.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::emulators;

/// The demo stack on a free loopback port, stopped when dropped.
pub struct LocalHost {
    child: Child,
}

impl LocalHost {
    /// Stops the stack as a developer's Ctrl-C or a service manager does (SIGTERM), and
    /// checks it shut down cleanly: exited within 30 s and removed its `stack.json`, so a
    /// stale file never points at dead ports.
    pub fn stop(mut self, stack_file: &Path) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("sending SIGTERM to tenantops-local")?;
        if !sent.success() {
            bail!("could not signal tenantops-local ({pid})");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("tenantops-local did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if stack_file.exists() {
            bail!("tenantops-local stopped but left {}", stack_file.display());
        }
        Ok(())
    }
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Builds `tenantops-local` (debug) and returns its binary.
pub fn build(root: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--package", "tenantops-local"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building tenantops-local failed");
    }
    Ok(target_dir.join("debug").join("tenantops-local"))
}

/// Starts `tenantops-local` with its state in `state_dir` and waits until it has written
/// `stack.json` and listens; returns the host and the parsed `stack.json`.
pub fn start_host(
    root: &Path,
    binary: &Path,
    state_dir: &Path,
    stack: &emulators::Stack,
) -> anyhow::Result<(LocalHost, Value)> {
    std::fs::create_dir_all(state_dir)?;
    let stack_file = state_dir.join("stack.json");
    let _ = std::fs::remove_file(&stack_file);
    let port = free_port()?;
    let log = state_dir.join("local.log");
    let child = Command::new(binary)
        .current_dir(root)
        .envs(stack.env())
        .env("TENANTOPS_API_PORT", port.to_string())
        .env("TENANTOPS_STATE_DIR", state_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(File::create(&log)?)
        .stderr(File::create(state_dir.join("local.err.log"))?)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut host = LocalHost { child };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = host.child.try_wait()? {
            bail!(
                "tenantops-local exited ({status}) before serving; see {}",
                state_dir.join("local.err.log").display()
            );
        }
        if stack_file.is_file()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("tenantops-local did not serve on {addr} within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let info = read_stack(&stack_file)?;
    Ok((host, info))
}

/// A `stack.json` the local stack wrote.
pub fn read_stack(stack_file: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(stack_file).with_context(|| {
        format!(
            "reading {} (is the local stack running? `cargo xtask local`)",
            stack_file.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", stack_file.display()))
}

/// A loopback `http://127.0.0.1:PORT[/...]` URL's address; anything else is refused.
pub fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let Some(rest) = url.strip_prefix("http://127.0.0.1:") else {
        bail!("{url} is not a loopback http://127.0.0.1:PORT URL");
    };
    let port = rest.split('/').next().unwrap_or_default();
    let port: u16 = port.parse().with_context(|| format!("{url}: no port"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// One HTTP/1.1 request on loopback (`Connection: close`): status and JSON (`Null` when the
/// body is empty or not JSON). With a token, as a bearer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, payload) = raw
        .split_once("\r\n\r\n")
        .with_context(|| format!("{method} {path}: no HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: no status"))?;
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

/// A string field of `stack.json`.
pub fn field<'v>(info: &'v Value, pointer: &str) -> anyhow::Result<&'v str> {
    info.pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("stack.json has no {pointer}"))
}
