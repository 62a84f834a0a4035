//! Test support for the local hosts: calling the API through a chosen gateway (e.g. one with
//! a short timeout), running the worker on a chosen host, and watching work messages come back
//! to the queue.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::Value;
use tenantops_local::gateway::{self, Gateway};
use tenantops_local::worker_host::{Drained, WorkerHost};
use tower::ServiceExt;

use crate::{ApiCall, Reply, TestStack, WorkerHarness};

/// A work message as a later receive sees it.
#[derive(Debug, Clone)]
pub struct Redelivered {
    pub body: String,
    /// `ApproximateReceiveCount` including this receive.
    pub receive_count: u32,
}

impl TestStack {
    /// Calls the API through this gateway (e.g. one with a short timeout).
    pub async fn call_via(&self, gateway: Gateway, req: ApiCall<'_>) -> Reply {
        if req.method == "GET" {
            self.settle_quietly().await;
        }
        let reply = Box::pin(self.call_unsettled(gateway, req)).await;
        self.settle_quietly().await;
        reply
    }

    /// [`TestStack::call_via`] without settling the relay, for calls made concurrently.
    async fn call_unsettled(&self, gateway: Gateway, req: ApiCall<'_>) -> Reply {
        let app = gateway::router(gateway);
        let mut builder = Request::builder().method(req.method).uri(req.path);
        if let Some(user) = req.user {
            builder = builder.header("authorization", format!("Bearer {}", self.token(user)));
        }
        if let Some(token) = req.raw_token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in &req.headers {
            builder = builder.header(*k, v.as_str());
        }
        let body = match req.body {
            Some(b) => {
                if !req
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    builder = builder.header("content-type", "application/json");
                }
                Body::from(b)
            }
            None => Body::empty(),
        };
        let resp = app.oneshot(builder.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
            headers,
        }
    }

    /// Sets the work queue's visibility timeout (the template's is 900 s): how long a
    /// received message stays hidden before it comes back.
    pub async fn set_work_queue_visibility(&self, seconds: u32) {
        self.sqs
            .set_queue_attributes()
            .queue_url(&self.resources.queue_url)
            .attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string())
            .send()
            .await
            .unwrap();
        self.sqs_calls.take();
    }

    /// Waits (long polls, at most about a minute) until a work message is visible again,
    /// receives it (hidden for `hide_for`) and returns it with its receive count. `None`: none
    /// came back.
    pub async fn next_work_message(&self, hide_for: Duration) -> Option<Redelivered> {
        for _ in 0..30 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.resources.queue_url)
                .max_number_of_messages(1)
                .wait_time_seconds(2)
                .visibility_timeout(i32::try_from(hide_for.as_secs()).unwrap())
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .unwrap();
            self.sqs_calls.take();
            if let Some(m) = got.messages.unwrap_or_default().into_iter().next() {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap();
                return Some(Redelivered {
                    body: m.body.unwrap_or_default(),
                    receive_count,
                });
            }
        }
        None
    }
}

impl WorkerHarness {
    /// Runs every message queued now on `host` (e.g. one with a short timeout).
    pub async fn drain_on(&self, host: &WorkerHost) -> Drained {
        host.drain(&self.deps).await.unwrap()
    }
}
