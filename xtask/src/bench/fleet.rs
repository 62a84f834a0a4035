//! The sections of `docs/benchmarks.md` for many runs at once: the 02:00 fan-in and the
//! starvation test.

use serde_json::Value;

use super::num;

pub fn sections(report: &Value) -> String {
    let f = |p: &str| num(report, &format!("/fan_in{p}"));
    let s = |p: &str| num(report, &format!("/starvation{p}"));
    format!(
        r#"
## The 02:00 fan-in ({tenants} tenants' nightly backups)

| tenants | succeeded | `run.stale` | claims | URLs read twice | seconds | runs/minute | queue wait p50 | p99 | max | invocations | killed | reaper: waiting | re-dispatched | failed stale |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| {tenants} | {fsucc} | {fstale} | {fclaims} | {ftwice} | {fsecs} | {frpm} | {fp50} s | {fp99} s | {fmax} s | {finv} | {fkilled} | {rwait} | {rre} | {rstale} |

One scheduler tick fires every tenant's daily schedule (due at the bench's current minute, so
the reaper judges the runs by real time), {objects} device configurations a tenant, all in one
workspace as an MSP's tenants are. The strict worker host works them as the template
configures Lambda ({timeout} s timeout, batches of {batch}, {conc} at once) with the deployed
per-workspace limit ({per} at once). The reaper ticks every 5 s with a dispatch deadline of
{deadline} s, so the backlog lasts {ratio} times that deadline: every run is overdue many times
before it is claimed, is counted as waiting ("reaper: waiting" counts those sightings), and
must be neither dispatched again nor failed stale. The queue wait is from the tick to each
run's first claim.

## Starvation (one workspace bursts {burst} run-now, another starts one sync)

| per-workspace limit | the other workspace's wait | its sync done after | burst runs started before it | burst runs done by then | burst queued in | worker invocations | killed | reaper: re-dispatched | failed stale |
|---|---|---|---|---|---|---|---|---|---|
| {lper} (deployed) | {lwait} s | {ldone} s | {lstarted} | {ldoneby} | {lqueued} s | {linv} | {lkilled} | {lre} | {lstale} |
| {uper} (none: the worker's concurrency) | {uwait} s | {udone} s | {ustarted} | {udoneby} | {uqueued} s | {uinv} | {ukilled} | {ure} | {ustale} |

**The other workspace waited {wratio} times longer without the limit.** One workspace starts
a backup on each of {burst} tenants ({sobjects} objects each; run-now is deduped per tenant
and quota-limited per tenant, so a burst of distinct runs spans tenants); then a second
workspace starts an inventory sync. The strict worker host polls all along, as the
event-source mapping does, so the burst is being worked while it is queued. Each pass runs
in the same `cargo xtask bench starvation` on emulators of its own, and ends when the other
workspace's sync is done. With the limit, a worker that receives a run of a full workspace
defers its message (sent again 10-30 s later, the current one acknowledged) and moves on,
so the other workspace's message is reached after the workers skim past the burst's;
without it, the other workspace's run waits behind the burst's work. Graph answers each
request after {latency} ms here, so runs wait on Graph as they do in AWS. On these emulators
the skim is what the other workspace waits for: moto delivers in send order, so every
deferred message that is visible again and was sent before the sync's is received first,
and each deferral costs a read, a refused claim and a send on the same two cores.
"#,
        tenants = f("/tenants"),
        objects = f("/objects_per_tenant"),
        fsucc = f("/succeeded"),
        fstale = f("/run_stale"),
        fclaims = f("/claims"),
        ftwice = f("/urls_read_twice"),
        fsecs = f("/seconds"),
        frpm = f("/runs_per_minute"),
        fp50 = f("/queue_wait/p50_s"),
        fp99 = f("/queue_wait/p99_s"),
        fmax = f("/queue_wait/max_s"),
        finv = f("/worker/invocations"),
        fkilled = f("/worker/invocations_killed"),
        rwait = f("/reaper/waiting"),
        rre = f("/reaper/redispatched"),
        rstale = f("/reaper/failed_stale"),
        timeout = f("/worker/timeout_s"),
        batch = f("/worker/batch_size"),
        conc = f("/worker/concurrency"),
        per = f("/worker/per_workspace"),
        deadline = f("/reaper_dispatch_deadline_s"),
        ratio = f("/backlog_over_dispatch_deadline"),
        burst = s("/runs_in_burst"),
        sobjects = s("/objects_per_tenant"),
        latency = s("/graph_latency_ms"),
        lper = num(report, "/starvation/per_workspace"),
        lwait = num(report, "/starvation/other_workspace/wait_s"),
        ldone = num(report, "/starvation/other_workspace/done_after_s"),
        lstarted = num(report, "/starvation/burst/started_before_the_other"),
        ldoneby = num(report, "/starvation/burst/done_when_the_other_was"),
        lqueued = num(report, "/starvation/burst/queued_in_s"),
        linv = num(report, "/starvation/worker/invocations"),
        lkilled = num(report, "/starvation/worker/invocations_killed"),
        lre = num(report, "/starvation/reaper/redispatched"),
        lstale = num(report, "/starvation/reaper/failed_stale"),
        uper = num(report, "/starvation_unlimited/per_workspace"),
        uwait = num(report, "/starvation_unlimited/other_workspace/wait_s"),
        udone = num(report, "/starvation_unlimited/other_workspace/done_after_s"),
        ustarted = num(
            report,
            "/starvation_unlimited/burst/started_before_the_other"
        ),
        udoneby = num(
            report,
            "/starvation_unlimited/burst/done_when_the_other_was"
        ),
        uqueued = num(report, "/starvation_unlimited/burst/queued_in_s"),
        uinv = num(report, "/starvation_unlimited/worker/invocations"),
        ukilled = num(report, "/starvation_unlimited/worker/invocations_killed"),
        ure = num(report, "/starvation_unlimited/reaper/redispatched"),
        ustale = num(report, "/starvation_unlimited/reaper/failed_stale"),
        wratio = wait_ratio(report),
    )
}

/// How many times longer the other workspace waited without the per-workspace limit.
pub fn wait_ratio(report: &Value) -> String {
    let wait = |key: &str| {
        report
            .pointer(&format!("/{key}/other_workspace/wait_s"))?
            .as_f64()
    };
    match (wait("starvation_unlimited"), wait("starvation")) {
        (Some(without), Some(with)) if with > 0.0 => format!("{:.1}", without / with),
        _ => "n/a".into(),
    }
}
