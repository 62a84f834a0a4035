//! Fairness between workspaces: a burst from one workspace never runs more than its limit of
//! runs at once and does not hold another workspace's run until it is over; deferred
//! messages cost no receives; a workspace's slots are released by their holders only, and
//! a dead worker's slot is taken over once its lease expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{Get, TransactGetItem};
use chrono::{DateTime, Utc};
use serde_json::json;
use tenantops_aws::slots::SlotClaim;
use tenantops_core::{Outcome, Run, RunId, RunStatus, TenantId, Transition};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_local::worker_host::WorkerHost;
use tenantops_tests::tenants::sim_serving;
use tenantops_tests::{ApiCall, TestStack};
use tenantops_worker::Fairness;

/// The burst's workspace's limit in these tests (the deployed default is 8).
const LIMIT: u32 = 3;
/// Runs in the burst: several times the limit.
const BURST: usize = 12;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

/// How many of `runs` are running under a live lease, in one serializable read of all of
/// them (TransactGetItems), so runs that finished and runs that started between two reads
/// are never counted together.
async fn running_at_once(stack: &TestStack, runs: &[RunId]) -> usize {
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let gets = runs.iter().map(|id| {
        TransactGetItem::builder()
            .get(
                Get::builder()
                    .table_name(&stack.resources.table_name)
                    .set_key(Some(tenantops_aws::keys::run(*id).to_item()))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let out = dynamo
        .transact_get_items()
        .set_transact_items(Some(gets.collect()))
        .send()
        .await
        .unwrap();
    let now = tenantops_core::time::format(Utc::now());
    out.responses()
        .iter()
        .filter_map(|r| r.item())
        .filter(|item| {
            let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            s("status").as_deref() == Some(RunStatus::Running.as_str())
                && s("lease_expires_at").is_some_and(|l| l >= now)
        })
        .count()
}

async fn runs(stack: &TestStack, ids: &[RunId]) -> Vec<Run> {
    let mut out = Vec::new();
    for id in ids {
        out.push(stack.store().get_run(*id).await.unwrap().unwrap());
    }
    out
}

/// How workspace A's burst is started.
#[derive(Debug, Clone, Copy)]
enum Burst {
    /// One start per tenant through the operations route.
    StartPerTenant,
    /// One batch over every tenant of the workspace (its children are the burst).
    Batch,
}

#[tokio::test]
async fn a_burst_from_one_workspace_runs_within_its_limit_and_leaves_room_for_another() {
    burst_beside_another_workspace(Burst::StartPerTenant).await;
}

#[tokio::test]
async fn a_batch_over_a_workspaces_tenants_runs_within_its_limit_and_leaves_room_for_another() {
    burst_beside_another_workspace(Burst::Batch).await;
}

async fn burst_beside_another_workspace(how: Burst) {
    let stack = TestStack::new().await;
    let (ws_a, owner_a) = (stack.demo.workspace_id, stack.users().owner.clone());
    let (ws_b, tenant_b) = (stack.demo.other_workspace_id, stack.demo.other_tenant_id);
    let owner_b = stack.users().outsider.clone();
    // Workspace A has BURST connected tenants (a run is deduped per tenant and type, so a
    // burst of distinct runs spans tenants), B one; graph-sim serves them all.
    let mut tenants = vec![stack.demo_tenant().await];
    tenants.extend(stack.add_connected_tenants(ws_a, &owner_a, BURST - 1).await);
    let tenants_a: Vec<TenantId> = tenants.iter().map(|t| t.id).collect();
    tenants.push(stack.connect(ws_b, tenant_b, &owner_b).await);
    let config = sim_serving(&tenants, &[("deviceManagement/deviceConfigurations", 3)]);
    let mut worker = stack.worker_with(config, policy()).await;
    worker.deps.fairness = Fairness {
        per_workspace: LIMIT,
        defer_min_s: 1,
        defer_jitter_s: 1,
    };
    let sync = json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}});
    let mut burst = Vec::new();
    match how {
        Burst::StartPerTenant => {
            for t in &tenants_a {
                let r = stack
                    .call(ApiCall::post(stack.start_path(ws_a, t), sync.to_string()).by(&owner_a))
                    .await;
                assert_eq!(r.status, 202, "{}", r.body);
                burst.push(r.run_id().parse::<RunId>().unwrap());
            }
        }
        Burst::Batch => {
            let mut body = sync.clone();
            body["tenants"] = json!("all");
            let r = stack
                .call(
                    ApiCall::post(format!("/v1/workspaces/{ws_a}/batches"), body.to_string())
                        .by(&owner_a),
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.body);
            stack.settle().await;
            let view = stack
                .call(ApiCall::get(r.body["links"]["view"].as_str().unwrap()).by(&owner_a))
                .await;
            for child in view.body["children"].as_array().unwrap() {
                assert_eq!(child["origin"], "started", "{child}");
                burst.push(child["run_id"].as_str().unwrap().parse::<RunId>().unwrap());
            }
        }
    }
    assert_eq!(burst.len(), BURST);
    // Workspace B starts one run after the whole burst is queued.
    let b = stack
        .call(ApiCall::post(stack.start_path(ws_b, tenant_b), sync.to_string()).by(&owner_b))
        .await;
    assert_eq!(b.status, 202, "{}", b.body);
    let b: RunId = b.run_id().parse().unwrap();

    // The strict host (the template's batch size and concurrency), observing every message
    // it hands the worker.
    let host = WorkerHost::from_template().unwrap();
    let receive_counts: Mutex<HashMap<String, usize>> = Mutex::default();
    let handed = AtomicUsize::new(0);
    let handler = |event: SqsEvent, deadline: DateTime<Utc>| {
        for m in &event.records {
            handed.fetch_add(1, Ordering::SeqCst);
            let count = m
                .attributes
                .get("ApproximateReceiveCount")
                .cloned()
                .unwrap_or_default();
            *receive_counts.lock().unwrap().entry(count).or_default() += 1;
        }
        tenantops_worker::handle(event, deadline, &worker.deps)
    };
    let done = AtomicBool::new(false);
    let all: Vec<RunId> = burst.iter().copied().chain([b]).collect();
    let drive = async {
        // Deferred messages come back after their delay: drain until every run finished.
        for _ in 0..240 {
            host.drain_with(&worker.deps, &handler).await.unwrap();
            let finished = runs(&stack, &all)
                .await
                .iter()
                .all(|r| r.status == RunStatus::Completed);
            if finished {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        done.store(true, Ordering::SeqCst);
    };
    let sample = async {
        let mut most = 0;
        while !done.load(Ordering::SeqCst) {
            most = most.max(running_at_once(&stack, &burst).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    };
    let ((), most) = tokio::join!(drive, sample);

    let a_runs = runs(&stack, &burst).await;
    for r in &a_runs {
        assert_eq!(
            (r.status, r.outcome, r.attempts),
            (RunStatus::Completed, Outcome::Succeeded, 1),
            "every run of the burst completes, claimed once: {:?}",
            r.failures
        );
    }
    assert!(most >= 1, "the sampler saw the burst running");
    assert!(
        most <= LIMIT as usize,
        "at most {LIMIT} of the burst ran at once, saw {most}"
    );
    // B was claimed while the burst still had runs to finish.
    let b_run = stack.store().get_run(b).await.unwrap().unwrap();
    assert_eq!((b_run.status, b_run.attempts), (RunStatus::Completed, 1));
    let last_of_burst = a_runs.iter().filter_map(|r| r.completed_at).max().unwrap();
    assert!(
        b_run.started_at.unwrap() < last_of_burst,
        "B's run started before the burst was over"
    );
    // Deferrals happened (more messages than runs), and none of them cost a receive.
    assert!(
        handed.load(Ordering::SeqCst) > all.len(),
        "runs were deferred"
    );
    let counts = receive_counts.lock().unwrap().clone();
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        vec!["1"],
        "every message was received once: {counts:?}"
    );
    // Every slot was released when its run finished.
    assert!(
        stack
            .store()
            .slot_holders(stack.demo.workspace_id, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_slot_is_released_by_its_holder_only_and_taken_over_once_its_lease_expires() {
    let stack = TestStack::new().await;
    let ws = stack.demo.workspace_id;
    let mut ids = Vec::new();
    // Two runs of different types (runs are deduped per tenant and type).
    for body in [
        json!({"type": "inventory.sync"}),
        json!({"type": "provider_connection.verify"}),
    ] {
        let id = stack.start(body).await;
        ids.push(id.parse::<RunId>().unwrap());
    }
    let [first, second] = [ids[0], ids[1]];
    let store = stack.store();
    let claim = |lease| Transition::Claim {
        now: Utc::now(),
        lease,
    };
    let one = store.get_run(first).await.unwrap().unwrap();
    // Long enough that a loaded machine still finds it held below, slept out to its end.
    let lease_ends = tokio::time::Instant::now() + Duration::from_secs(2);
    let got = store
        .claim_with_slot(&one, "dies", &claim(chrono::Duration::seconds(2)), 0, 1)
        .await
        .unwrap();
    assert_eq!(got, SlotClaim::Claimed(0));

    // The workspace is full: the second run is not claimed, nothing is written.
    let two = store.get_run(second).await.unwrap().unwrap();
    let full = store
        .claim_with_slot(&two, "waits", &claim(chrono::Duration::minutes(5)), 0, 1)
        .await
        .unwrap();
    assert_eq!(full, SlotClaim::WorkspaceFull);
    let two = store.get_run(second).await.unwrap().unwrap();
    assert_eq!((two.status, two.attempts), (RunStatus::Queued, 0));
    assert_eq!(
        store.slot_holders(ws, Utc::now()).await.unwrap(),
        vec![first]
    );

    // The first worker dies; once its lease is over its slot is taken over.
    tokio::time::sleep_until(lease_ends + Duration::from_millis(100)).await;
    let took = store
        .claim_with_slot(&two, "lives", &claim(chrono::Duration::minutes(5)), 0, 1)
        .await
        .unwrap();
    assert_eq!(took, SlotClaim::Claimed(0));
    assert_eq!(
        store.slot_holders(ws, Utc::now()).await.unwrap(),
        vec![second]
    );
    // The dead worker's release (late) frees nothing that is no longer its.
    assert!(!store.release_slot(ws, first, "dies", 0).await.unwrap());
    assert_eq!(
        store.slot_holders(ws, Utc::now()).await.unwrap(),
        vec![second]
    );
    // Its holder's release frees it.
    assert!(store.release_slot(ws, second, "lives", 0).await.unwrap());
    assert!(store.slot_holders(ws, Utc::now()).await.unwrap().is_empty());
}
