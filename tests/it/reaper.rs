//! The reaper against the local stack: runs left queued or running past their deadline are
//! dispatched once more or failed `run.stale` (lock released, initiator notified, event
//! published), exactly once under concurrent ticks; whoever moves a run first wins; the
//! dead-letter queue is drained into `worker.exhausted` failures, deleting only what was
//! handled. Ticks take "now" as a parameter, so deadlines pass without sleeping.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tenantops_aws::keys::{ACTIVE_SHARDS, active_shard};
use tenantops_aws::store::{DISPATCH_DEADLINE, STALE_GRACE};
use tenantops_core::{Outcome, Run, RunStatus, Transition};
use tenantops_reaper::Tick;
use tenantops_tests::TestStack;

/// Receives and deletes every message of the work queue: the dispatch was "lost".
async fn lose_work_messages(stack: &TestStack) -> usize {
    let mut lost = 0;
    loop {
        let got = stack
            .sqs
            .receive_message()
            .queue_url(&stack.resources.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            return lost;
        }
        for m in msgs {
            stack
                .sqs
                .delete_message()
                .queue_url(&stack.resources.queue_url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
            lost += 1;
        }
    }
}

fn codes(run: &Run) -> Vec<String> {
    run.failures.iter().map(|f| f.code.to_string()).collect()
}

async fn completed_events(stack: &TestStack, capture: &str) -> Vec<Value> {
    stack
        .captured(capture)
        .await
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["detail-type"] == "OperationRun Completed")
        .collect()
}

async fn claim(stack: &TestStack, id: &str, lease: Duration) -> Run {
    let run = stack.run(id).await;
    let claim = Transition::Claim {
        now: Utc::now(),
        lease,
    };
    stack
        .store()
        .transition_as(&run, Some("worker-that-dies"), &claim)
        .await
        .unwrap();
    stack.run(id).await
}

#[tokio::test]
async fn a_queued_run_whose_message_was_lost_is_dispatched_once_more_then_failed_stale() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    assert_eq!(lose_work_messages(&stack).await, 1);

    let now = Utc::now();
    assert_eq!(
        tenantops_reaper::tick(now, &reaper).await,
        Tick::default(),
        "nothing is stale before its dispatch deadline"
    );

    let later = now + DISPATCH_DEADLINE + Duration::seconds(1);
    let tick = tenantops_reaper::tick(later, &reaper).await;
    assert_eq!((tick.redispatched, tick.failed_stale), (1, 0), "{tick:?}");
    assert_eq!(stack.queued_messages().await, 1, "dispatched once more");
    assert_eq!(stack.run(&id).await.status, RunStatus::Queued);
    assert_eq!(
        tenantops_reaper::tick(later, &reaper).await,
        Tick::default(),
        "the re-dispatch gave it a new deadline"
    );

    // Lost again: the second sighting fails it.
    assert_eq!(lose_work_messages(&stack).await, 1);
    let much_later = later + DISPATCH_DEADLINE + Duration::seconds(1);
    let tick = tenantops_reaper::tick(much_later, &reaper).await;
    assert_eq!((tick.redispatched, tick.failed_stale), (0, 1), "{tick:?}");
    assert_eq!(stack.queued_messages().await, 0, "only one re-dispatch");
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome, codes(&run)),
        (
            RunStatus::Completed,
            Outcome::Failed,
            vec!["run.stale".into()]
        )
    );

    // The identity is free, the initiator knows, subscribers know.
    let again = stack.start(json!({"type": "inventory.sync"})).await;
    assert_ne!(
        again, id,
        "the while-active lock was released with the finish"
    );
    let notes = stack
        .store()
        .notifications(&stack.users().owner, 50)
        .await
        .unwrap();
    let mine: Vec<_> = notes
        .iter()
        .filter(|n| n.run_id.to_string() == id && n.status == "completed")
        .collect();
    assert_eq!(mine.len(), 1, "{notes:?}");
    assert_eq!(mine[0].outcome, "failed");
    let events = completed_events(&stack, &capture).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["run_id"], id.as_str());
    assert_eq!(events[0]["detail"]["failure_codes"], json!(["run.stale"]));
    stack.finish(&again, Outcome::Succeeded).await;
    assert_eq!(
        tenantops_reaper::tick(much_later + Duration::hours(1), &reaper).await,
        Tick::default(),
        "a finished run left the index"
    );
}

#[tokio::test]
async fn a_running_run_whose_worker_vanished_is_failed_stale_after_the_redelivery_grace() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    lose_work_messages(&stack).await;
    let lease = Duration::minutes(5);
    let claimed = claim(&stack, &id, lease).await;
    let lease_end = claimed.lease_expires_at.unwrap();

    let tick = tenantops_reaper::tick(lease_end + Duration::seconds(1), &reaper).await;
    assert_eq!(
        tick,
        Tick::default(),
        "an expired lease alone is not stale: the message may still be redelivered"
    );
    let tick =
        tenantops_reaper::tick(lease_end + STALE_GRACE + Duration::seconds(1), &reaper).await;
    assert_eq!(tick.failed_stale, 1, "{tick:?}");
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome, codes(&run)),
        (
            RunStatus::Completed,
            Outcome::Failed,
            vec!["run.stale".into()]
        )
    );
    assert_eq!(run.attempts, 1);

    // The vanished worker coming back cannot move the run any more.
    let late = Transition::Progress {
        delta: tenantops_core::Counters {
            processed: 1,
            ..Default::default()
        },
    };
    assert!(
        stack
            .store()
            .transition_as(&claimed, Some("worker-that-dies"), &late)
            .await
            .is_err()
    );
    assert_eq!(stack.run(&id).await.counters.processed, 0);
    let again = stack.start(json!({"type": "directory_groups.sync"})).await;
    assert_ne!(again, id, "the identity is free again");
}

#[tokio::test]
async fn a_handed_back_run_waits_for_its_resume_time_before_it_can_be_stale() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    let claimed = claim(&stack, &id, Duration::minutes(5)).await;
    let now = Utc::now();
    let resume_at = now + Duration::hours(6);
    stack
        .store()
        .transition_as(
            &claimed,
            Some("worker-that-dies"),
            &Transition::Yield { now, resume_at },
        )
        .await
        .unwrap();
    let tick = tenantops_reaper::tick(now + Duration::hours(1), &reaper).await;
    assert_eq!(tick, Tick::default(), "its message is due in 6 hours");
    let tick =
        tenantops_reaper::tick(resume_at + STALE_GRACE + Duration::seconds(1), &reaper).await;
    assert_eq!(tick.failed_stale, 1, "{tick:?}");
}

#[tokio::test]
async fn whoever_moves_a_stale_run_first_wins() {
    let stack = TestStack::new().await;
    let store = stack.store();
    let queued = stack.start(json!({"type": "inventory.sync"})).await;
    let running = stack.start(json!({"type": "directory_groups.sync"})).await;
    let claimed = claim(&stack, &running, Duration::seconds(1)).await;
    let future = Utc::now() + Duration::days(1);
    let mut seen = Vec::new();
    for shard in 0..ACTIVE_SHARDS {
        seen.extend(store.stale_runs(shard, future, 100).await.unwrap());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let seen_queued = seen
        .iter()
        .find(|s| s.run.id.to_string() == queued)
        .unwrap()
        .clone();
    let seen_running = seen
        .iter()
        .find(|s| s.run.id.to_string() == running)
        .unwrap()
        .clone();
    assert!(
        store
            .stale_runs(active_shard(seen_queued.run.id), Utc::now(), 100)
            .await
            .unwrap()
            .is_empty(),
        "not stale as of now"
    );

    // A worker claims the queued run and re-claims the running one after the reaper saw them.
    let now = Utc::now() + Duration::seconds(2);
    for s in [&seen_queued, &seen_running] {
        let claim = Transition::Claim {
            now,
            lease: Duration::minutes(5),
        };
        store
            .transition_as(
                &stack.run(&s.run.id.to_string()).await,
                Some("live"),
                &claim,
            )
            .await
            .unwrap();
    }
    assert!(!store.mark_redispatched(&seen_queued, future).await.unwrap());
    assert_eq!(store.fail_stale(&seen_queued, future).await.unwrap(), None);
    assert_eq!(store.fail_stale(&seen_running, future).await.unwrap(), None);
    for id in [&queued, &running] {
        let run = stack.run(id).await;
        assert_eq!(
            (run.status, run.failures.len()),
            (RunStatus::Running, 0),
            "the live worker's run stands"
        );
    }
    assert_eq!(claimed.attempts, 1);
    assert_eq!(stack.run(&running).await.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ticks_act_on_each_stale_run_exactly_once() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let reaper = stack.reaper();
    let types = [
        "inventory.sync",
        "directory_groups.sync",
        "directory_role_definitions.sync",
        "provider_connection.verify",
    ];
    let mut ids = Vec::new();
    for ty in types {
        ids.push(stack.start(json!({ "type": ty })).await);
    }
    lose_work_messages(&stack).await;
    // Two of them were claimed by workers that died.
    for id in &ids[2..] {
        claim(&stack, id, Duration::seconds(1)).await;
    }

    let first = Utc::now() + Duration::days(1);
    let ticks =
        futures::future::join_all((0..4).map(|_| tenantops_reaper::tick(first, &reaper))).await;
    let redispatched: usize = ticks.iter().map(|t| t.redispatched).sum();
    let failed: usize = ticks.iter().map(|t| t.failed_stale).sum();
    assert_eq!((redispatched, failed), (2, 2), "{ticks:?}");
    assert!(ticks.iter().all(|t| t.errors == 0), "{ticks:?}");
    assert_eq!(
        stack.queued_messages().await,
        2,
        "one re-dispatch per queued run"
    );
    lose_work_messages(&stack).await;

    let second = first + DISPATCH_DEADLINE + Duration::seconds(1);
    let ticks =
        futures::future::join_all((0..4).map(|_| tenantops_reaper::tick(second, &reaper))).await;
    let failed: usize = ticks.iter().map(|t| t.failed_stale).sum();
    assert_eq!(failed, 2, "{ticks:?}");
    assert_eq!(stack.queued_messages().await, 0);
    for id in &ids {
        let run = stack.run(id).await;
        assert_eq!(codes(&run), ["run.stale"], "failed once: {run:?}");
    }
    let notes = stack
        .store()
        .notifications(&stack.users().owner, 50)
        .await
        .unwrap();
    assert_eq!(
        notes.iter().filter(|n| n.status == "completed").count(),
        4,
        "one notification per run: {notes:?}"
    );
    let events = completed_events(&stack, &capture).await;
    assert_eq!(events.len(), 4, "one Completed event per run: {events:?}");
}

/// Receives the work message until SQS moves it to the dead-letter queue, as a worker that
/// fails it every time would.
async fn exhaust_receives(stack: &TestStack) {
    for _ in 0..=tenantops_local::provision::MAX_RECEIVE_COUNT + 1 {
        stack
            .sqs
            .receive_message()
            .queue_url(&stack.resources.queue_url)
            .visibility_timeout(0)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
    }
}

async fn dead_letters(stack: &TestStack) -> usize {
    let attrs = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.resources.dead_letter_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    attrs
        .attributes
        .unwrap_or_default()
        .values()
        .map(|v| v.parse::<usize>().unwrap())
        .sum()
}

#[tokio::test]
async fn a_message_that_exhausted_its_receives_fails_its_run_worker_exhausted() {
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    exhaust_receives(&stack).await;
    assert_eq!(dead_letters(&stack).await, 1, "SQS moved it to the DLQ");
    assert_eq!(stack.queued_messages().await, 0);

    // A finished run's dead letter and a malformed one are handled (nothing to fail).
    let done = stack.start(json!({"type": "directory_groups.sync"})).await;
    lose_work_messages(&stack).await;
    stack.finish(&done, Outcome::Succeeded).await;
    for body in [json!({ "run_id": done }).to_string(), "not json".into()] {
        stack
            .sqs
            .send_message()
            .queue_url(&stack.resources.dead_letter_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let tick = tenantops_reaper::tick(Utc::now(), &reaper).await;
    assert_eq!(
        (tick.exhausted, tick.dead_letters, tick.errors),
        (1, 3, 0),
        "{tick:?}"
    );
    assert_eq!(dead_letters(&stack).await, 0);
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome, codes(&run)),
        (
            RunStatus::Completed,
            Outcome::Failed,
            vec!["worker.exhausted".into()]
        )
    );
    let untouched = stack.run(&done).await;
    assert_eq!(
        (untouched.outcome, untouched.failures.len()),
        (Outcome::Succeeded, 0)
    );
    let again = stack.start(json!({"type": "inventory.sync"})).await;
    assert_ne!(again, id, "the identity is free again");
    let events = completed_events(&stack, &capture).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["detail"]["failure_codes"],
        json!(["worker.exhausted"])
    );
}

#[tokio::test]
async fn a_dead_letter_the_reaper_could_not_handle_stays_for_the_next_tick() {
    let stack = TestStack::new().await;
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    exhaust_receives(&stack).await;
    assert_eq!(dead_letters(&stack).await, 1);

    // The table cannot be reached: nothing is handled, nothing deleted, the tick fails.
    let mut broken = stack.reaper();
    broken.store = tenantops_aws::Store::new(stack.dynamodb.clone(), "no-such-table");
    let err = tenantops_reaper::handle(json!({}), &broken)
        .await
        .unwrap_err();
    assert_eq!(err.tick.dead_letters, 0);
    assert!(err.tick.errors >= 1, "{:?}", err.tick);
    assert_eq!(
        dead_letters(&stack).await,
        1,
        "still in the DLQ (hidden for the tick's visibility timeout, then back)"
    );
    assert_eq!(stack.run(&id).await.status, RunStatus::Queued);
}

#[tokio::test]
async fn a_dead_letter_whose_run_a_live_worker_holds_leaves_the_run_to_that_worker() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    exhaust_receives(&stack).await;
    assert_eq!(dead_letters(&stack).await, 1);
    // A duplicate message (the reaper's re-dispatch, say) is being worked on right now.
    claim(&stack, &id, Duration::minutes(5)).await;

    let tick = tenantops_reaper::tick(Utc::now(), &reaper).await;
    assert_eq!(
        (tick.exhausted, tick.dead_letters, tick.errors),
        (0, 1, 0),
        "{tick:?}"
    );
    assert_eq!(dead_letters(&stack).await, 0, "handled, so deleted");
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.failures.len()),
        (RunStatus::Running, 0),
        "the live worker's run stands"
    );
}
