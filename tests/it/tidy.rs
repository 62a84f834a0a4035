//! Tidy checks over the source tree.

use std::path::{Path, PathBuf};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line that is only a route key literal, e.g. `"POST /v1/workspaces/{ws}/tenants",`.
fn is_route_key(line: &str) -> bool {
    let l = line.trim().trim_end_matches(',');
    let Some(inner) = l.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return false;
    };
    [
        "GET /v1/",
        "POST /v1/",
        "PUT /v1/",
        "PATCH /v1/",
        "DELETE /v1/",
    ]
    .iter()
    .any(|m| inner.starts_with(m))
}

/// Whether `source` builds an operations URL of either plane (admin `/v1/operations...`,
/// `.../operations?...`, or anything under `/v1/system/`). Route keys ("GET
/// /v1/operations/{run}" in the router's ROUTES table) name templates, not URLs a response
/// carries, and comments mint nothing: both are skipped.
fn mints_operations_url(source: &str) -> bool {
    let code: String = source
        .lines()
        .filter(|l| !is_route_key(l) && !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    [
        "/v1/operations",
        "}/operations",
        "/operations?",
        "/operations\"",
        "operations/{",
        "/v1/system/",
    ]
    .iter()
    .any(|p| code.contains(p))
}

/// Every operations URL in a response, of either plane, comes from
/// `shared/core/src/links.rs`.
#[test]
fn only_the_links_module_mints_operations_urls() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["shared", "functions", "tools"] {
        rust_files(&root.join(dir), &mut files);
    }
    let links = root.join("shared/core/src/links.rs");
    assert!(files.contains(&links));
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != links)
        .filter(|f| mints_operations_url(&std::fs::read_to_string(f).unwrap()))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "operations URLs built outside links.rs: {offenders:?}"
    );
}

/// The guard above breaks on hand-built URLs of both planes (broken on purpose here, so a
/// weakened pattern list fails this test), and lets route keys and comments pass.
#[test]
fn the_links_guard_catches_hand_built_urls_of_both_planes() {
    for hand_built in [
        r#"let u = format!("/v1/system/operations/{}", run.id);"#,
        r#"let u = format!("/v1/system/operations?workspace={ws}");"#,
        r#"let u = format!("/v1/system/workspaces/{ws}");"#,
        r#"let u = format!("/v1/operations/{}", run.id);"#,
        r#"let u = format!("/v1/workspaces/{ws}/operations?tenant={t}");"#,
        r#"let u = format!("{base}/operations");"#,
    ] {
        assert!(mints_operations_url(hand_built), "not caught: {hand_built}");
    }
    for allowed in [
        r#"    "GET /v1/system/operations/{run}","#,
        r#"    "GET /v1/operations/{run}","#,
        "/// `GET /v1/system/operations`: runs across every workspace.",
        "let u = links::system_view(run.id);",
    ] {
        assert!(!mints_operations_url(allowed), "flagged: {allowed}");
    }
}

/// No Scan of the table outside the one-off migrations (`shared/aws/src/migrations.rs`):
/// lists and aggregates query indexes.
#[test]
fn only_the_migrations_scan_the_table() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["shared", "functions", "tools"] {
        rust_files(&root.join(dir), &mut files);
    }
    let migrations = root.join("shared/aws/src/migrations.rs");
    assert!(
        std::fs::read_to_string(&migrations)
            .unwrap()
            .contains(".scan()")
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != migrations)
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains(".scan()")
                || text.contains("ScanInput")
                || text.contains("scan::builders")
        })
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "Scans outside migrations.rs: {offenders:?}"
    );
}

/// All DynamoDB keys are built in `shared/aws/src/keys.rs`.
#[test]
fn only_the_keys_module_builds_table_keys() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["shared", "functions", "tools"] {
        rust_files(&root.join(dir), &mut files);
    }
    let keys = root.join("shared/aws/src/keys.rs");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != keys)
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            [
                "\"RUN#",
                "\"LOCK#",
                "\"WS#",
                "\"USER#",
                "\"ENTRA#",
                "\"TENANT#",
                "\"MEMBER#",
            ]
            .iter()
            .any(|p| text.contains(p))
        })
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "table keys built outside keys.rs: {offenders:?}"
    );
}

/// `shared/core` stays free of AWS, HTTP and Lambda crates (ARCHITECTURE.md).
#[test]
fn core_depends_on_no_aws_http_or_lambda_crate() {
    let manifest = std::fs::read_to_string(repo_root().join("shared/core/Cargo.toml")).unwrap();
    for banned in ["aws", "lambda", "http", "hyper", "axum", "reqwest", "tokio"] {
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or_default();
        let deps = deps.split("\n[").next().unwrap_or_default();
        assert!(!deps.contains(banned), "shared/core depends on `{banned}`");
    }
}

/// The API never depends on Graph code: DB-only by construction.
#[test]
fn the_api_function_has_no_graph_dependency() {
    let manifest = std::fs::read_to_string(repo_root().join("functions/api/Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("graph"),
        "functions/api must not depend on Graph code"
    );
}

/// A start is one DynamoDB write: the API and the scheduler send no work message (the relay
/// does, from the table's stream), so neither holds a dispatcher.
#[test]
fn no_start_path_sends_a_work_message() {
    for krate in ["functions/api/src", "functions/scheduler/src"] {
        let mut files = Vec::new();
        rust_files(&repo_root().join(krate), &mut files);
        assert!(!files.is_empty(), "{krate}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains("Dispatcher") && !text.contains("dispatcher"),
                "{} dispatches runs itself",
                file.display()
            );
        }
    }
}

/// The README's reason-code table is the registry's (the golden file, verbatim).
#[test]
fn the_readme_documents_every_reason_code() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table = tenantops_core::reason::registry_table();
    assert!(
        readme.contains(&table),
        "README.md's reason-code table is out of date"
    );
    for code in tenantops_core::ReasonCode::ALL {
        assert!(
            readme.contains(&format!("`{code}`")),
            "README.md lacks {code}"
        );
    }
}

/// The README's object-type table is the catalogue's, verbatim.
#[test]
fn the_readme_documents_every_object_type() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&tenantops_core::object_type::catalogue_table()),
        "README.md's object-type table is out of date: paste object_type::catalogue_table()"
    );
}

/// The pipe in the template renders `OperationRun Queued` with the same fields as the local
/// stack's pipe (`LifecycleEvents::queued_detail`).
#[test]
fn the_queued_event_has_the_same_fields_in_aws_and_locally() {
    let template = std::fs::read_to_string(repo_root().join("infra/template.yaml")).unwrap();
    let start = template
        .find("RunQueuedPipe:")
        .expect("the template declares RunQueuedPipe");
    let pipe = &template[start..];
    let input = &pipe[pipe
        .find("InputTemplate:")
        .expect("the pipe has an input template")..];
    let input = &input[..input.find("\n\n").unwrap_or(input.len())];
    let run = tenantops_core::Run {
        id: tenantops_core::RunId::new(),
        workspace_id: tenantops_core::WorkspaceId::new(),
        tenant_id: tenantops_core::TenantId::new(),
        operation: tenantops_core::OperationType::InventorySync,
        status: tenantops_core::RunStatus::Queued,
        outcome: tenantops_core::Outcome::Pending,
        identity: String::new(),
        initiator: tenantops_core::Initiator::Scheduler,
        params: serde_json::json!({}),
        context: tenantops_core::RunContext {
            trigger: tenantops_core::Trigger::Manual,
            target_scope: serde_json::json!("tenant"),
            provider_connection_id: None,
            backup_schedule_id: None,
            scheduled_for: None,
            restore_id: None,
            retry_of: None,
            batch_id: None,
        },
        counters: Default::default(),
        failures: vec![],
        created_at: chrono::Utc::now(),
        started_at: None,
        completed_at: None,
        lease_expires_at: None,
        attempts: 0,
        cancel_requested_at: None,
        result: None,
        checkpoint: None,
    };
    let detail = tenantops_aws::events::LifecycleEvents::queued_detail(&run);
    let fields: Vec<&String> = detail.as_object().unwrap().keys().collect();
    for f in &fields {
        assert!(
            input.contains(&format!("\"{f}\"")),
            "the pipe's input template lacks `{f}`"
        );
    }
    assert_eq!(
        input.matches("\": ").count(),
        fields.len(),
        "the pipe renders fields the local pipe does not"
    );
}

/// The functions reach AWS only through `shared/aws` (ARCHITECTURE.md): no function crate
/// depends on an AWS SDK crate of its own.
#[test]
fn no_function_crate_depends_on_an_aws_sdk() {
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("functions")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(header) = line.strip_prefix('[') {
                section = header.trim_end_matches(']').to_owned();
                // `[dependencies.aws-sdk-sqs]`, `[target.'cfg(..)'.dev-dependencies.aws-sdk-s3]`
                if let Some((_, name)) = section.split_once("dependencies.")
                    && name.starts_with("aws-sdk-")
                {
                    offenders.push(format!("{}: {name}", manifest.display()));
                }
                continue;
            }
            if !section.ends_with("dependencies") {
                continue;
            }
            // `aws-sdk-sqs.workspace = true`, `aws-sdk-sqs = "1"`, `"aws-sdk-sqs" = { .. }`
            let name = line
                .split(['=', '.'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"');
            // ... or renamed: `sqs = { package = "aws-sdk-sqs", .. }`.
            let renamed = line.replace(' ', "").contains("package=\"aws-sdk-");
            if name.starts_with("aws-sdk-") || renamed {
                offenders.push(format!("{}: {name}", manifest.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "function crates call AWS through shared/aws only; these depend on an SDK: {offenders:?}"
    );
}
