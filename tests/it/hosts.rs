//! The local hosts are as strict as Lambda: their limits are the template's, a worker
//! invocation past its deadline is killed and its messages come back, and the worker host
//! never hands more than `BatchSize` messages to an invocation nor runs more than the reserved
//! concurrency's invocations at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde_json::json;
use serde_yaml_ng::Value;
use tenantops_core::{Outcome, RunStatus};
use tenantops_graph::throttle::RetryPolicy;
use tenantops_local::template::{
    API_FUNCTION, SCHEDULER_FUNCTION, TEMPLATE_YAML, Template, WorkerLimits,
};
use tenantops_local::worker_host::{Drained, WorkerHost};
use tenantops_tests::{LogBuffer, TestStack};

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        handback_after: Duration::from_secs(5),
    }
}

/// The template read independently of the hosts' reader: plain indexing of the values the
/// template holds today.
fn template() -> Value {
    serde_yaml_ng::from_str(TEMPLATE_YAML).unwrap()
}

fn secs(v: &Value) -> Duration {
    Duration::from_secs(v.as_u64().unwrap_or_else(|| panic!("not a number: {v:?}")))
}

#[test]
fn the_hosts_limits_are_the_templates() {
    let t = template();
    let resources = &t["Resources"];
    let worker = &resources["WorkerFunction"]["Properties"];
    let mapping = &resources["WorkerEventSourceMapping"]["Properties"];
    let concurrency = t["Parameters"]["WorkerConcurrency"]["Default"]
        .as_u64()
        .unwrap();
    // Both bounds name the parameter; the host runs its default.
    for bound in [
        &worker["ReservedConcurrentExecutions"],
        &mapping["ScalingConfig"]["MaximumConcurrency"],
    ] {
        let Value::Tagged(tagged) = bound else {
            panic!("{bound:?} is not !Ref WorkerConcurrency");
        };
        assert_eq!(tagged.value.as_str(), Some("WorkerConcurrency"));
    }
    assert_eq!(
        WorkerHost::from_template().unwrap().limits,
        WorkerLimits {
            timeout: secs(&worker["Timeout"]),
            batch_size: usize::try_from(mapping["BatchSize"].as_u64().unwrap()).unwrap(),
            concurrency: usize::try_from(concurrency).unwrap(),
        }
    );
    let reader = Template::embedded().unwrap();
    assert_eq!(
        reader.function_timeout(API_FUNCTION).unwrap(),
        secs(&resources["ApiFunction"]["Properties"]["Timeout"])
    );
    assert_eq!(
        reader.function_timeout(SCHEDULER_FUNCTION).unwrap(),
        secs(&resources["SchedulerFunction"]["Properties"]["Timeout"])
    );
    assert_eq!(
        tenantops_local::scheduler_host::timeout().unwrap(),
        secs(&resources["SchedulerFunction"]["Properties"]["Timeout"])
    );
}

#[test]
fn changing_the_template_changes_the_hosts_limits() {
    let limits = Template::embedded().unwrap().worker_limits().unwrap();
    let edited = TEMPLATE_YAML
        .replace(
            &format!("      Timeout: {}\n", limits.timeout.as_secs()),
            "      Timeout: 7\n",
        )
        .replace(
            &format!(
                "BatchSize: {}\n      MaximumBatchingWindowInSeconds",
                limits.batch_size
            ),
            "BatchSize: 3\n      MaximumBatchingWindowInSeconds",
        )
        .replace(
            &format!("Default: {}\n    MinValue: 2", limits.concurrency),
            "Default: 4\n    MinValue: 2",
        );
    assert_eq!(
        Template::parse(&edited).unwrap().worker_limits().unwrap(),
        WorkerLimits {
            timeout: Duration::from_secs(7),
            batch_size: 3,
            concurrency: 4,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_past_its_deadline_is_killed_and_its_messages_come_back() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("tenantops_local=info"))
        .with_writer(move || writer.clone())
        .finish();
    // The host is polled on this thread (no spawned task), so its log lands here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 3)], policy())
        .await;
    // A 1 s timeout, and messages that come back 6 s after a receive instead of 900 s: the
    // template's ratio (visibility >= 6 x timeout), so the drain ends before they are back.
    stack.set_work_queue_visibility(6).await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    // Every Graph answer takes a minute: the run cannot finish before its deadline, and the
    // kill lands while the worker waits on Graph, in the middle of its work.
    worker.sim.set_delay(Duration::from_secs(60));
    let host = WorkerHost::from_template()
        .unwrap()
        .with_timeout(Duration::from_secs(1));

    let drained = worker.drain_on(&host).await;

    assert_eq!(
        drained,
        Drained {
            received: 1,
            invocations: 1,
            timed_out: 1,
        }
    );
    assert!(
        logs.text()
            .contains("worker invocation timed out and was killed"),
        "the kill is logged: {}",
        logs.text()
    );
    assert_ne!(
        stack.run(&id).await.status,
        RunStatus::Completed,
        "the killed invocation did not finish the run"
    );
    // Nothing of the batch was deleted: the message is back after the visibility timeout,
    // having used exactly one receive (this receive is its second).
    let back = stack
        .next_work_message(Duration::from_secs(30))
        .await
        .expect("the killed invocation's message comes back");
    assert!(back.body.contains(&id), "{}", back.body);
    assert_eq!(
        back.receive_count, 2,
        "the killed invocation used one receive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_host_respects_batch_size_and_reserved_concurrency() {
    let stack = TestStack::new().await;
    let worker = stack
        .worker(&[("deviceManagement/deviceConfigurations", 2)], policy())
        .await;
    let id = stack
        .start(json!({"type": "inventory.sync", "params": {"types": ["deviceConfigurations"]}}))
        .await;
    worker.drain().await;
    assert_eq!(stack.run(&id).await.outcome, Outcome::Succeeded);

    let host = WorkerHost::from_template().unwrap();
    let WorkerLimits {
        batch_size,
        concurrency,
        ..
    } = host.limits;
    // More than fit in `concurrency` full batches at once: redeliveries of the finished run,
    // which the worker acknowledges.
    let messages = concurrency * batch_size + batch_size + 1;
    for _ in 0..messages {
        stack.dispatcher().send(id.parse().unwrap()).await.unwrap();
    }

    let in_flight = AtomicUsize::new(0);
    let (peak, _) = tokio::sync::watch::channel(0usize);
    let batches = Mutex::new(Vec::new());
    let deps = &worker.deps;
    let handler = |event: SqsEvent, deadline: DateTime<Utc>| {
        let (in_flight, peak, batches) = (&in_flight, &peak, &batches);
        async move {
            batches.lock().unwrap().push(event.records.len());
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.send_modify(|p| *p = (*p).max(now));
            // Every invocation waits until the host has run as many at once as it may, so a
            // host that allowed more would show more, and one that allowed fewer fails here.
            let mut seen = peak.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(20),
                seen.wait_for(|p| *p >= concurrency),
            )
            .await;
            let out = tenantops_worker::handle(event, deadline, deps).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            out
        }
    };

    let drained = host.drain_with(deps, &handler).await.unwrap();

    // At least what the test sent: the relay dispatches at least once (as Lambda's stream
    // polling and an SDK retry of a send that went through both may repeat a send), so the
    // run's first message may have had a twin that arrived after the first drain.
    assert!(drained.received >= messages, "{drained:?}");
    assert_eq!(drained.timed_out, 0);
    assert_eq!(*peak.borrow(), concurrency, "invocations at once");
    let batches = batches.into_inner().unwrap();
    assert_eq!(batches.iter().sum::<usize>(), drained.received);
    assert!(
        batches.iter().all(|b| (1..=batch_size).contains(b)),
        "{batches:?}"
    );
    assert!(batches.contains(&batch_size), "full batches: {batches:?}");
    assert_eq!(
        stack.queued_messages().await,
        0,
        "every message was deleted"
    );
}
