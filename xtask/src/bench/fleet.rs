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

| per-workspace limit | the other workspace's wait | its sync done after | burst: queue wait p50 | p99 | all done after | worker invocations |
|---|---|---|---|---|---|---|
| {lper} (deployed) | {lwait} s | {ldone} s | {lp50} s | {lp99} s | {lall} s | {linv} |
| {uper} (none: the worker's concurrency) | {uwait} s | {udone} s | {up50} s | {up99} s | {uall} s | {uinv} |

The other workspace waited {wratio} times longer without the limit. One workspace starts a
backup on each of {burst} tenants (run-now is deduped per tenant and quota-limited per
tenant, so a burst of distinct runs spans tenants); then a second workspace starts an
inventory sync. Both passes run in this invocation on the same emulators, each on a fresh
stack. With the limit, a worker that receives a run of a full workspace defers its message
(sent again 10-30 s later, the current one acknowledged) and moves on, so the other
workspace's message is reached after the workers skim past the burst's; without it, the
other workspace's run waits behind the burst's work.
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
        burst = s("/burst"),
        lper = s("/with_workspace_limit/per_workspace"),
        lwait = s("/with_workspace_limit/other_workspace/wait_s"),
        ldone = s("/with_workspace_limit/other_workspace/done_after_s"),
        lp50 = s("/with_workspace_limit/burst/queue_wait/p50_s"),
        lp99 = s("/with_workspace_limit/burst/queue_wait/p99_s"),
        lall = s("/with_workspace_limit/burst/all_done_after_s"),
        linv = s("/with_workspace_limit/worker_invocations"),
        uper = s("/without_workspace_limit/per_workspace"),
        uwait = s("/without_workspace_limit/other_workspace/wait_s"),
        udone = s("/without_workspace_limit/other_workspace/done_after_s"),
        up50 = s("/without_workspace_limit/burst/queue_wait/p50_s"),
        up99 = s("/without_workspace_limit/burst/queue_wait/p99_s"),
        uall = s("/without_workspace_limit/burst/all_done_after_s"),
        uinv = s("/without_workspace_limit/worker_invocations"),
        wratio = s("/other_workspace_wait_ratio"),
    )
}
