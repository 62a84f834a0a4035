//! The start path against its anchor: the Powertools idempotency handler a Python team would
//! write (`../shared/anchors/powertools-start`, run by its own `run.sh` on emulators of the
//! same versions), and tenantops' `starts` measurement, side by side with their ratios.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::num;

/// The anchor's script, beside the repository.
fn script(root: &Path) -> std::path::PathBuf {
    root.join("../shared/anchors/powertools-start/run.sh")
}

/// Runs the anchor and answers its JSON (its venv and DynamoDB Local live in
/// `.local/anchor`).
pub fn anchor(root: &Path) -> anyhow::Result<Value> {
    let script = script(root);
    if !script.is_file() {
        bail!(
            "the Powertools anchor is not at {}: the start-path comparison needs it",
            script.display()
        );
    }
    eprintln!(
        "xtask: running the Powertools anchor ({})",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .env("ANCHOR_DIR", root.join(".local/anchor"))
        .stderr(Stdio::inherit())
        .output()
        .context("running the anchor")?;
    if !out.status.success() {
        bail!("the anchor failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading the anchor's JSON")
}

fn f(v: &Value, path: &str) -> Option<f64> {
    v.pointer(path).and_then(Value::as_f64)
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Value {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    }
}

/// What share of the anchor's storm callers got a run (202 or 200), over all its rounds.
fn anchor_storm(anchor: &Value) -> Value {
    let rounds = anchor["dedupe_storm"]["rounds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (mut callers, mut answered, mut wall) = (0.0, 0.0, Vec::new());
    for r in &rounds {
        if let Some(by) = r["responses_by_status"].as_object() {
            for (status, n) in by {
                let n = n.as_f64().unwrap_or(0.0);
                callers += n;
                if status == "200" || status == "202" {
                    answered += n;
                }
            }
        }
        wall.extend(f(r, "/wall_ms"));
    }
    wall.sort_by(f64::total_cmp);
    json!({
        "callers_per_round": anchor["dedupe_storm"]["threads"],
        "rounds": rounds.len(),
        "callers_answered_with_the_run_pct": if callers > 0.0 { answered * 100.0 / callers } else { 0.0 },
        "wall_ms_median": wall.get(wall.len() / 2),
        "max_runs_created_in_a_round": anchor["dedupe_storm"]["max_runs_created_in_a_round"],
    })
}

/// The two side by side: the anchor's figures (as its JSON names them), tenantops', and the
/// ratios tenantops / anchor (above 1: tenantops is ahead). A failed anchor is kept as its
/// error, and tenantops' figures still stand.
pub fn compare(anchor: &anyhow::Result<Value>, tenantops: Value) -> Value {
    let anchor = match anchor {
        Ok(a) => a,
        Err(e) => return json!({ "tenantops": tenantops, "anchor": { "error": format!("{e:#}") } }),
    };
    let ours = |p: &str| f(&tenantops, p);
    let theirs = |p: &str| f(anchor, p);
    let anchor_summary = json!({
        "new_start": anchor["sequential_new_starts"],
        "dedupe_hit": anchor["sequential_duplicate_starts"],
        "aws_calls_per_new_start": anchor["aws_calls_per_start"]["new"]["total"],
        "aws_calls_per_dedupe_hit": anchor["aws_calls_per_start"]["duplicate_completed"]["total"],
        "storm": anchor_storm(anchor),
        "init_ms": anchor["cold_init"]["import_handler_in_process_ms_median"],
        "versions": anchor["versions"],
        "emulators": anchor["emulators"],
    });
    let ratios = json!({
        "new_start_per_s": ratio(
            ours("/in_process/new_start/per_s"),
            theirs("/sequential_new_starts/throughput_per_s"),
        ),
        "dedupe_hit_per_s": ratio(
            ours("/in_process/dedupe_hit/per_s"),
            theirs("/sequential_duplicate_starts/throughput_per_s"),
        ),
        "new_start_per_s_through_the_gateway": ratio(
            ours("/gateway/new_start/per_s"),
            theirs("/sequential_new_starts/throughput_per_s"),
        ),
        "dedupe_hit_per_s_through_the_gateway": ratio(
            ours("/gateway/dedupe_hit/per_s"),
            theirs("/sequential_duplicate_starts/throughput_per_s"),
        ),
    });
    json!({ "tenantops": tenantops, "anchor": anchor_summary, "ratios": ratios })
}

/// One line for scripts: tenantops' in-process release figures, the anchor's, the ratios.
pub fn script_line(starts: &Value) -> Value {
    let t = &starts["tenantops"];
    json!({
        "new_start_per_s": t["in_process"]["new_start"]["per_s"],
        "dedupe_hit_per_s": t["in_process"]["dedupe_hit"]["per_s"],
        "storm_wall_ms": t["in_process"]["storm"]["wall_ms"],
        "storm_callers_answered_with_the_run_pct": t["in_process"]["storm"]["callers_answered_with_the_run_pct"],
        "profile": t["profile"],
        "anchor_new_start_per_s": starts["anchor"]["new_start"]["throughput_per_s"],
        "anchor_dedupe_hit_per_s": starts["anchor"]["dedupe_hit"]["throughput_per_s"],
        "ratios": starts["ratios"],
    })
}

/// The `docs/benchmarks.md` section.
pub fn section(report: &Value) -> String {
    let s = |p: &str| num(report, &format!("/starts{p}"));
    let x = |p: &str| {
        report
            .pointer(&format!("/starts/ratios{p}"))
            .and_then(Value::as_f64)
            .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
    };
    format!(
        r#"
## Starting a run, against the Powertools anchor

| figure | Powertools anchor | tenantops in-process ({profile}) | ratio | tenantops through the gateway | ratio |
|---|---|---|---|---|---|
| new start, sequential | {anps}/s, p50 {anp50} ms | {tnps}/s, p50 {tnp50} ms, p99 {tnp99} ms | **{rn}** | {gnps}/s, p50 {gnp50} ms | {rgn} |
| dedupe hit, sequential | {ahps}/s, p50 {ahp50} ms | {thps}/s, p50 {thp50} ms, p99 {thp99} ms | **{rh}** | {ghps}/s, p50 {ghp50} ms | {rgh} |
| AWS calls per new start | {ancalls} | {tncalls} | | {gncalls} | |
| AWS calls per dedupe hit | {ahcalls} | {thcalls} | | {ghcalls} | |
| dedupe storm: callers answered with the run | {astorm} % ({aper} callers, {arounds} rounds, median {awall} ms a round) | {tstorm} % ({tcallers} callers at once, {twall} ms) | | | |
| a new run's work message, audit entry and notification | in the handler (its SQS send) | the relay, from the table's stream: {rruns} runs in {rwall} ms ({rps}/s), {rwait} messages waiting after | | | |

`cargo xtask bench starts` (or the whole `cargo xtask bench`) runs both in one invocation:
first the anchor's own `run.sh` (the handler a Python team writes with Powertools
idempotency, called in-process against DynamoDB Local and moto of the same versions, on
emulators of its own), then tenantops' `starts` on fresh emulators: {n} sequential new starts
and {n} sequential dedupe hits after 20 unmeasured ones, each as the anchor does them, called
in-process (the API handler given an API Gateway v2 event, as the Lambda runtime gives it)
and through the local gateway (JWT check, the template's timeout). A ratio is tenantops'
throughput over the anchor's: above 1, tenantops is ahead. The storm starts one tenant's
inventory sync {tcallers} times at once in-process; the anchor's is its own (threads, each
its own module instance). The anchor dedupes for a fixed window and checks no membership;
tenantops dedupes while a run is active and authorizes the caller in the call that answers
(a dedupe hit's consistent read, a new run's transaction). The anchor's new start includes its
SQS send; tenantops' new run is its DynamoDB write alone, and its work message, audit entry
and notification follow from the table's stream (the relay, a function of its own in AWS):
the relay is held still while the starts are measured and timed after them, in the last row.
"#,
        profile = s("/tenantops/profile").trim_matches('"'),
        rruns = s("/tenantops/relay/runs"),
        rwall = s("/tenantops/relay/wall_ms"),
        rps = s("/tenantops/relay/per_s"),
        rwait = s("/tenantops/relay/messages_waiting"),
        anps = s("/anchor/new_start/throughput_per_s"),
        anp50 = s("/anchor/new_start/p50_ms"),
        ahps = s("/anchor/dedupe_hit/throughput_per_s"),
        ahp50 = s("/anchor/dedupe_hit/p50_ms"),
        ancalls = s("/anchor/aws_calls_per_new_start"),
        ahcalls = s("/anchor/aws_calls_per_dedupe_hit"),
        astorm = s("/anchor/storm/callers_answered_with_the_run_pct"),
        aper = s("/anchor/storm/callers_per_round"),
        arounds = s("/anchor/storm/rounds"),
        awall = s("/anchor/storm/wall_ms_median"),
        tnps = s("/tenantops/in_process/new_start/per_s"),
        tnp50 = s("/tenantops/in_process/new_start/p50_ms"),
        tnp99 = s("/tenantops/in_process/new_start/p99_ms"),
        thps = s("/tenantops/in_process/dedupe_hit/per_s"),
        thp50 = s("/tenantops/in_process/dedupe_hit/p50_ms"),
        thp99 = s("/tenantops/in_process/dedupe_hit/p99_ms"),
        tncalls = s("/tenantops/in_process/new_start/aws_calls_each"),
        thcalls = s("/tenantops/in_process/dedupe_hit/aws_calls_each"),
        gnps = s("/tenantops/gateway/new_start/per_s"),
        gnp50 = s("/tenantops/gateway/new_start/p50_ms"),
        ghps = s("/tenantops/gateway/dedupe_hit/per_s"),
        ghp50 = s("/tenantops/gateway/dedupe_hit/p50_ms"),
        gncalls = s("/tenantops/gateway/new_start/aws_calls_each"),
        ghcalls = s("/tenantops/gateway/dedupe_hit/aws_calls_each"),
        tstorm = s("/tenantops/in_process/storm/callers_answered_with_the_run_pct"),
        tcallers = s("/tenantops/in_process/storm/callers"),
        twall = s("/tenantops/in_process/storm/wall_ms"),
        n = s("/tenantops/in_process/new_start/n"),
        rn = x("/new_start_per_s"),
        rh = x("/dedupe_hit_per_s"),
        rgn = x("/new_start_per_s_through_the_gateway"),
        rgh = x("/dedupe_hit_per_s_through_the_gateway"),
    )
}
