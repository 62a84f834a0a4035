//! `cargo xtask fuzz-api`: schemathesis (PyPI, pinned) against a local stack, driven by the
//! API's own OpenAPI document at `/v1/openapi.json` with the demo owner's token. It fails on
//! any finding of the checks below: a 5xx, a status or media type the document does not list,
//! or a body that violates its schema. Loopback only, a fixed seed and a bounded number of
//! examples per operation, so CI runs it in a few minutes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::localstack::{field, start_host};
use crate::{emulators, install, localstack};

/// The owner's token on every seeding request.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    localstack::http(addr, method, path, Some(token), body)
}

/// Every check schemathesis has (server errors, status codes, media types, response
/// schemas and headers, negative data rejected, positive data accepted, unsupported
/// methods with `Allow`, missing required headers, ignored auth, use after free,
/// object-level authorization) must hold for every generated request.
const CHECKS: &str = "all";
/// But the one a pinned path id defeats (see where the ids are pinned).
const EXCLUDED_CHECKS: &str = "ensure_resource_availability";
/// Test cases per operation and phase; with the seed and one worker, the run is reproducible.
/// (One worker also because Python 3.11's parser is not thread-safe under hypothesis: two
/// workers met "AST constructor recursion depth mismatch" inside schemathesis.)
const MAX_EXAMPLES: &str = "100";
const SEED: &str = "20261124";

/// Ids the operations can reach past their 404 with: a backup schedule, a backup set its
/// run-now wrote (the stack's worker runs it against graph-sim; a set's diff is with
/// itself), a run, a restore preview, a drift report against that set.
fn seed_ids(addr: SocketAddr, info: &Value, token: &str) -> anyhow::Result<Seeded> {
    let tenant_path = format!(
        "/v1/workspaces/{}/tenants/{}",
        field(info, "/workspace_id")?,
        field(info, "/tenant_id")?
    );
    let expect = |(status, body): (u16, Value), want: u16, what: &str| {
        if status == want {
            Ok(body)
        } else {
            Err(anyhow::anyhow!("seeding {what}: {status} {body}"))
        }
    };
    let schedule = expect(
        http(
            addr,
            "POST",
            &format!("{tenant_path}/backup-schedules"),
            token,
            Some(&serde_json::json!({
                "name": "Fuzz", "cadence": {"kind": "daily", "at": "02:00"},
                "types": ["deviceConfigurations", "deviceCompliancePolicies"],
                "retention": {"keep_last": 3},
            })),
        )?,
        201,
        "a backup schedule",
    )?;
    let schedule = schedule["schedule"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let started = expect(
        http(
            addr,
            "POST",
            &format!("{tenant_path}/backup-schedules/{schedule}/run-now"),
            token,
            None,
        )?,
        202,
        "a backup",
    )?;
    let run = started["run"]["id"].as_str().unwrap_or_default().to_owned();
    // A run of the stack's worker, finished.
    let finished = |run: &str, what: &str| -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let view = expect(
                http(addr, "GET", &format!("/v1/operations/{run}"), token, None)?,
                200,
                what,
            )?;
            if view["run"]["status"] == "completed" {
                return Ok(view);
            }
            if Instant::now() > deadline {
                bail!("{what} did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let view = finished(&run, "the backup run")?;
    let Some(set) = view["run"]["result"]["backup_set_id"].as_str() else {
        bail!("the seeding backup wrote no set: {view}");
    };
    let set = set.to_owned();
    // A drift report (its id is its run's) against that set.
    let drift = expect(
        http(
            addr,
            "POST",
            &format!("{tenant_path}/operations"),
            token,
            Some(&serde_json::json!({ "type": "drift.check" })),
        )?,
        202,
        "a drift check",
    )?;
    let report = drift["run"]["id"].as_str().unwrap_or_default().to_owned();
    finished(&report, "the drift check")?;
    let preview = expect(
        http(
            addr,
            "POST",
            &format!("{tenant_path}/restores"),
            token,
            Some(&serde_json::json!({ "backup_set_id": set })),
        )?,
        202,
        "a restore preview",
    )?;
    let restore = preview["restore"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // What the destructive operations get instead: a schedule to delete, a tenant to archive.
    let spare_schedule = expect(
        http(
            addr,
            "POST",
            &format!("{tenant_path}/backup-schedules"),
            token,
            Some(&serde_json::json!({
                "name": "Spare", "cadence": {"kind": "hourly", "minute": 7},
                "retention": {"keep_days": 7},
            })),
        )?,
        201,
        "a spare backup schedule",
    )?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hex = format!("{nanos:032x}");
    let entra = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let spare_tenant = expect(
        http(
            addr,
            "POST",
            &format!("/v1/workspaces/{}/tenants", field(info, "/workspace_id")?),
            token,
            Some(&serde_json::json!({ "entra_tenant_id": entra, "display_name": "Spare" })),
        )?,
        201,
        "a spare tenant",
    )?;
    // A workspace schedule (and a spare to delete), and a batch over every tenant.
    let ws_path = format!("/v1/workspaces/{}", field(info, "/workspace_id")?);
    let workspace_schedule = |name: &str| -> anyhow::Result<Value> {
        expect(
            http(
                addr,
                "POST",
                &format!("{ws_path}/backup-schedules"),
                token,
                Some(&serde_json::json!({
                    "name": name, "cadence": {"kind": "daily", "at": "03:00"},
                    "retention": {"keep_last": 3}, "tenants": "all",
                })),
            )?,
            201,
            "a workspace schedule",
        )
    };
    let ws_schedule = workspace_schedule("Fuzz, every tenant")?;
    let spare_ws_schedule = workspace_schedule("Spare, every tenant")?;
    let batch = expect(
        http(
            addr,
            "POST",
            &format!("{ws_path}/batches"),
            token,
            Some(&serde_json::json!({ "type": "inventory.sync", "tenants": "all" })),
        )?,
        202,
        "a batch",
    )?;
    let id_of = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Seeded {
        ids: vec![
            ("schedule", schedule),
            ("other", set.clone()),
            ("set", set),
            ("run", run),
            ("restore", restore),
            ("report", report),
            ("batch", id_of(&batch, "/batch/id")),
        ],
        workspace_schedule: id_of(&ws_schedule, "/schedule/id"),
        spare_workspace_schedule: id_of(&spare_ws_schedule, "/schedule/id"),
        spare_schedule: id_of(&spare_schedule, "/schedule/id"),
        spare_tenant: id_of(&spare_tenant, "/tenant/id"),
    })
}

/// What `seed_ids` made.
struct Seeded {
    /// Path parameter name and id, for every operation.
    ids: Vec<(&'static str, String)>,
    /// For `deleteSchedule` only, so the other schedule routes keep theirs.
    spare_schedule: String,
    /// For the workspace schedule routes, whose ids are not a tenant's schedule's.
    workspace_schedule: String,
    /// For `deleteWorkspaceSchedule` only.
    spare_workspace_schedule: String,
    /// For `archiveTenant` only, so the demo tenant stays active.
    spare_tenant: String,
}

pub fn run(root: &Path, target_dir: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    install::all(root)?;
    install::schemathesis(root)?;
    let binary = localstack::build(root, target_dir)?;
    // Its own state directory: a developer's `cargo xtask local` keeps its stack.json.
    let state_dir: PathBuf = install::local_dir(root).join("fuzz");
    std::fs::create_dir_all(&state_dir)?;

    let stack = emulators::Stack::start(root)?;
    let (host, info) = start_host(root, &binary, &state_dir, &stack)?;
    let api_url = field(&info, "/api_url")?;
    if !api_url.starts_with("http://127.0.0.1:") {
        bail!("refusing to fuzz {api_url}: loopback only");
    }
    let token = field(&info, "/tokens/owner")?;
    let platform = field(&info, "/tokens/platform")?;
    // Real ids in every path (the demo workspace and tenant, and what `seed_ids` made), so
    // requests reach past the 404 of an unknown id into the handlers; users stay generated.
    let addr: SocketAddr = api_url
        .trim_start_matches("http://")
        .parse()
        .context("api_url is not host:port")?;
    let mut ids = vec![
        ("ws", field(&info, "/workspace_id")?.to_owned()),
        ("tenant", field(&info, "/tenant_id")?.to_owned()),
    ];
    let seeded = seed_ids(addr, &info, token)?;
    ids.extend(seeded.ids);
    let config = state_dir.join("schemathesis.toml");
    let mut toml = String::from("[parameters]\n");
    for (name, id) in &ids {
        toml.push_str(&format!("\"path.{name}\" = \"{id}\"\n"));
    }
    // A cursor is issued by the server for one query (the document says so); a generator
    // cannot mint one, so every request asks for the first page (an empty cursor). Cursor
    // validation is the integration tests' (`listing::`, `cursor.rs`).
    toml.push_str("\"query.cursor\" = \"\"\n");
    // Every path id above is pinned, and a pinned id wins over a stateful link: "create a
    // schedule, then delete it" deletes the pinned spare schedule (404 once an earlier step
    // deleted it), not the one just created. So the check that a created resource is found
    // (ST302) would judge the pin, not the API; the integration tests hold create-then-read.
    // It is left out on the command line (`EXCLUDED_CHECKS`).
    // Two refusals of schema-valid requests are the API's by design, so the positive-data
    // check accepts them on these operations only:
    // - a reused Idempotency-Key with another request is a 422 (draft-ietf-httpapi-
    //   idempotency-key-header, "Idempotency-Key is already used"), and generated keys repeat;
    // - a cron expression is checked by its grammar (ranges in order, steps within the
    //   field), which the document states in prose: no regex holds it, so a generated
    //   `expr` may be a 400 `schedule.invalid_cadence`;
    // - a batch's tag may name no active tenant (422 `batch.no_tenants`): which tags exist is
    //   data, not schema;
    // - a webhook URL's host must resolve to public addresses only (422
    //   `webhook.url_refused`): where a name resolves is DNS's, not the schema's.
    let accepted = |extra: &str| {
        format!(
            "checks.positive_data_acceptance.expected-statuses = [\"2xx\", \"401\", \"403\", \"404\", \"409\", \"429\", \"5xx\", \"{extra}\"]\n"
        )
    };
    for operation in [
        "startRun",
        "runScheduleNow",
        "retryScheduleRun",
        "acceptDriftReport",
        "createBatch",
        "retryBatch",
        "createWebhook",
    ] {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-operation-id = \"{operation}\"\n{}",
            accepted("422")
        ));
    }
    for operation in [
        "createSchedule",
        "updateSchedule",
        "createWorkspaceSchedule",
    ] {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-operation-id = \"{operation}\"\n{}",
            accepted("400")
        ));
    }
    // One block per operation: its accepted refusal and its pinned workspace schedule.
    toml.push_str(&format!(
        "\n[[operations]]\ninclude-operation-id = \"updateWorkspaceSchedule\"\n{}parameters = {{ \"path.schedule\" = \"{}\" }}\n",
        accepted("400"),
        seeded.workspace_schedule
    ));
    // The system plane as a platform operator sees it (anyone else meets 404 there).
    toml.push_str(&format!(
        "\n[[operations]]\ninclude-tag = \"system\"\nheaders = {{ Authorization = \"Bearer {platform}\" }}\n"
    ));
    for (operation, name, id) in [
        ("deleteSchedule", "schedule", &seeded.spare_schedule),
        (
            "viewWorkspaceSchedule",
            "schedule",
            &seeded.workspace_schedule,
        ),
        (
            "deleteWorkspaceSchedule",
            "schedule",
            &seeded.spare_workspace_schedule,
        ),
        ("archiveTenant", "tenant", &seeded.spare_tenant),
    ] {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-operation-id = \"{operation}\"\nparameters = {{ \"path.{name}\" = \"{id}\" }}\n"
        ));
    }
    std::fs::write(&config, toml)?;
    eprintln!("xtask: schemathesis against {api_url}/v1/openapi.json");
    let st = install::venv_dir(root).join("bin").join("schemathesis");
    let status = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{api_url}/v1/openapi.json")])
        .args(["--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .current_dir(&state_dir)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", st.display()))?;
    host.stop(&state_dir.join("stack.json"))?;
    drop(stack);
    eprintln!("xtask: fuzz-api finished in {:.0?}", started.elapsed());
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xtask: schemathesis reported findings (the local stack's log: {})",
            state_dir.join("local.err.log").display()
        );
        ExitCode::FAILURE
    })
}
