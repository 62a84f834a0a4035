//! The reaper against the local stack: backlog is not loss (runs whose message waits in the
//! queue are left to it, however long, and neither failed nor worked twice); runs whose
//! message was lost are dispatched again under a new generation (a superseded message is
//! acknowledged without work) and, when nothing recovers them, failed `run.stale` (lock
//! released, initiator notified, event published), exactly once under concurrent ticks;
//! whoever moves a run first wins; the dead-letter queue is drained into `worker.exhausted`
//! failures, deleting only what was handled. Ticks take "now" as a parameter, so thresholds
//! pass without sleeping.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tenantops_aws::keys::{ACTIVE_SHARDS, active_shard};
use tenantops_core::{Outcome, Run, RunStatus, Transition};
use tenantops_reaper::{Thresholds, Tick};
use tenantops_tests::TestStack;

fn deadline() -> Duration {
    Thresholds::default().dispatch_deadline
}

fn grace() -> Duration {
    Thresholds::default().stale_grace
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
async fn a_queued_run_whose_message_is_lost_again_and_again_is_failed_stale_after_its_redispatches()
{
    let stack = TestStack::new().await;
    let capture = stack.capture_events().await;
    let reaper = stack.reaper();
    assert_eq!(reaper.thresholds.max_redispatches, 2, "the deployed value");
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    assert_eq!(stack.lose_work_messages().await, 1);

    let now = Utc::now();
    assert_eq!(
        tenantops_reaper::tick(now, &reaper).await,
        Tick::default(),
        "nothing is overdue before its dispatch deadline"
    );

    // Each sighting with no message waiting dispatches it again, under a new generation.
    let mut at = now;
    for generation in 1..=2u32 {
        at = at + deadline() + Duration::seconds(1);
        let tick = tenantops_reaper::tick(at, &reaper).await;
        assert_eq!((tick.redispatched, tick.failed_stale), (1, 0), "{tick:?}");
        assert_eq!(stack.queued_messages().await, 1, "dispatched again");
        let dispatched = stack
            .store()
            .get_dispatched(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (dispatched.run.status, dispatched.dispatch),
            (RunStatus::Queued, generation)
        );
        assert_eq!(
            tenantops_reaper::tick(at, &reaper).await,
            Tick::default(),
            "the re-dispatch gave it a new dispatch time"
        );
        // Lost again.
        assert_eq!(stack.lose_work_messages().await, 1);
    }

    // The sighting after the last re-dispatch fails it.
    let much_later = at + deadline() + Duration::seconds(1);
    let tick = tenantops_reaper::tick(much_later, &reaper).await;
    assert_eq!((tick.redispatched, tick.failed_stale), (0, 1), "{tick:?}");
    assert_eq!(stack.queued_messages().await, 0, "no third re-dispatch");
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
    // Nothing to dispatch again: the first sighting past the grace fails it.
    let mut reaper = stack.reaper();
    reaper.thresholds.max_redispatches = 0;
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    stack.lose_work_messages().await;
    let lease = Duration::minutes(5);
    let claimed = claim(&stack, &id, lease).await;
    let lease_end = claimed.lease_expires_at.unwrap();

    let tick = tenantops_reaper::tick(lease_end + Duration::seconds(1), &reaper).await;
    assert_eq!(
        tick,
        Tick::default(),
        "an expired lease alone is not stale: the message may still be redelivered"
    );
    let tick = tenantops_reaper::tick(lease_end + grace() + Duration::seconds(1), &reaper).await;
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
    let mut reaper = stack.reaper();
    reaper.thresholds.max_redispatches = 0;
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    // Its message is lost after the hand-back (were it waiting, the run would wait with it).
    stack.lose_work_messages().await;
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
    let tick = tenantops_reaper::tick(resume_at + grace() + Duration::seconds(1), &reaper).await;
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
        seen.extend(
            store
                .stale_runs(shard, future, &Thresholds::default(), 100)
                .await
                .unwrap(),
        );
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
            .stale_runs(
                active_shard(seen_queued.run.id),
                Utc::now(),
                &Thresholds::default(),
                100,
            )
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
    assert_eq!(
        store.mark_redispatched(&seen_queued, future).await.unwrap(),
        None
    );
    for s in [&seen_queued, &seen_running] {
        assert!(!store.postpone(s, future).await.unwrap());
    }
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
    // Failed at the first sighting: a re-dispatch by one tick would look like a backlog to a
    // tick that reads the queue after it (concurrent re-dispatches are tested below).
    let mut reaper = stack.reaper();
    reaper.thresholds.max_redispatches = 0;
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
    stack.lose_work_messages().await;
    // Two of them were claimed by workers that died.
    for id in &ids[2..] {
        claim(&stack, id, Duration::seconds(1)).await;
    }

    let first = Utc::now() + Duration::days(1);
    let ticks =
        futures::future::join_all((0..4).map(|_| tenantops_reaper::tick(first, &reaper))).await;
    let acted: Vec<_> = ticks
        .iter()
        .map(|t| (t.waiting, t.redispatched, t.errors))
        .collect();
    assert!(acted.iter().all(|a| *a == (0, 0, 0)), "{ticks:?}");
    let failed: usize = ticks.iter().map(|t| t.failed_stale).sum();
    assert_eq!(failed, 4, "{ticks:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ticks_dispatch_a_lost_run_again_exactly_once() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    stack.lose_work_messages().await;
    let at = Utc::now() + deadline() + Duration::seconds(1);
    let ticks =
        futures::future::join_all((0..4).map(|_| tenantops_reaper::tick(at, &reaper))).await;
    let redispatched: usize = ticks.iter().map(|t| t.redispatched).sum();
    let others: usize = ticks
        .iter()
        .map(|t| t.waiting + t.failed_stale + t.errors)
        .sum();
    assert_eq!((redispatched, others), (1, 0), "{ticks:?}");
    assert_eq!(stack.queued_messages().await, 1, "one message sent");
    let dispatched = stack
        .store()
        .get_dispatched(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (dispatched.run.status, dispatched.dispatch),
        (RunStatus::Queued, 1)
    );
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
    stack.lose_work_messages().await;
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

/// Quick retries for tests; long waits still hand back.
fn policy() -> tenantops_graph::throttle::RetryPolicy {
    tenantops_graph::throttle::RetryPolicy {
        max_attempts: 6,
        base: std::time::Duration::from_millis(50),
        cap: std::time::Duration::from_secs(2),
        handback_after: std::time::Duration::from_secs(5),
    }
}

/// The demo tenant with two objects in every collection.
fn small_tenant() -> Vec<(&'static str, usize)> {
    tenantops_graph_sim::DEMO_COLLECTIONS
        .iter()
        .map(|p| (*p, 2))
        .collect()
}

/// The reaper's thresholds shrunk for a test: a one-minute dispatch deadline.
fn shrunk() -> Thresholds {
    Thresholds {
        dispatch_deadline: Duration::seconds(60),
        stale_grace: Duration::seconds(120),
        max_redispatches: 2,
    }
}

fn assert_worked_once(run: &Run) {
    assert_eq!(
        (run.status, run.outcome, run.attempts, run.failures.len()),
        (RunStatus::Completed, Outcome::Succeeded, 1, 0),
        "completed once, claimed once: {run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_five_times_the_dispatch_deadline_is_waited_out_and_every_run_is_worked_once() {
    const RUNS: usize = 12;
    let stack = TestStack::new().await;
    let mut reaper = stack.reaper();
    reaper.thresholds = shrunk();

    // The 02:00 fan-in: a dozen schedules fire in the same minute, and no worker is free.
    let schedules = format!(
        "/v1/workspaces/{}/tenants/{}/backup-schedules",
        stack.demo.workspace_id, stack.demo.tenant_id
    );
    let created = futures::future::join_all((0..RUNS).map(|i| {
        let call = tenantops_tests::ApiCall::post(
            schedules.clone(),
            json!({
                "name": format!("nightly {i}"),
                "cadence": {"kind": "daily", "at": "02:00"},
                "timezone": "UTC",
                "types": ["deviceConfigurations"],
                "retention": {"keep_last": 7},
            })
            .to_string(),
        )
        .by(&stack.users().owner);
        stack.call(call)
    }))
    .await;
    let slot = created
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.body);
            let at = r.body["schedule"]["next_fire_at"].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc)
        })
        .max()
        .unwrap();
    let scheduler = tenantops_scheduler::Deps {
        store: stack.store().clone(),
    };
    let fired =
        tenantops_scheduler::handle(&tenantops_scheduler::ScheduledEvent::at(slot), &scheduler)
            .await
            .unwrap();
    assert_eq!(fired.fired, RUNS);
    assert_eq!(stack.queued_messages().await, RUNS);

    // Five dispatch deadlines pass with every message still waiting; two reapers tick every
    // half deadline.
    let mut waiting = 0;
    for k in 1..=10 {
        let now = slot + Duration::seconds(30 * k);
        let ticks =
            futures::future::join_all((0..2).map(|_| tenantops_reaper::tick(now, &reaper))).await;
        for t in &ticks {
            assert_eq!(
                (t.redispatched, t.failed_stale, t.errors),
                (0, 0, 0),
                "backlog is not loss: {ticks:?}"
            );
            waiting += t.waiting;
        }
    }
    assert_eq!(
        waiting,
        RUNS * 5,
        "each run left to the backlog once per deadline"
    );
    assert_eq!(stack.queued_messages().await, RUNS, "no message was added");

    // Workers come and drain the queue: every run is worked once, by its one message.
    let worker = stack.worker(&small_tenant(), policy()).await;
    assert_eq!(worker.drain().await, RUNS, "one delivery per run");
    let runs = stack
        .store()
        .list_runs(&tenantops_aws::RunQuery {
            workspace: Some(stack.demo.workspace_id),
            tenant: Some(stack.demo.tenant_id),
            types: None,
            status: None,
            active: None,
            problem: None,
            limit: 100,
            after: None,
        })
        .await
        .unwrap()
        .items;
    assert_eq!(runs.len(), RUNS);
    for run in &runs {
        assert_worked_once(run);
        assert!(codes(run).is_empty(), "no run.stale: {run:?}");
    }
    assert_eq!(stack.queued_messages().await, 0);
    assert_eq!(
        tenantops_reaper::tick(slot + Duration::days(1), &reaper).await,
        Tick::default(),
        "nothing left for the reaper"
    );
}

#[tokio::test]
async fn a_purged_queues_run_is_dispatched_again_and_worked_once() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    stack
        .sqs
        .purge_queue()
        .queue_url(&stack.resources.queue_url)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.queued_messages().await, 0);

    let tick =
        tenantops_reaper::tick(Utc::now() + deadline() + Duration::seconds(1), &reaper).await;
    assert_eq!((tick.redispatched, tick.errors), (1, 0), "{tick:?}");
    let worker = stack.worker(&small_tenant(), policy()).await;
    assert_eq!(worker.drain().await, 1);
    let run = stack.run(&id).await;
    assert_worked_once(&run);
    assert_eq!(run.counters.processed, 2);
    assert_eq!(
        tenantops_reaper::tick(Utc::now() + Duration::days(1), &reaper).await,
        Tick::default()
    );
}

#[tokio::test]
async fn a_message_superseded_while_in_flight_is_acknowledged_without_work() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    // A worker received the message and stalled before claiming: it is in flight, so no
    // message waits, and the reaper dispatches the run again.
    let got = stack
        .sqs
        .receive_message()
        .queue_url(&stack.resources.queue_url)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    let stalled = got.messages.unwrap_or_default().remove(0);
    let tick =
        tenantops_reaper::tick(Utc::now() + deadline() + Duration::seconds(1), &reaper).await;
    assert_eq!(tick.redispatched, 1, "{tick:?}");

    // The stalled delivery comes back: two messages for one run.
    stack
        .sqs
        .change_message_visibility()
        .queue_url(&stack.resources.queue_url)
        .receipt_handle(stalled.receipt_handle.unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.queued_messages().await, 2);
    let worker = stack.worker(&small_tenant(), policy()).await;
    assert_eq!(worker.drain().await, 2, "both acknowledged");
    let run = stack.run(&id).await;
    assert_worked_once(&run);
    assert_eq!(run.counters.processed, 2, "the groups were read once");
    assert_eq!(stack.queued_messages().await, 0);
}

#[tokio::test]
async fn a_dead_letter_of_a_superseded_dispatch_leaves_the_run_to_the_later_one() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "inventory.sync"})).await;
    stack.lose_work_messages().await;
    let at = Utc::now() + deadline() + Duration::seconds(1);
    assert_eq!(tenantops_reaper::tick(at, &reaper).await.redispatched, 1);

    let letter = |dispatch: u32| {
        let mut body = json!({ "run_id": id });
        if dispatch > 0 {
            body["dispatch"] = json!(dispatch);
        }
        stack
            .sqs
            .send_message()
            .queue_url(&stack.resources.dead_letter_queue_url)
            .message_body(body.to_string())
            .send()
    };
    // The first dispatch's message exhausted its receives: the re-dispatch stands.
    letter(0).await.unwrap();
    let tick = tenantops_reaper::tick(at, &reaper).await;
    assert_eq!(
        (tick.exhausted, tick.dead_letters, tick.errors),
        (0, 1, 0),
        "{tick:?}"
    );
    assert_eq!(stack.run(&id).await.status, RunStatus::Queued);

    // The current dispatch's message exhausted its receives: the run fails.
    letter(1).await.unwrap();
    let tick = tenantops_reaper::tick(at, &reaper).await;
    assert_eq!((tick.exhausted, tick.dead_letters), (1, 1), "{tick:?}");
    assert_eq!(codes(&stack.run(&id).await), ["worker.exhausted"]);
}

#[tokio::test]
async fn a_running_run_whose_message_was_lost_is_dispatched_again_and_reclaimed() {
    let stack = TestStack::new().await;
    let reaper = stack.reaper();
    let id = stack.start(json!({"type": "directory_groups.sync"})).await;
    // A worker claimed it and died (its lease is already over), and its message is gone
    // (e.g. a purge).
    stack.lose_work_messages().await;
    let claimed = claim(&stack, &id, Duration::zero()).await;
    let lease_end = claimed.lease_expires_at.unwrap();

    let tick = tenantops_reaper::tick(lease_end + grace() + Duration::seconds(1), &reaper).await;
    assert_eq!((tick.redispatched, tick.failed_stale), (1, 0), "{tick:?}");
    let worker = stack.worker(&small_tenant(), policy()).await;
    assert_eq!(worker.drain().await, 1);
    let run = stack.run(&id).await;
    assert_eq!(
        (run.status, run.outcome, run.attempts, run.failures.len()),
        (RunStatus::Completed, Outcome::Succeeded, 2, 0),
        "re-claimed by the new message: {run:?}"
    );
    assert_eq!(run.counters.processed, 2);
}
