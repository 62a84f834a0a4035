//! Fault injection under the AWS SDK: an HTTP client for DynamoDB clients that answers some
//! requests itself before they are sent (a throttling or 500 response, which the SDK's retry
//! layer must absorb), and that can "kill" the caller at a chosen request: that request and
//! every later one never complete (their futures pend forever) and a [`Kill`] fires, so the
//! test can drop the handler's future right there, as a crashed Lambda would stop.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use tokio::sync::watch;

/// Where a kill happens: the `nth` (1-based) DynamoDB request of operation `operation` (e.g.
/// `TransactWriteItems`) whose body contains `body_contains`.
#[derive(Debug, Clone)]
pub struct KillAt {
    pub operation: &'static str,
    pub body_contains: Option<&'static str>,
    pub nth: u64,
    /// `true`: the request is sent and applied, and the caller dies before it sees the
    /// answer. `false`: the caller dies before sending it.
    pub after_sending: bool,
}

/// Fires when the caller reached its kill point.
#[derive(Debug, Clone)]
pub struct Kill(watch::Receiver<bool>);

impl Kill {
    pub async fn fired(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}

/// A pause armed with [`DynamoFaults::pause_at`]: the request at its point, and every later
/// matching one, waits unsent until [`Pause::release`], so a test can act on the table while
/// the caller is held at a known step (e.g. cancel a run between two checkpoints).
#[derive(Debug)]
pub struct Pause {
    reached: watch::Receiver<bool>,
    release: watch::Sender<bool>,
}

impl Pause {
    /// Waits until the caller is held at the pause point.
    pub async fn reached(&mut self) {
        let _ = self.reached.wait_for(|r| *r).await;
    }

    /// Sends the held requests, and lets later ones through.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

#[derive(Debug)]
struct PauseRule {
    at: KillAt,
    seen: u64,
    reached: watch::Sender<bool>,
    release: watch::Receiver<bool>,
}

#[derive(Debug)]
struct KillRule {
    at: KillAt,
    seen: u64,
    fire: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Fail the first `failing_attempts` attempts of one operation in `every` (0: none).
    every: u64,
    failing_attempts: u32,
    /// Send those attempts, and lose their answers (a 500 instead), rather than not send them.
    lose_answers: bool,
    /// Only operations of these names (e.g. `TransactWriteItems`) are counted and faulted.
    only: Option<&'static [&'static str]>,
    operations: AtomicU64,
    injected: AtomicU64,
    faulty: Mutex<HashSet<String>>,
    kill: Mutex<Option<KillRule>>,
    pause: Mutex<Option<PauseRule>>,
    /// The kill point was reached: the "process" is dead, and no later request of it
    /// completes either (concurrent branches of the handler stop with it).
    dead: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("every", &self.every)
            .field("failing_attempts", &self.failing_attempts)
            .field("injected", &self.injected)
            .finish_non_exhaustive()
    }
}

/// The fault layer. Clone it into as many SDK clients as needed; they share its plan.
#[derive(Debug, Clone)]
pub struct DynamoFaults {
    inner: SharedHttpClient,
    state: Arc<State>,
}

impl DynamoFaults {
    /// No faults until a kill is armed.
    pub fn none() -> Self {
        Self::every(0, 0)
    }

    /// One operation in `every` has its first `failing_attempts` attempts answered with an
    /// error before they are sent: alternately a `ThrottlingException` (400) and an
    /// `InternalServerError` (500). Keep `failing_attempts` below the SDK's attempts (3).
    pub fn every(every: u64, failing_attempts: u32) -> Self {
        Self {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            state: Arc::new(State {
                every,
                failing_attempts,
                ..State::default()
            }),
        }
    }

    /// One operation of `operations` in `every` has its first attempt sent and applied, and its answer
    /// replaced by an `InternalServerError` (500): the caller cannot know the write happened
    /// and retries it.
    pub fn lose_answers(every: u64, operations: &'static [&'static str]) -> Self {
        let mut faults = Self::every(every, 1);
        if let Some(state) = Arc::get_mut(&mut faults.state) {
            state.lose_answers = true;
            state.only = Some(operations);
        }
        faults
    }

    /// Arms a kill; only one at a time.
    pub fn kill_at(&self, at: KillAt) -> Kill {
        let (fire, rx) = watch::channel(false);
        *self.state.kill.lock().unwrap() = Some(KillRule { at, seen: 0, fire });
        Kill(rx)
    }

    /// Arms a pause (`at.after_sending` is not used: held requests are not sent yet); only
    /// one at a time.
    pub fn pause_at(&self, at: KillAt) -> Pause {
        let (reached_tx, reached) = watch::channel(false);
        let (release, release_rx) = watch::channel(false);
        *self.state.pause.lock().unwrap() = Some(PauseRule {
            at,
            seen: 0,
            reached: reached_tx,
            release: release_rx,
        });
        Pause { reached, release }
    }

    /// How many error responses were injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// A DynamoDB client on `sdk` whose requests pass through this layer.
    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .http_client(self.clone())
                .build(),
        )
    }
}

impl HttpClient for DynamoFaults {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            state: self.state.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    state: Arc<State>,
}

/// (attempt number, operation invocation id) from the SDK's `amz-sdk-request` and
/// `amz-sdk-invocation-id` headers, which stay the same across one operation's retries.
fn attempt_of(request: &HttpRequest) -> (u32, String) {
    let attempt = request
        .headers()
        .get("amz-sdk-request")
        .and_then(|v| {
            v.split(';')
                .find_map(|p| p.trim().strip_prefix("attempt="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1);
    let invocation = request
        .headers()
        .get("amz-sdk-invocation-id")
        .unwrap_or_default()
        .to_owned();
    (attempt, invocation)
}

fn error_response(throttle: bool) -> HttpResponse {
    let (status, kind) = if throttle {
        (400, "ThrottlingException")
    } else {
        (500, "InternalServerError")
    };
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test's fault layer"}}"#
    );
    let mut response =
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.state.dead.load(Ordering::SeqCst) {
            return HttpConnectorFuture::new(std::future::pending());
        }
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();

        // A kill point: pend forever, before or after sending.
        let mut kill = None;
        if let Some(rule) = self.state.kill.lock().unwrap().as_mut() {
            let matches = rule.at.operation == operation
                && rule.at.body_contains.is_none_or(|s| body.contains(s));
            if matches {
                rule.seen += 1;
                if rule.seen == rule.at.nth {
                    self.state.dead.store(true, Ordering::SeqCst);
                    kill = Some((rule.fire.clone(), rule.at.after_sending));
                }
            }
        }
        if let Some((fire, after_sending)) = kill {
            let sent = after_sending.then(|| self.inner.call(request));
            return HttpConnectorFuture::new(async move {
                if let Some(sent) = sent {
                    let _ = sent.await;
                }
                let _ = fire.send(true);
                // A killed caller never sees an answer.
                std::future::pending().await
            });
        }

        // A pause point: hold the request (unsent) until the test releases it.
        let mut hold = None;
        if let Some(rule) = self.state.pause.lock().unwrap().as_mut() {
            let matches = rule.at.operation == operation
                && rule.at.body_contains.is_none_or(|s| body.contains(s));
            if matches && !*rule.release.borrow() {
                rule.seen += 1;
                if rule.seen >= rule.at.nth {
                    let _ = rule.reached.send(true);
                    hold = Some(rule.release.clone());
                }
            }
        }
        if let Some(mut release) = hold {
            let inner = self.inner.clone();
            return HttpConnectorFuture::new(async move {
                let _ = release.wait_for(|r| *r).await;
                inner.call(request).await
            });
        }

        let (attempt, invocation) = attempt_of(&request);
        let s = &self.state;
        if s.every > 0 && s.only.is_none_or(|only| only.contains(&operation.as_str())) {
            let faulty = if attempt == 1 {
                let n = s.operations.fetch_add(1, Ordering::SeqCst);
                let faulty = n.is_multiple_of(s.every);
                if faulty {
                    s.faulty.lock().unwrap().insert(invocation.clone());
                }
                faulty
            } else {
                s.faulty.lock().unwrap().contains(&invocation)
            };
            if faulty && attempt <= s.failing_attempts {
                let n = s.injected.fetch_add(1, Ordering::SeqCst);
                if s.lose_answers {
                    let sent = self.inner.call(request);
                    return HttpConnectorFuture::new(async move {
                        let _ = sent.await;
                        Ok(error_response(false))
                    });
                }
                return HttpConnectorFuture::ready(Ok(error_response(n.is_multiple_of(2))));
            }
        }
        self.inner.call(request)
    }
}
