//! The `tenantops` command line, run as the real binary against a test stack served over
//! HTTP through the local gateway (JWT check, API Gateway's event), with a worker polling the
//! queue and graph-sim playing Microsoft Graph. Also holds the typed client's route table to
//! the OpenAPI document and the router.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::Fault;
use tenantops_local::gateway::{self, Gateway};
use tenantops_tests::{ApiCall, TestStack, WorkerHarness};
use tokio::task::JoinHandle;

use crate::restore;
use crate::tidy::repo_root;

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const COMPLIANCE: &str = "deviceManagement/deviceCompliancePolicies";
/// How long one command may take (a watched run included).
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        handback_after: Duration::from_secs(5),
    }
}

/// The `tenantops` binary. Another package's binary has no `CARGO_BIN_EXE_` here, so it is
/// built once per test process (a no-op when `cargo xtask test` built it first) into this
/// target directory.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--package",
                "tenantops-cli",
                "--bin",
                "tenantops",
            ])
            .current_dir(repo_root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building tenantops failed");
        // This test binary is target/<profile>/deps/it-<hash>.
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap();
        dir.join(format!("tenantops{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A test stack served over HTTP, with its worker polling the queue in the background.
struct Served {
    stack: TestStack,
    worker: Arc<WorkerHarness>,
    api: String,
    /// The command line's config directory (profiles, kept confirmation tokens).
    config: PathBuf,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

async fn serve(stack: TestStack, worker: WorkerHarness) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let app =
        gateway::router(Gateway::from_template(stack.deps.clone(), stack.tokens.clone()).unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let worker = Arc::new(worker);
    let polling = worker.clone();
    let poller = tokio::spawn(async move {
        loop {
            // A failed poll is the run's problem to show, not the poller's end.
            let _ = tenantops_local::worker_host::drain(&polling.deps).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let config = std::env::temp_dir().join(format!("tenantops-cli-{}", ulid::Ulid::new()));
    Served {
        stack,
        worker,
        api,
        config,
        tasks: vec![server, poller],
    }
}

impl Served {
    /// The environment of a caller with `token` in the demo workspace and tenant.
    fn as_user(&self, token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("TENANTOPS_API", self.api.clone()),
            ("TENANTOPS_TOKEN", token.to_owned()),
            (
                "TENANTOPS_WORKSPACE",
                self.stack.demo.workspace_id.to_string(),
            ),
            ("TENANTOPS_TENANT", self.stack.demo.tenant_id.to_string()),
        ]
    }

    fn owner_token(&self) -> String {
        self.stack.token(&self.stack.users().owner)
    }

    /// Runs `tenantops args` with `env` and `stdin`, off the runtime so that the server and
    /// the worker go on serving it.
    async fn run(&self, env: Vec<(&'static str, String)>, args: &[&str], stdin: &str) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut cmd = Command::new(binary());
        for var in [
            "TENANTOPS_API",
            "TENANTOPS_TOKEN",
            "TENANTOPS_TOKEN_COMMAND",
            "TENANTOPS_PROFILE",
            "TENANTOPS_WORKSPACE",
            "TENANTOPS_TENANT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("TENANTOPS_CONFIG_DIR", &self.config)
            .envs(env)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("starting tenantops");
            // A command that reads no input may have exited already: a closed pipe is fine.
            let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
            // Both outputs are read while it runs (a completion script fills a pipe), and a
            // command that never ends (a run that never completes) fails the test instead of
            // hanging it.
            let drain = |mut r: Box<dyn Read + Send>| {
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    r.read_to_end(&mut out).unwrap();
                    out
                })
            };
            let stdout = drain(Box::new(child.stdout.take().unwrap()));
            let stderr = drain(Box::new(child.stderr.take().unwrap()));
            let started = std::time::Instant::now();
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if started.elapsed() > COMMAND_LIMIT {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("tenantops {args:?} did not end within {COMMAND_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            Output {
                status,
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            }
        })
        .await
        .unwrap()
    }

    async fn restore_record(&self, id: &str) -> Value {
        let path = format!("{}/restores/{id}?limit=1", tenant_path(&self.stack));
        let r = self
            .stack
            .call(ApiCall::get(path).by(&self.stack.users().owner))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["restore"].clone()
    }
}

fn tenant_path(stack: &TestStack) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", shown(o)))
}

fn no_token_in(o: &Output, token: &str) {
    assert!(
        !text(&o.stdout).contains(token) && !text(&o.stderr).contains(token),
        "the token was printed:\n{}",
        shown(o)
    );
}

#[test]
fn the_clients_routes_are_the_documents_and_the_routers() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("functions/api/openapi.json")).unwrap(),
    )
    .unwrap();
    let served: BTreeSet<&str> = tenantops_api::ROUTES.iter().copied().collect();
    let called: BTreeSet<&str> = tenantops_client::ROUTES.iter().copied().collect();
    let not_covered: BTreeSet<&str> = tenantops_client::NOT_COVERED.iter().copied().collect();
    for key in &called {
        let (method, path) = key.split_once(' ').unwrap();
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "the client calls {key}, which openapi.json does not describe"
        );
        assert!(
            served.contains(key),
            "the client calls {key}, which the router does not serve"
        );
    }
    assert!(
        called.is_disjoint(&not_covered),
        "listed as not covered but called: {:?}",
        called.intersection(&not_covered).collect::<Vec<_>>()
    );
    let unlisted: Vec<&&str> = served
        .iter()
        .filter(|r| !called.contains(*r) && !not_covered.contains(*r))
        .collect();
    assert!(
        unlisted.is_empty(),
        "routes the client neither calls nor lists in tenantops_client::NOT_COVERED: {unlisted:#?}"
    );
    let stale: Vec<&&str> = not_covered
        .iter()
        .filter(|r| !served.contains(*r))
        .collect();
    assert!(
        stale.is_empty(),
        "NOT_COVERED lists routes the router does not serve: {stale:?}"
    );
}

#[tokio::test]
async fn runs_start_watch_follows_a_sync_to_success_and_exits_0() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(CONFIGS, 3)], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let out = s
        .run(
            s.as_user(&token),
            &[
                "runs",
                "start",
                "inventory.sync",
                "--params",
                r#"{"types": ["deviceConfigurations"]}"#,
                "--watch",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("completed: succeeded"), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("inventory.sync) started"),
        "{}",
        shown(&out)
    );
    no_token_in(&out, &token);

    // The same run, shown as JSON for scripts.
    let out = s
        .run(
            s.as_user(&token),
            &["--json", "runs", "list", "--limit", "5"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let page = json_of(&out);
    let run = &page["items"][0];
    assert_eq!(run["type"], "inventory.sync", "{page}");
    assert_eq!(run["outcome"], "succeeded", "{page}");
    let id = run["id"].as_str().unwrap();
    let out = s
        .run(s.as_user(&token), &["--json", "runs", "show", id], "")
        .await;
    assert_eq!(json_of(&out)["status"], "completed", "{}", shown(&out));
}

#[tokio::test]
async fn a_watched_runs_exit_code_follows_its_outcome() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[(CONFIGS, 2), (COMPLIANCE, 2)], policy())
        .await;
    worker.sim.inject(Fault::Forbidden {
        path_prefix: COMPLIANCE.into(),
    });
    let s = serve(stack, worker).await;
    let token = s.owner_token();

    // One type of two forbidden: partially succeeded, exit 2, the reason code shown.
    let out = s
        .run(
            s.as_user(&token),
            &[
                "runs",
                "start",
                "inventory.sync",
                "--params",
                r#"{"types": ["deviceConfigurations", "deviceCompliancePolicies"]}"#,
                "--watch",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("partially_succeeded"), "{}", shown(&out));
    assert!(
        stdout.contains("graph.permission_denied"),
        "{}",
        shown(&out)
    );

    // Only the forbidden type: failed, exit 1, through `runs watch` of a started run.
    let out = s
        .run(
            s.as_user(&token),
            &[
                "--json",
                "runs",
                "start",
                "inventory.sync",
                "--params",
                r#"{"types": ["deviceCompliancePolicies"]}"#,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let started = json_of(&out);
    assert_eq!(started["deduplicated"], false, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_owned();
    let out = s.run(s.as_user(&token), &["runs", "watch", &id], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(": failed"), "{}", shown(&out));
    assert!(
        stdout.contains("graph.permission_denied"),
        "{}",
        shown(&out)
    );

    // --json watch: the completed run, for scripts; the exit code still follows it.
    let out = s
        .run(s.as_user(&token), &["--json", "runs", "watch", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let run = json_of(&out);
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(
        run["failures"][0]["code"], "graph.permission_denied",
        "{run}"
    );
    assert!(
        s.worker
            .sim
            .requests()
            .iter()
            .any(|r| r.path.contains("deviceCompliancePolicies"))
    );
}

#[tokio::test]
async fn login_local_writes_a_profile_and_json_output_parses() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let stack_file = s.config.join("stack.json");
    std::fs::create_dir_all(&s.config).unwrap();
    std::fs::write(
        &stack_file,
        json!({
            "api_url": s.api,
            "workspace_id": s.stack.demo.workspace_id,
            "tenant_id": s.stack.demo.tenant_id,
            "tokens": {"owner": token},
        })
        .to_string(),
    )
    .unwrap();
    let out = s
        .run(
            vec![],
            &["login", "--local", "--stack", stack_file.to_str().unwrap()],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    no_token_in(&out, &token);

    // No flag and no variable: the profile gives the API, the token and the ids.
    let out = s.run(vec![], &["--json", "tenants", "list"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let tenants = json_of(&out);
    assert_eq!(
        tenants["items"][0]["id"],
        json!(s.stack.demo.tenant_id),
        "{tenants}"
    );
    for args in [
        vec!["--json", "workspaces", "list"],
        vec!["--json", "members", "list"],
        vec!["--json", "runs", "list"],
        vec!["--json", "tenants", "onboarding"],
        vec!["--json", "backups", "list"],
        vec!["--json", "schedules", "list"],
        vec!["--json", "audit", "--limit", "3"],
        vec!["--json", "notifications"],
    ] {
        let out = s.run(vec![], &args, "").await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", shown(&out));
        let v = json_of(&out);
        assert!(v.is_object(), "{args:?}: {v}");
        no_token_in(&out, &token);
    }
    let out = s.run(vec![], &["completions", "bash"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(text(&out.stdout).contains("tenantops"));
}

#[tokio::test]
async fn a_forbidden_start_prints_the_problems_title_detail_and_code() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.stack.token(&s.stack.users().readonly);
    let out = s
        .run(s.as_user(&token), &["runs", "start", "inventory.sync"], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(403)"), "{}", shown(&out));
    assert!(stderr.contains("code: auth.forbidden"), "{}", shown(&out));
    assert!(stderr.contains("capability: "), "{}", shown(&out));
    assert!(out.stdout.is_empty(), "{}", shown(&out));
    no_token_in(&out, &token);

    let out = s
        .run(
            s.as_user(&token),
            &["--json", "runs", "start", "inventory.sync"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let problem: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(problem["error"]["code"], "auth.forbidden", "{problem}");
    assert_eq!(problem["error"]["status"], 403, "{problem}");
}

#[tokio::test]
async fn a_restore_executes_only_after_the_tenants_name_is_typed() {
    let (stack, worker) = restore::setup(&[("groups", 2), (restore::POLICIES, 1)]).await;
    let group = restore::first_group(&worker);
    restore::assign_all(&worker, restore::POLICIES, &group);
    restore::sync_groups(&stack, &worker).await;
    let set = restore::backup(&stack, &worker, &["configurationPolicies"]).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();

    let out = s
        .run(
            s.as_user(&token),
            &[
                "--json",
                "restores",
                "preview",
                "--backup-set",
                &set,
                "--watch",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let preview = json_of(&out);
    assert_eq!(preview["run"]["outcome"], "succeeded", "{preview}");
    let restore = preview["restore"]["restore"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        preview["restore"]["restore"]["executable"], true,
        "{preview}"
    );
    assert!(
        !preview.to_string().contains("confirmation_token"),
        "the token stays out of the output: {preview}"
    );

    // A wrong name: refused, nothing executed.
    let out = s
        .run(
            s.as_user(&token),
            &["restores", "execute", &restore],
            "Some Other Tenant\n",
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("create "),
        "the summary is shown: {}",
        shown(&out)
    );
    assert!(stderr.contains("nothing was executed"), "{}", shown(&out));
    let record = s.restore_record(&restore).await;
    assert_eq!(record["status"], "previewed", "{record}");
    assert_eq!(record["run_id"], Value::Null, "{record}");

    // The tenant's display name: executed, and watched to its end.
    let name = s
        .stack
        .call(ApiCall::get(tenant_path(&s.stack)).by(&s.stack.users().owner))
        .await
        .body["tenant"]["display_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s
        .run(
            s.as_user(&token),
            &["restores", "execute", &restore, "--watch"],
            &format!("{name}\n"),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("restore.execute"),
        "{}",
        shown(&out)
    );
    let record = s.restore_record(&restore).await;
    assert_eq!(record["status"], "completed", "{record}");
    no_token_in(&out, &token);
}

/// A platform operator reads the system plane through the command line; a workspace owner
/// meets the API's 404 there; `workspaces show` and `runs list --problem` read the admin plane.
#[tokio::test]
async fn the_system_plane_answers_a_platform_operator_and_no_one_else() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[], policy()).await;
    let s = serve(stack, worker).await;
    let owner = s.owner_token();
    let started = s
        .run(
            s.as_user(&owner),
            &["--json", "runs", "start", "inventory.sync"],
            "",
        )
        .await;
    assert_eq!(started.status.code(), Some(0), "{}", shown(&started));
    let run = json_of(&started)["run"]["id"].as_str().unwrap().to_owned();

    let platform = s.stack.platform_token(&s.stack.users().platform);
    let ws = s.stack.demo.workspace_id.to_string();
    let runs = s
        .run(
            s.as_user(&platform),
            &["--json", "system", "runs", "--in-workspace", &ws],
            "",
        )
        .await;
    assert_eq!(runs.status.code(), Some(0), "{}", shown(&runs));
    let listed = json_of(&runs);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run.as_str() && r["workspace_name"] == "Contoso MSP"),
        "{listed}"
    );
    let one = s
        .run(s.as_user(&platform), &["system", "run", &run], "")
        .await;
    assert_eq!(one.status.code(), Some(0), "{}", shown(&one));
    assert!(text(&one.stdout).contains("Contoso MSP"), "{}", shown(&one));
    let workspaces = s
        .run(s.as_user(&platform), &["system", "workspaces"], "")
        .await;
    assert!(
        text(&workspaces.stdout).contains("Fabrikam MSP"),
        "{}",
        shown(&workspaces)
    );
    no_token_in(&workspaces, &platform);

    let refused = s
        .run(s.as_user(&owner), &["system", "workspace", &ws], "")
        .await;
    assert_eq!(refused.status.code(), Some(1), "{}", shown(&refused));
    assert!(
        text(&refused.stderr).contains("route.not_found"),
        "{}",
        shown(&refused)
    );

    let shown_ws = s
        .run(s.as_user(&owner), &["--json", "workspaces", "show"], "")
        .await;
    assert_eq!(json_of(&shown_ws)["role"], "owner", "{}", shown(&shown_ws));
    let failed = s
        .run(
            s.as_user(&owner),
            &["--json", "runs", "list", "--problem", "failed"],
            "",
        )
        .await;
    assert_eq!(failed.status.code(), Some(0), "{}", shown(&failed));
    assert!(json_of(&failed)["items"].is_array(), "{}", shown(&failed));
}

/// The id a human `batch ...` line starts with: `batch ID (TYPE) STATUS: N tenants`.
fn batch_id_in(o: &Output) -> String {
    text(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("batch "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no batch line:\n{}", shown(o)))
        .to_owned()
}

/// `batch start --wait` follows a batch over three tenants to its end: exit 0 when every
/// child succeeded, 2 when one tenant's failed (graph-sim does not know it), that tenant and
/// its reason shown by `batch view`, and progress as plain lines off a terminal; `batch retry`
/// of that tenant fails again: exit 1.
#[tokio::test]
async fn batch_start_wait_follows_every_tenant_and_exits_by_the_batchs_status() {
    let stack = TestStack::new().await;
    let (ws, owner) = (stack.demo.workspace_id, stack.users().owner.clone());
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws, &owner, 2).await);
    let config = tenantops_tests::tenants::sim_serving(&tenants[..2], &[(CONFIGS, 2)]);
    let worker = stack.worker_with(config, policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let params = r#"{"types": ["deviceConfigurations"]}"#;
    let (served, unknown) = (
        format!("{},{}", tenants[0].id, tenants[1].id),
        tenants[2].id.to_string(),
    );

    let out = s
        .run(
            s.as_user(&token),
            &[
                "batch",
                "start",
                "--type",
                "inventory.sync",
                "--params",
                params,
                "--tenants",
                &served,
                "--wait",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(inventory.sync) succeeded: 2 tenants"),
        "{}",
        shown(&out)
    );
    assert!(stdout.contains("2 succeeded"), "{}", shown(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(started)"), "{}", shown(&out));
    assert!(
        stderr.contains("not started "),
        "progress as plain lines: {}",
        shown(&out)
    );
    no_token_in(&out, &token);

    // Every tenant, for scripts: the finished batch as JSON, exit 2.
    let out = s
        .run(
            s.as_user(&token),
            &[
                "--json",
                "batch",
                "start",
                "--type",
                "inventory.sync",
                "--params",
                params,
                "--all",
                "--wait",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let done = json_of(&out);
    assert_eq!(done["batch"]["status"], "partially_succeeded", "{done}");
    assert_eq!(done["batch"]["progress"]["succeeded"], 2, "{done}");
    assert_eq!(done["failed"][0]["tenant_id"], unknown.as_str(), "{done}");
    let id = done["batch"]["id"].as_str().unwrap().to_owned();
    no_token_in(&out, &token);

    // `batch view`: the counts, the failed tenant with its reason, one line per child.
    let out = s.run(s.as_user(&token), &["batch", "view", &id], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(batch_id_in(&out), id);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("partially_succeeded"), "{}", shown(&out));
    assert!(stdout.contains("failed tenants:"), "{}", shown(&out));
    let reason = done["failed"][0]["reason"].as_str().unwrap();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&unknown) && l.contains(reason)),
        "{}",
        shown(&out)
    );
    for t in &tenants {
        let id = t.id.to_string();
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(&id)
                && l.contains("started")
                && l.contains("completed")),
            "a line for child {id}: {}",
            shown(&out)
        );
    }
    no_token_in(&out, &token);

    // --json view is the body as the API sent it.
    let out = s
        .run(s.as_user(&token), &["--json", "batch", "view", &id], "")
        .await;
    let api = s
        .stack
        .call(ApiCall::get(done["links"]["view"].as_str().unwrap()).by(&owner))
        .await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(json_of(&out), api.body);

    // `batch retry --wait`: a new batch over the failed tenant only, which fails again: exit 1.
    let out = s
        .run(
            s.as_user(&token),
            &["--json", "batch", "retry", &id, "--wait"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let retried = json_of(&out);
    assert_eq!(retried["batch"]["retry_of"], id.as_str(), "{retried}");
    assert_eq!(retried["batch"]["tenants"], json!([unknown]), "{retried}");
    assert_eq!(retried["batch"]["status"], "failed", "{retried}");
    no_token_in(&out, &token);
}

/// `batch cancel` before the relay starts any child: the batch is cancelled and no child ever
/// starts; a read-only member may not cancel it, a non-member sees no batch.
#[tokio::test]
async fn batch_cancel_stops_a_batch_and_batch_view_shows_it() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(CONFIGS, 1)], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let paused = s.stack.pause_relay().await;
    let out = s
        .run(
            s.as_user(&token),
            &[
                "--json",
                "batch",
                "start",
                "--type",
                "inventory.sync",
                "--all",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let created = json_of(&out);
    assert_eq!(created["batch"]["status"], "starting", "{created}");
    let id = created["batch"]["id"].as_str().unwrap().to_owned();

    let readonly = s.stack.token(&s.stack.users().readonly);
    let out = s
        .run(s.as_user(&readonly), &["batch", "cancel", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("code: auth.forbidden"),
        "{}",
        shown(&out)
    );
    no_token_in(&out, &readonly);

    let out = s
        .run(s.as_user(&token), &["batch", "cancel", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(batch_id_in(&out), id);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(inventory.sync) cancelled: 1 tenants"),
        "{}",
        shown(&out)
    );
    assert!(stdout.contains("cancelled at "), "{}", shown(&out));
    no_token_in(&out, &token);
    drop(paused);
    s.stack.settle().await;

    let out = s
        .run(s.as_user(&token), &["--json", "batch", "view", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let view = json_of(&out);
    assert_eq!(view["batch"]["status"], "cancelled", "{view}");
    assert!(
        view["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["run_id"].is_null()),
        "no child started after the cancel: {view}"
    );
    no_token_in(&out, &token);

    let outsider = s.stack.token(&s.stack.users().outsider);
    let out = s
        .run(s.as_user(&outsider), &["batch", "view", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("(404)"), "{}", shown(&out));
    no_token_in(&out, &outsider);
}

/// Drift through the command line: a report listed and viewed (what changed, which field),
/// its changed items reverted (a restore preview of the baseline, its token kept, not shown),
/// the report accepted (a backup, watched), and the diff of the baseline and that backup.
#[tokio::test]
async fn drift_reports_are_listed_viewed_reverted_and_accepted() {
    let (stack, worker) = restore::setup(&[(CONFIGS, 3)]).await;
    let baseline = restore::backup(&stack, &worker, &["deviceConfigurations"]).await;
    let changed = worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let o = &mut t.collections.get_mut(CONFIGS).unwrap().objects[0];
        o["description"] = json!("changed behind our back");
        o["id"].as_str().unwrap().to_owned()
    });
    let report = stack
        .start(json!({"type": "drift.check", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();

    let out = s.run(s.as_user(&token), &["drift", "list"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(text(&out.stdout).contains(&report), "{}", shown(&out));
    no_token_in(&out, &token);

    let out = s
        .run(s.as_user(&token), &["drift", "view", &report], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("changed")
            && l.contains(&changed)
            && l.contains("description")),
        "{}",
        shown(&out)
    );
    assert!(stdout.contains(&baseline), "{}", shown(&out));
    no_token_in(&out, &token);

    // An item that is not TYPE/ID is refused before any request.
    let out = s
        .run(
            s.as_user(&token),
            &["drift", "revert", &report, "--item", "nothing"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("TYPE/ID"), "{}", shown(&out));

    let out = s
        .run(
            s.as_user(&token),
            &["--json", "drift", "revert", &report, "--all", "--watch"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let preview = json_of(&out);
    assert_eq!(preview["run"]["outcome"], "succeeded", "{preview}");
    let restore = &preview["restore"]["restore"];
    assert_eq!(restore["backup_set_id"], baseline.as_str(), "{preview}");
    let planned: Vec<&str> = preview["restore"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(planned, [changed.as_str()], "{preview}");
    assert!(
        !preview.to_string().contains("confirmation_token"),
        "{preview}"
    );
    // The token is kept for `restores execute`, as a preview's is.
    let id = restore["id"].as_str().unwrap();
    assert!(
        s.config
            .join("restores")
            .join(format!("{id}.token"))
            .is_file(),
        "{}",
        shown(&out)
    );
    no_token_in(&out, &token);

    let out = s
        .run(
            s.as_user(&token),
            &["drift", "accept", &report, "--watch"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("completed: succeeded"),
        "{}",
        shown(&out)
    );
    no_token_in(&out, &token);
    let again = s
        .run(s.as_user(&token), &["drift", "accept", &report], "")
        .await;
    assert_eq!(again.status.code(), Some(1), "{}", shown(&again));
    assert!(
        text(&again.stderr).contains("code: drift.already_accepted"),
        "{}",
        shown(&again)
    );

    let sets = s
        .run(s.as_user(&token), &["--json", "backups", "list"], "")
        .await;
    let accepted = json_of(&sets)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(accepted, baseline);
    let out = s
        .run(
            s.as_user(&token),
            &["backup", "diff", &baseline, &accepted],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("added 0, removed 0, changed 1, unchanged 2"),
        "{}",
        shown(&out)
    );
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("changed")
            && l.contains(&changed)
            && l.contains("description")),
        "{}",
        shown(&out)
    );
    no_token_in(&out, &token);
}

/// A restore batch through the command line: started and followed to its previews' end (its
/// token kept, never printed), refused when the wrong tenant count is typed, then executed and
/// followed to its end.
#[tokio::test]
async fn a_restore_batch_executes_only_after_the_tenant_count_is_typed() {
    let (stack, worker) = restore::setup(&[("groups", 2), (restore::POLICIES, 1)]).await;
    let group = restore::first_group(&worker);
    restore::assign_all(&worker, restore::POLICIES, &group);
    restore::sync_groups(&stack, &worker).await;
    let set = restore::backup(&stack, &worker, &["configurationPolicies"]).await;
    let tenant = stack.demo.tenant_id.to_string();
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let params = json!({"source_tenant_id": tenant, "backup_set_id": set}).to_string();
    let out = s
        .run(
            s.as_user(&token),
            &[
                "--json",
                "batch",
                "start",
                "--type",
                "restore.preview",
                "--params",
                &params,
                "--tenants",
                &tenant,
                "--wait",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let previews = json_of(&out);
    assert_eq!(
        previews["batch"]["status"], "awaiting_confirmation",
        "{previews}"
    );
    assert!(
        !text(&out.stdout).contains("confirmation_token"),
        "the batch's token stays out of the output: {}",
        shown(&out)
    );
    let id = previews["batch"]["id"].as_str().unwrap().to_owned();
    let restore = previews["children"][0]["restore"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    let out = s
        .run(s.as_user(&token), &["batch", "execute", &id], "2\n")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("nothing was executed"),
        "{}",
        shown(&out)
    );
    assert_eq!(s.restore_record(&restore).await["status"], "previewed");

    let out = s
        .run(
            s.as_user(&token),
            &["--json", "batch", "execute", &id, "--wait"],
            "1\n",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let execution = json_of(&out);
    assert_eq!(execution["batch"]["type"], "restore.execute", "{execution}");
    assert_eq!(execution["batch"]["status"], "succeeded", "{execution}");
    assert_eq!(s.restore_record(&restore).await["status"], "completed");
    no_token_in(&out, &token);
}

/// The workspace's own schedules through the command line: created over a tag, listed,
/// retargeted to every tenant, shown and deleted; a read-only member is refused.
#[tokio::test]
async fn workspace_schedules_are_created_retargeted_and_deleted() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(CONFIGS, 1)], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    let create = [
        "--json",
        "workspace-schedules",
        "create",
        "--name",
        "Gold nightly",
        "--cadence",
        "daily:01:30",
        "--keep-last",
        "7",
        "--tag",
        "gold",
    ];
    let readonly = s.stack.token(&s.stack.users().readonly);
    let out = s.run(s.as_user(&readonly), &create, "").await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("auth.forbidden"),
        "{}",
        shown(&out)
    );

    let out = s.run(s.as_user(&token), &create, "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let created = json_of(&out);
    assert_eq!(
        created["schedule"]["targets"],
        json!({"tag": "gold"}),
        "{created}"
    );
    let id = created["schedule"]["id"].as_str().unwrap().to_owned();

    let out = s
        .run(s.as_user(&token), &["ws-schedules", "list"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("Gold nightly"),
        "{}",
        shown(&out)
    );

    let out = s
        .run(
            s.as_user(&token),
            &["--json", "ws-schedules", "update", &id, "--all"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(json_of(&out)["schedule"]["targets"], "all");
    let out = s
        .run(s.as_user(&token), &["ws-schedules", "show", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(text(&out.stdout).contains("all"), "{}", shown(&out));

    let out = s
        .run(s.as_user(&token), &["ws-schedules", "delete", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = s
        .run(s.as_user(&token), &["ws-schedules", "show", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("(404)"), "{}", shown(&out));
    no_token_in(&out, &token);
}

/// Webhook subscriptions through the command line: created (the signing secret printed once,
/// never again), listed, shown, tested (a delivery queued), deleted; a read-only member is
/// refused.
#[tokio::test]
async fn webhooks_are_subscribed_tested_and_deleted() {
    let stack = TestStack::new().await;
    let worker = stack.worker(&[(CONFIGS, 1)], policy()).await;
    let s = serve(stack, worker).await;
    let token = s.owner_token();
    // A public address literal: nothing resolves it, nothing is delivered to it here.
    let create = [
        "--json",
        "webhooks",
        "create",
        "--url",
        "https://93.184.216.34/hook",
        "--events",
        "run.failed,drift.detected",
    ];
    let readonly = s.stack.token(&s.stack.users().readonly);
    let out = s.run(s.as_user(&readonly), &create, "").await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("auth.forbidden"),
        "{}",
        shown(&out)
    );

    let out = s.run(s.as_user(&token), &create, "").await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let created = json_of(&out);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["webhook"]["events"],
        json!(["run.failed", "drift.detected"])
    );
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();

    for args in [
        vec!["webhooks", "list"],
        vec!["webhooks", "show", &id],
        vec!["--json", "webhooks", "show", &id],
    ] {
        let out = s.run(s.as_user(&token), &args, "").await;
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        assert!(
            text(&out.stdout).contains("93.184.216.34"),
            "{}",
            shown(&out)
        );
        no_token_in(&out, &secret);
    }
    let out = s
        .run(s.as_user(&token), &["webhooks", "test", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("test event queued"),
        "{}",
        shown(&out)
    );
    let out = s
        .run(s.as_user(&token), &["webhooks", "deliveries", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    no_token_in(&out, &secret);

    let out = s
        .run(s.as_user(&token), &["webhooks", "delete", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = s
        .run(s.as_user(&token), &["webhooks", "show", &id], "")
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("(404)"), "{}", shown(&out));
    no_token_in(&out, &token);
}
