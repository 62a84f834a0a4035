//! Runs longer than an invocation: the worker's handler is called directly with a deadline
//! already inside its margin, so every invocation does the least it may (a backup's first
//! page(s), a restore's first item), checkpoints and hands the run on. Nothing here depends
//! on timing: the deadline is in the past, and the assertions are about what was read,
//! written and counted.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantops_aws::previews::MANIFEST_PAGE;
use tenantops_aws::queue::Received;
use tenantops_core::backup::ManifestEntry;
use tenantops_core::{Counters, Outcome, Run, RunStatus, Transition};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_graph_sim::{SimClient, SimConfig};
use tenantops_local::seed::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use tenantops_tests::{ApiCall, Reply as ApiReply, TestStack, WorkerHarness};

const CONFIGS: &str = "deviceManagement/deviceConfigurations";
const POLICIES: &str = "deviceManagement/configurationPolicies";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

/// A worker against a graph-sim whose `paged` collections answer `page_size` objects a page
/// (and, with `empty_pages`, sometimes an empty page with a next link, as Graph does).
pub(crate) async fn worker(
    stack: &TestStack,
    counts: &[(&str, usize)],
    paged: &[&str],
    page_size: usize,
    idempotent_creates: bool,
    empty_pages: bool,
) -> WorkerHarness {
    let entra = stack.entra_tenant_id().await;
    let client = SimClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
    let mut config = SimConfig::generated(&entra, client, counts);
    config.idempotent_creates = idempotent_creates;
    if !empty_pages {
        // Exact objects per page, for tests that count what one invocation did.
        config.empty_page_ratio = 0.0;
    }
    for path in paged {
        config.tenants[0]
            .collections
            .get_mut(*path)
            .unwrap()
            .page_size = page_size;
    }
    stack.worker_with(config, policy()).await
}

fn tenant_path(stack: &TestStack, rest: &str) -> String {
    format!(
        "/v1/workspaces/{}/tenants/{}/{rest}",
        stack.demo.workspace_id, stack.demo.tenant_id
    )
}

/// Queues a backup of `types` (a schedule's run-now); returns the run id.
async fn start_backup(stack: &TestStack, types: &[&str]) -> String {
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(stack, "backup-schedules"),
                json!({
                    "name": format!("Long {}", ulid::Ulid::new()),
                    "cadence": {"kind": "hourly", "minute": 5},
                    "retention": {"keep_last": 10},
                    "types": types,
                })
                .to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let schedule = r.body["schedule"]["id"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(stack, &format!("backup-schedules/{schedule}/run-now")),
                "{}",
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.run_id()
}

/// The SQS event Lambda would deliver for `messages`.
fn event_of(messages: &[Received]) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": m.attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// One invocation as the event source makes it: receive a batch, call the handler with
/// `deadline`, delete what it acknowledged. Returns the batch (empty: nothing was queued).
async fn invoke(worker: &WorkerHarness, deadline: DateTime<Utc>) -> Vec<Received> {
    let queue = &worker.deps.queue;
    let messages = queue.receive(5, Duration::ZERO).await.unwrap();
    if messages.is_empty() {
        return messages;
    }
    let response = tenantops_worker::handle(event_of(&messages), deadline, &worker.deps).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<Received> = messages
        .iter()
        .filter(|m| !failed.contains(&m.message_id.as_str()))
        .cloned()
        .collect();
    assert!(failed.is_empty(), "no message fails: {failed:?}");
    queue.delete(&done).await.unwrap();
    messages
}

fn receive_count(m: &Received) -> &str {
    m.attributes
        .get("ApproximateReceiveCount")
        .map(String::as_str)
        .unwrap_or("?")
}

fn at_least(later: &Counters, earlier: &Counters) -> bool {
    later.total >= earlier.total
        && later.processed >= earlier.processed
        && later.succeeded >= earlier.succeeded
        && later.failed >= earlier.failed
        && later.skipped >= earlier.skipped
}

/// Invokes with `deadline` until `run` completes; every message is received once, and the
/// counters never go back. Returns the finished run and the number of invocations.
pub(crate) async fn continue_to_end(
    stack: &TestStack,
    worker: &WorkerHarness,
    run: &str,
    deadline: impl Fn() -> DateTime<Utc>,
) -> (Run, usize) {
    let mut invocations = 0;
    let mut last = stack.run(run).await.counters;
    for _ in 0..200 {
        let batch = invoke(worker, deadline()).await;
        assert!(!batch.is_empty(), "the run was handed on with a message");
        invocations += 1;
        for m in &batch {
            assert_eq!(
                receive_count(m),
                "1",
                "a continuation is a new message, never a receive of the old one"
            );
        }
        let now = stack.run(run).await;
        assert!(
            at_least(&now.counters, &last),
            "counters continue: {:?} after {last:?}",
            now.counters
        );
        last = now.counters;
        if now.status == RunStatus::Completed {
            return (now, invocations);
        }
        assert!(
            now.checkpoint.is_some(),
            "an unfinished run keeps a checkpoint"
        );
    }
    panic!("the run did not finish in 200 invocations");
}

async fn manifest(stack: &TestStack, run: &Run) -> Vec<ManifestEntry> {
    let set = run.result.as_ref().unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let page = stack
            .store()
            .manifest_entries(
                stack.demo.workspace_id,
                stack.demo.tenant_id,
                set,
                50,
                after,
            )
            .await
            .unwrap();
        all.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => return all,
        }
    }
}

/// The ids graph-sim holds per collection path.
fn ids_in(worker: &WorkerHarness, paths: &[&str]) -> BTreeMap<String, Vec<String>> {
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        paths
            .iter()
            .map(|p| {
                let mut ids: Vec<String> = t.collections[*p]
                    .objects
                    .iter()
                    .map(|o| o["id"].as_str().unwrap().to_owned())
                    .collect();
                ids.sort();
                ((*p).to_owned(), ids)
            })
            .collect()
    })
}

/// Successful Graph reads that were sent more than once (same path and query).
pub(crate) fn reads_repeated(worker: &WorkerHarness) -> Vec<String> {
    let mut seen = BTreeMap::<String, usize>::new();
    for r in worker.sim.requests() {
        if r.method == "GET" && r.status == 200 && r.path.starts_with("/graph/") {
            *seen.entry(format!("{}?{}", r.path, r.query)).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, n)| format!("{k} x{n}"))
        .collect()
}

/// The manifest holds each object of the tenant exactly once.
fn assert_every_object_once(entries: &[ManifestEntry], expected: &BTreeMap<String, Vec<String>>) {
    let mut by_type = BTreeMap::<String, Vec<String>>::new();
    for e in entries {
        by_type
            .entry(e.object_type.clone())
            .or_default()
            .push(e.object_id.clone());
    }
    let mut got: Vec<Vec<String>> = by_type
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    let mut want: Vec<Vec<String>> = expected.values().cloned().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every object exactly once in the manifest");
}

#[tokio::test]
async fn a_backup_past_its_deadline_continues_across_invocations_reading_every_object_once() {
    let stack = TestStack::new().await;
    let worker = worker(
        &stack,
        &[(CONFIGS, 13), (POLICIES, 11)],
        &[CONFIGS, POLICIES],
        3,
        true,
        true,
    )
    .await;
    let id = start_backup(&stack, &["deviceConfigurations", "configurationPolicies"]).await;

    let (run, invocations) = continue_to_end(&stack, &worker, &id, Utc::now).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    // 5 + 4 pages, and an invocation past its margin reads at most one page per type.
    assert!(invocations >= 5, "{invocations} invocations");
    assert_eq!(
        run.attempts as usize, invocations,
        "one claim per invocation"
    );
    assert_eq!(
        run.counters,
        Counters {
            total: 24,
            processed: 24,
            succeeded: 24,
            ..Counters::default()
        }
    );
    assert!(
        run.checkpoint.is_none(),
        "the finish removes the checkpoint"
    );
    assert_eq!(run.result.as_ref().unwrap()["objects"], 24);
    let entries = manifest(&stack, &run).await;
    assert_every_object_once(&entries, &ids_in(&worker, &[CONFIGS, POLICIES]));
    assert_eq!(
        reads_repeated(&worker),
        Vec::<String>::new(),
        "no read twice"
    );
    assert_eq!(stack.queued_messages().await, 0, "nothing left queued");
}

#[tokio::test]
async fn a_batch_mate_of_a_long_run_finishes_in_the_same_invocation() {
    let stack = TestStack::new().await;
    let worker = worker(&stack, &[(CONFIGS, 12)], &[CONFIGS], 2, true, false).await;
    let backup = start_backup(&stack, &["deviceConfigurations"]).await;
    let sync = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;

    let batch = invoke(&worker, Utc::now()).await;
    assert_eq!(batch.len(), 2, "one batch holds both runs");
    let mate = stack.run(&sync).await;
    assert_eq!(
        (mate.status, mate.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "the batch mate finished in the long run's invocation: {:?}",
        mate.failures
    );
    let long = stack.run(&backup).await;
    assert_eq!(long.status, RunStatus::Running, "the long run continues");
    assert!(long.checkpoint.is_some());
    assert_eq!(stack.queued_messages().await, 1, "its continuation message");

    let (long, _) = continue_to_end(&stack, &worker, &backup, Utc::now).await;
    assert_eq!(long.outcome, Outcome::Succeeded, "{:?}", long.failures);
    assert_eq!(long.counters.processed, 12);
}

#[tokio::test]
async fn a_worker_killed_after_a_checkpoint_is_resumed_from_it_with_consistent_counters() {
    let stack = TestStack::new().await;
    let worker = worker(&stack, &[(CONFIGS, 10)], &[CONFIGS], 2, true, false).await;
    let id = start_backup(&stack, &["deviceConfigurations"]).await;
    invoke(&worker, Utc::now()).await;
    let saved = stack.run(&id).await;
    let checkpoint = saved
        .checkpoint
        .clone()
        .expect("a checkpoint after one invocation");
    assert_eq!(checkpoint.counters.processed, 2, "one page of two");
    assert_eq!(saved.counters, checkpoint.counters);

    // A second worker claims it, counts work it never saves, and dies holding the lease.
    // Long enough that a loaded machine still finds it held below, slept out to its end.
    let lease_ends = tokio::time::Instant::now() + Duration::from_secs(2);
    let claim = Transition::Claim {
        now: Utc::now(),
        lease: chrono::Duration::seconds(2),
    };
    let store = stack.store();
    store
        .transition_as(&saved, Some("ghost"), &claim)
        .await
        .unwrap();
    let delta = Counters {
        total: 2,
        processed: 2,
        succeeded: 2,
        ..Counters::default()
    };
    store
        .transition_as(&saved, Some("ghost"), &Transition::Progress { delta })
        .await
        .unwrap();
    let ghost = stack.run(&id).await;
    assert_eq!(
        ghost.counters.processed, 4,
        "the dead worker's unsaved progress"
    );

    // A claim that read the run before that checkpoint is refused: it would resume wrongly.
    tokio::time::sleep_until(lease_ends + Duration::from_millis(100)).await;
    let mut stale = saved.clone();
    stale.checkpoint = None;
    let again = Transition::Claim {
        now: Utc::now(),
        lease: chrono::Duration::seconds(1),
    };
    assert!(
        store
            .transition_as(&stale, Some("stale"), &again)
            .await
            .is_err(),
        "a claim restates the checkpoint it resumes"
    );

    // The continuation message resumes from the checkpoint once the lease has expired.
    let (run, _) = continue_to_end(&stack, &worker, &id, || {
        Utc::now() + chrono::TimeDelta::seconds(120)
    })
    .await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(
        run.counters.processed, 10,
        "the dead worker's progress is not kept"
    );
    assert_eq!(run.counters.total, 10);
    assert_eq!(run.attempts, 3);
    let entries = manifest(&stack, &run).await;
    assert_every_object_once(&entries, &ids_in(&worker, &[CONFIGS]));
}

#[tokio::test]
async fn a_restore_continued_across_invocations_writes_each_item_once() {
    let stack = TestStack::new().await;
    let worker = worker(
        &stack,
        &[("groups", 2), (POLICIES, 4)],
        &[],
        100,
        false,
        false,
    )
    .await;
    // Assignments to a group the restore can map, as the restore tests set them up.
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let group = t.collections["groups"].objects[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let c = t.collections.get_mut(POLICIES).unwrap();
        let ids: Vec<String> = c
            .objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids {
            c.sub_resources.insert(
                format!("{id}/assignments"),
                vec![json!({
                    "id": format!("{id}_{group}"),
                    "target": {
                        "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                        "groupId": group,
                        "deviceAndAppManagementAssignmentFilterId": null,
                        "deviceAndAppManagementAssignmentFilterType": "none"
                    }
                })],
            );
        }
    });
    let groups = stack.start(json!({"type": "directory_groups.sync"})).await;
    continue_to_end(&stack, &worker, &groups, Utc::now).await;
    // A backup in one invocation, then the policies are deleted from the tenant.
    let backup = start_backup(&stack, &["configurationPolicies"]).await;
    let (b, _) = continue_to_end(&stack, &worker, &backup, || {
        Utc::now() + chrono::TimeDelta::seconds(120)
    })
    .await;
    assert_eq!(b.outcome, Outcome::Succeeded, "{:?}", b.failures);
    let set = b.result.as_ref().unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let names = |w: &WorkerHarness| {
        w.sim.with_tenant(&w.entra_tenant_id, |t| {
            let mut n: Vec<String> = t.collections[POLICIES]
                .objects
                .iter()
                .map(|o| o["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            n.sort();
            n
        })
    };
    let before = names(&worker);
    worker.sim.with_tenant(&worker.entra_tenant_id, |t| {
        let c = t.collections.get_mut(POLICIES).unwrap();
        c.objects.clear();
        c.sub_resources.clear();
    });
    let sync = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["configurationPolicies"]}}))
        .await;
    continue_to_end(&stack, &worker, &sync, Utc::now).await;

    let p = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, "restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(p.status, 202, "{}", p.body);
    // The preview is a run of its own, worked to its end first.
    let (preview, _) = continue_to_end(&stack, &worker, &p.run_id(), Utc::now).await;
    assert_eq!(
        preview.outcome,
        Outcome::Succeeded,
        "{:?}",
        preview.failures
    );
    let restore = p.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = p.body["confirmation_token"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    let (run, invocations) = continue_to_end(&stack, &worker, &r.run_id(), Utc::now).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    assert_eq!(invocations, 4, "one item per invocation past the margin");
    assert_eq!(
        run.counters,
        Counters {
            total: 4,
            processed: 4,
            succeeded: 4,
            ..Counters::default()
        }
    );
    let result = run.result.as_ref().unwrap();
    assert_eq!(result["succeeded"], 4);
    assert_eq!(result["items"].as_array().unwrap().len(), 4);
    let creates = worker
        .sim
        .writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path.ends_with(POLICIES))
        .count();
    assert_eq!(creates, 4, "each item written once");
    assert_eq!(
        names(&worker),
        before,
        "each snapshot restored exactly once"
    );
}

#[tokio::test]
async fn an_inventory_sync_past_its_deadline_continues_type_by_type() {
    let stack = TestStack::new().await;
    let counts: Vec<(&str, usize)> = tenantops_graph_sim::DEMO_COLLECTIONS
        .iter()
        .map(|p| (*p, 3))
        .collect();
    let worker = worker(&stack, &counts, &[], 100, true, true).await;
    let id = stack.start(json!({"type": "inventory.sync"})).await;

    let (run, invocations) = continue_to_end(&stack, &worker, &id, Utc::now).await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    let types = tenantops_graph::registry::ObjectType::inventory().count();
    assert!(
        invocations > 1 && invocations <= types,
        "{invocations} invocations for {types} types"
    );
    let n = 3 * types as u64;
    assert_eq!(
        run.counters,
        Counters {
            total: n,
            processed: n,
            succeeded: n,
            ..Counters::default()
        }
    );
    let result = run.result.as_ref().unwrap()["types"].as_object().unwrap();
    assert_eq!(
        result.len(),
        types,
        "every type's result, from every invocation"
    );
    assert_eq!(
        reads_repeated(&worker),
        Vec::<String>::new(),
        "no list read twice"
    );
}

#[tokio::test]
async fn a_long_throttle_hands_a_backup_back_with_its_work_kept() {
    let stack = TestStack::new().await;
    let mut worker = worker(&stack, &[(CONFIGS, 10)], &[CONFIGS], 2, true, false).await;
    let id = start_backup(&stack, &["deviceConfigurations"]).await;
    invoke(&worker, Utc::now()).await;
    assert_eq!(stack.run(&id).await.counters.processed, 2, "one page");

    // The next page is throttled for longer than a Lambda should sleep.
    worker.sim.inject(tenantops_graph_sim::Fault::Throttle {
        path_prefix: CONFIGS.into(),
        times: 1,
        retry_after_secs: Some(600),
    });
    let batch = worker.deps.queue.receive(5, Duration::ZERO).await.unwrap();
    assert_eq!(batch.len(), 1);
    let far = Utc::now() + chrono::TimeDelta::seconds(120);
    let response = tenantops_worker::handle(event_of(&batch), far, &worker.deps).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "handed back, not acknowledged"
    );
    let run = stack.run(&id).await;
    assert_eq!(run.status, RunStatus::Running);
    let checkpoint = run.checkpoint.expect("the hand-back keeps a checkpoint");
    assert_eq!(
        checkpoint.counters.processed, 2,
        "the first page stays done"
    );

    // Instead of waiting out the throttle, the message comes back now, to a new instance
    // (this one's Graph client honours the Retry-After it was given).
    worker.deps.graph = tenantops_graph::GraphClient::new(
        tenantops_graph::GraphConfig {
            graph_base: worker.sim.graph_base_url(),
            login_base: worker.sim.login_base_url(),
        },
        policy(),
    )
    .unwrap();
    stack
        .sqs
        .change_message_visibility()
        .queue_url(&stack.resources.queue_url)
        .receipt_handle(&batch[0].receipt_handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let mut run = stack.run(&id).await;
    for _ in 0..20 {
        let batch = invoke(&worker, far).await;
        run = stack.run(&id).await;
        if batch.is_empty() || run.status == RunStatus::Completed {
            break;
        }
    }
    assert_eq!(
        (run.status, run.outcome),
        (RunStatus::Completed, Outcome::Succeeded),
        "{:?}",
        run.failures
    );
    assert_eq!(run.counters.processed, 10);
    assert_eq!(run.counters.total, 10);
    let entries = manifest(&stack, &run).await;
    assert_every_object_once(&entries, &ids_in(&worker, &[CONFIGS]));
    assert_eq!(
        reads_repeated(&worker),
        Vec::<String>::new(),
        "no read twice"
    );
}

/// A backup of `n` device configurations, then an inventory sync (so the preview plans
/// them unchanged); returns the backup set's id.
async fn backed_up_set(stack: &TestStack, worker: &WorkerHarness) -> String {
    let generous = || Utc::now() + chrono::TimeDelta::seconds(120);
    let backup = start_backup(stack, &["deviceConfigurations"]).await;
    let (b, _) = continue_to_end(stack, worker, &backup, generous).await;
    assert_eq!(b.outcome, Outcome::Succeeded, "{:?}", b.failures);
    let sync = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    continue_to_end(stack, worker, &sync, generous).await;
    b.result.as_ref().unwrap()["backup_set_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn start_preview(stack: &TestStack, set: &str) -> ApiReply {
    let p = stack
        .call(
            ApiCall::post(
                tenant_path(stack, "restores"),
                json!({ "backup_set_id": set }).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(p.status, 202, "{}", p.body);
    p
}

#[tokio::test]
async fn a_preview_past_its_deadline_continues_page_by_page_planning_each_item_once() {
    let stack = TestStack::new().await;
    let n = 2 * MANIFEST_PAGE + 7;
    let worker = worker(&stack, &[(CONFIGS, n)], &[], 100, false, false).await;
    let set = backed_up_set(&stack, &worker).await;
    let p = start_preview(&stack, &set).await;

    let (preview, invocations) = continue_to_end(&stack, &worker, &p.run_id(), Utc::now).await;
    assert_eq!(
        preview.outcome,
        Outcome::Succeeded,
        "{:?}",
        preview.failures
    );
    assert_eq!(
        invocations, 3,
        "one manifest page per invocation past the margin"
    );
    assert_eq!(preview.attempts, 3, "one claim per invocation");
    let n64 = n as u64;
    assert_eq!(
        preview.counters,
        Counters {
            total: n64,
            processed: n64,
            succeeded: n64,
            ..Counters::default()
        }
    );
    assert!(
        preview.checkpoint.is_none(),
        "the finish removes the checkpoint"
    );
    assert_eq!(preview.result.as_ref().unwrap()["items"], n);

    // Every object of the set is an item exactly once, indexed 0..n.
    let restore: tenantops_core::RestoreId =
        p.body["restore"]["id"].as_str().unwrap().parse().unwrap();
    let (ws, tenant) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = stack
            .store()
            .restore_items_page(ws, tenant, restore, 100, after)
            .await
            .unwrap();
        items.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let indexes: Vec<u32> = items.iter().map(|i| i.index).collect();
    assert_eq!(indexes, (0..n as u32).collect::<Vec<_>>());
    let mut ids: Vec<String> = items.iter().map(|i| i.object_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids,
        ids_in(&worker, &[CONFIGS])[CONFIGS],
        "each object once"
    );
    assert!(
        items
            .iter()
            .all(|i| i.action == tenantops_core::restore::Action::SkipUnchanged),
        "planned against the synced inventory"
    );

    // The restore then executes as before.
    let token = p.body["confirmation_token"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(&stack.users().owner),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let (run, _) = continue_to_end(&stack, &worker, &r.run_id(), || {
        Utc::now() + chrono::TimeDelta::seconds(120)
    })
    .await;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.failures);
    let got = stack
        .call(
            ApiCall::get(tenant_path(&stack, &format!("restores/{restore}")))
                .by(&stack.users().owner),
        )
        .await;
    assert_eq!(got.body["restore"]["status"], "completed", "{}", got.body);
}

#[tokio::test]
async fn a_preview_cancelled_between_invocations_ends_cancelled_and_is_not_executable() {
    let stack = TestStack::new().await;
    let worker = worker(
        &stack,
        &[(CONFIGS, MANIFEST_PAGE + 3)],
        &[],
        100,
        false,
        false,
    )
    .await;
    let set = backed_up_set(&stack, &worker).await;
    let p = start_preview(&stack, &set).await;
    let run = p.run_id();

    // One page, then handed on.
    assert_eq!(invoke(&worker, Utc::now()).await.len(), 1);
    let paused = stack.run(&run).await;
    assert!(paused.checkpoint.is_some(), "{paused:?}");
    assert_eq!(paused.counters.processed, MANIFEST_PAGE as u64);
    let r = stack
        .call(ApiCall::post(format!("/v1/operations/{run}/cancel"), "").by(&stack.users().owner))
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.body);
    // The continuation message finds the run finished and is acknowledged.
    let batch = invoke(&worker, Utc::now()).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(receive_count(&batch[0]), "1");
    assert_eq!(stack.queued_messages().await, 0, "nothing left queued");
    let done = stack.run(&run).await;
    assert_eq!(
        (done.status, done.outcome),
        (RunStatus::Completed, Outcome::Cancelled),
        "{done:?}"
    );
    assert_eq!(
        done.counters.processed, MANIFEST_PAGE as u64,
        "counters as they were"
    );

    let restore = p.body["restore"]["id"].as_str().unwrap().to_owned();
    let owner = &stack.users().owner;
    let got = stack
        .call(ApiCall::get(tenant_path(&stack, &format!("restores/{restore}"))).by(owner))
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        got.body["restore"]["status"], "preview_cancelled",
        "{}",
        got.body
    );
    assert_eq!(got.body["restore"]["executable"], false);
    assert_eq!(got.body["items"], json!([]));
    let token = p.body["confirmation_token"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            ApiCall::post(
                tenant_path(&stack, &format!("restores/{restore}/execute")),
                json!({ "confirmation_token": token }).to_string(),
            )
            .by(owner),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}
