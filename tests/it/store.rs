//! The store's conditional writes, directly: strict identities and run transitions.

use chrono::{Duration, Utc};
use tenantops_aws::{StartRun, Started, StoreError};
use tenantops_core::identity::request_fingerprint;
use tenantops_core::params::BackupScheduledParams;
use tenantops_core::{
    Click, Counters, Failure, Identity, Initiator, NewRun, OperationParams, Outcome, ReasonCode,
    Run, RunStatus, Transition, Trigger,
};
use tenantops_tests::TestStack;

fn scheduled(
    stack: &TestStack,
    schedule: ulid::Ulid,
    at: chrono::DateTime<Utc>,
) -> (Run, Identity, String) {
    let params = OperationParams::BackupScheduleScheduled(BackupScheduledParams {
        backup_schedule_id: schedule,
        scheduled_for: at,
    });
    let (ws, t) = (stack.demo.workspace_id, stack.demo.tenant_id);
    let identity = Identity::derive(ws, t, &params, &Click::Nonce(ulid::Ulid::new()));
    let new = NewRun {
        workspace_id: ws,
        tenant_id: t,
        params: &params,
        identity: &identity,
        initiator: Initiator::Scheduler,
        trigger: Trigger::Schedule,
    };
    let run = Run::queued(new, Utc::now());
    let fp = request_fingerprint(t, &params);
    (run, identity, fp)
}

async fn start_system(stack: &TestStack, run: &Run, identity: &Identity, fp: &str) -> Started {
    stack
        .store()
        .start_run(StartRun {
            run,
            lock: identity.lock,
            fresh: identity.fresh,
            fingerprint: fp,
            guard: None,
            preconditions: &[],
            quota: None,
        })
        .await
        .expect("start")
}

#[tokio::test]
async fn a_strict_identity_has_one_run_per_slot_even_after_it_finished() {
    let stack = TestStack::new().await;
    let schedule = ulid::Ulid::new();
    let slot = Utc::now() - Duration::minutes(1);
    let (first, identity, fp) = scheduled(&stack, schedule, slot);
    assert_eq!(
        start_system(&stack, &first, &identity, &fp).await,
        Started::Created
    );

    let (again, identity2, fp2) = scheduled(&stack, schedule, slot);
    match start_system(&stack, &again, &identity2, &fp2).await {
        Started::Deduplicated(run) => assert_eq!(run.id, first.id),
        other => panic!("expected the first run, got {other:?}"),
    }

    let finish = Transition::Finish {
        now: Utc::now(),
        outcome: Outcome::Failed,
        failures: vec![Failure::of(ReasonCode::GraphUnavailable)],
    };
    stack.store().transition(&first, &finish).await.unwrap();
    let (later, identity3, fp3) = scheduled(&stack, schedule, slot);
    match start_system(&stack, &later, &identity3, &fp3).await {
        Started::Deduplicated(run) => {
            assert_eq!(run.id, first.id);
            assert_eq!(
                run.status,
                RunStatus::Completed,
                "the copy moved with the run"
            );
        }
        other => panic!("a finished slot must never run again, got {other:?}"),
    }

    let (next_slot, identity4, fp4) = scheduled(&stack, schedule, slot + Duration::hours(1));
    assert_eq!(
        start_system(&stack, &next_slot, &identity4, &fp4).await,
        Started::Created
    );
}

#[tokio::test]
async fn concurrent_system_starts_of_one_slot_create_one_run() {
    let stack = TestStack::new().await;
    let schedule = ulid::Ulid::new();
    let slot = Utc::now();
    let attempts: Vec<_> = (0..20).map(|_| scheduled(&stack, schedule, slot)).collect();
    let results = futures::future::join_all(
        attempts
            .iter()
            .map(|(run, identity, fp)| start_system(&stack, run, identity, fp)),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| **r == Started::Created).count(),
        1
    );
}

#[tokio::test]
async fn claims_respect_the_lease_and_the_terminal_transition_happens_once() {
    let stack = TestStack::new().await;
    let (run, identity, fp) = scheduled(&stack, ulid::Ulid::new(), Utc::now());
    start_system(&stack, &run, &identity, &fp).await;
    let store = stack.store();
    let t0 = Utc::now();
    let claim = |at| Transition::Claim {
        now: at,
        lease: Duration::seconds(60),
    };

    store
        .transition(&run, &claim(t0))
        .await
        .expect("first claim");
    let second = store
        .transition(&run, &claim(t0 + Duration::seconds(10)))
        .await;
    assert!(
        matches!(second, Err(StoreError::TransitionRefused)),
        "live lease: {second:?}"
    );
    store
        .transition(&run, &claim(t0 + Duration::seconds(61)))
        .await
        .expect("an expired lease is re-claimed");

    let delta = Counters {
        total: 3,
        processed: 3,
        succeeded: 2,
        failed: 1,
        skipped: 0,
    };
    store
        .transition(&run, &Transition::Progress { delta })
        .await
        .unwrap();
    let finish = |o| Transition::Finish {
        now: Utc::now(),
        outcome: o,
        failures: vec![],
    };
    store
        .transition(&run, &finish(Outcome::PartiallySucceeded))
        .await
        .unwrap();
    let again = store.transition(&run, &finish(Outcome::Succeeded)).await;
    assert!(matches!(again, Err(StoreError::TransitionRefused)));
    let progress_after = store
        .transition(&run, &Transition::Progress { delta })
        .await;
    assert!(matches!(progress_after, Err(StoreError::TransitionRefused)));

    let stored = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!(stored.outcome, Outcome::PartiallySucceeded);
    assert_eq!(stored.attempts, 2);
    assert_eq!(stored.counters, delta);
    assert!(stored.lease_expires_at.is_none());
    assert!(
        stored
            .started_at
            .is_some_and(|s| s <= t0 + Duration::milliseconds(1))
    );
}

#[tokio::test]
async fn concurrent_finishes_apply_exactly_once() {
    let stack = TestStack::new().await;
    let (run, identity, fp) = scheduled(&stack, ulid::Ulid::new(), Utc::now());
    start_system(&stack, &run, &identity, &fp).await;
    let outcomes = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Cancelled,
        Outcome::PartiallySucceeded,
    ];
    let store = stack.store();
    let results = futures::future::join_all((0..12).map(|i| {
        let t = Transition::Finish {
            now: Utc::now(),
            outcome: outcomes[i % 4],
            failures: vec![Failure::of(ReasonCode::RunStale)],
        };
        let run = run.clone();
        async move { store.transition(&run, &t).await }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let stored = stack.store().get_run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.failures.len(), 1, "the failures of one finish only");
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_can_no_longer_move_the_run() {
    let stack = TestStack::new().await;
    let (run, identity, fp) = scheduled(&stack, ulid::Ulid::new(), Utc::now());
    start_system(&stack, &run, &identity, &fp).await;
    let store = stack.store();
    let claim = |lease| Transition::Claim {
        now: Utc::now(),
        lease,
    };
    store
        .transition_as(&run, Some("worker-a"), &claim(Duration::milliseconds(1)))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    store
        .transition_as(&run, Some("worker-b"), &claim(Duration::seconds(60)))
        .await
        .expect("the expired lease is taken over");

    let delta = Counters {
        total: 1,
        processed: 1,
        succeeded: 1,
        ..Counters::default()
    };
    let finish = Transition::Finish {
        now: Utc::now(),
        outcome: Outcome::Succeeded,
        failures: vec![],
    };
    let zombie_progress = store
        .transition_as(&run, Some("worker-a"), &Transition::Progress { delta })
        .await;
    assert!(matches!(
        zombie_progress,
        Err(StoreError::TransitionRefused)
    ));
    let zombie_finish = store.transition_as(&run, Some("worker-a"), &finish).await;
    assert!(matches!(zombie_finish, Err(StoreError::TransitionRefused)));
    store
        .transition_as(&run, Some("worker-b"), &finish)
        .await
        .expect("the lease holder finishes");
    let stored = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!(
        stored.counters,
        Counters::default(),
        "the zombie's progress never landed"
    );
}
