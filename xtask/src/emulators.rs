//! Starts DynamoDB Local and moto on free loopback ports and stops them when dropped.
//! An emulator named by `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` is used as it is.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::install;

#[derive(Debug)]
pub struct Stack {
    children: Vec<(String, Child)>,
    dynamodb_url: String,
    moto_url: String,
}

impl Stack {
    pub fn start(root: &Path) -> anyhow::Result<Stack> {
        let logs = install::local_dir(root).join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut stack = Stack {
            children: Vec::new(),
            dynamodb_url: String::new(),
            moto_url: String::new(),
        };
        stack.dynamodb_url = match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let port = free_port()?;
                let dir = install::dynamodb_dir(root);
                let child = Command::new("java")
                    .arg("-Djava.library.path=./DynamoDBLocal_lib")
                    .args([
                        "-jar",
                        "DynamoDBLocal.jar",
                        "-inMemory",
                        "-sharedDb",
                        "-disableTelemetry",
                    ])
                    .args(["-port", &port.to_string()])
                    .current_dir(&dir)
                    .stdin(Stdio::null())
                    .stdout(File::create(logs.join("dynamodb.log"))?)
                    .stderr(File::create(logs.join("dynamodb.err.log"))?)
                    .spawn()
                    .context("starting DynamoDB Local")?;
                stack.children.push(("DynamoDB Local".into(), child));
                wait_for_port(port, "DynamoDB Local", &mut stack)?;
                format!("http://127.0.0.1:{port}")
            }
        };
        stack.moto_url = match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let port = free_port()?;
                let child = Command::new(install::moto_server(root))
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(File::create(logs.join("moto.log"))?)
                    .stderr(File::create(logs.join("moto.err.log"))?)
                    .spawn()
                    .context("starting moto")?;
                stack.children.push(("moto".into(), child));
                wait_for_port(port, "moto", &mut stack)?;
                format!("http://127.0.0.1:{port}")
            }
        };
        eprintln!(
            "xtask: DynamoDB Local at {}, moto at {}",
            stack.dynamodb_url, stack.moto_url
        );
        Ok(stack)
    }

    /// The environment that points the AWS SDK at the emulators.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL".into(), self.moto_url.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB".into(),
                self.dynamodb_url.clone(),
            ),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        for (k, default) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            let v = std::env::var(k).unwrap_or_else(|_| default.into());
            env.push((k.into(), v));
        }
        env
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            if child.kill().is_ok() {
                let _ = child.wait();
            } else {
                eprintln!("xtask: {name} had already stopped");
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn wait_for_port(port: u16, name: &str, stack: &mut Stack) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some((_, child)) = stack.children.last_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!("{name} exited ({status}) before listening; see .local/logs/");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{name} did not listen on {addr} within 60 s; see .local/logs/")
}
