//! Webhook subscriptions, pure: the events a workspace may subscribe to, the URL rule (https,
//! and no address a cloud function must not reach: the SSRF rule), Standard Webhooks signing,
//! the retry schedule, payloads (ids, codes and links only) and the delivery record.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::ids::{RunId, ScheduleId, TenantId, WebhookId, WorkspaceId};
use crate::links;
use crate::reason::ReasonCode;
use crate::secret::SecretString;

/// What a delivery announces. Every variant but `Test` may be subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "run.partially_succeeded")]
    RunPartiallySucceeded,
    #[serde(rename = "drift.detected")]
    DriftDetected,
    #[serde(rename = "schedule.slot_missed")]
    ScheduleSlotMissed,
    #[serde(rename = "connection.verification_failed")]
    ConnectionVerificationFailed,
    /// A test delivery (`POST .../webhooks/{id}/test`), to one subscription whatever its events.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    /// The events a subscription may name.
    pub const SUBSCRIBABLE: [EventType; 5] = [
        EventType::RunFailed,
        EventType::RunPartiallySucceeded,
        EventType::DriftDetected,
        EventType::ScheduleSlotMissed,
        EventType::ConnectionVerificationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RunFailed => "run.failed",
            EventType::RunPartiallySucceeded => "run.partially_succeeded",
            EventType::DriftDetected => "drift.detected",
            EventType::ScheduleSlotMissed => "schedule.slot_missed",
            EventType::ConnectionVerificationFailed => "connection.verification_failed",
            EventType::Test => "webhook.test",
        }
    }
}

/// Whether loopback addresses may be delivered to: only a local run sets this, through a
/// variable the deployment never has (see ARCHITECTURE.md, "Webhooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    pub allow_loopback: bool,
}

impl UrlPolicy {
    /// The deployed policy: public addresses only, over https.
    pub const PUBLIC: UrlPolicy = UrlPolicy {
        allow_loopback: false,
    };
    /// A local run's: loopback too, and plain http to it.
    pub const LOCAL: UrlPolicy = UrlPolicy {
        allow_loopback: true,
    };
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute https URL of a host (`webhook.url_invalid`).
    #[error("{0}")]
    Invalid(&'static str),
    /// The host is, or resolves to, an address webhooks never reach (`webhook.url_refused`).
    #[error("the URL's host is or resolves to an address webhooks may not reach")]
    Refused,
}

impl UrlError {
    pub fn code(&self) -> ReasonCode {
        match self {
            UrlError::Invalid(_) => ReasonCode::WebhookUrlInvalid,
            UrlError::Refused => ReasonCode::WebhookUrlRefused,
        }
    }
}

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A subscription's URL, checked for its form (not yet for where its host resolves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub url: String,
    /// The host as the URL names it (a name, or an address without brackets).
    pub host: String,
    pub port: u16,
    /// The host is an address literal (nothing to resolve).
    pub literal: Option<IpAddr>,
}

impl WebhookUrl {
    /// Checks `raw`'s form: absolute, https (http only for a loopback host under
    /// [`UrlPolicy::LOCAL`]), a host, no credentials or fragment, at most [`MAX_URL_LEN`].
    /// An address literal is judged here too; a name is judged where it resolves.
    pub fn parse(raw: &str, policy: UrlPolicy) -> Result<WebhookUrl, UrlError> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::Invalid("the URL is longer than 2048 characters"));
        }
        let url = url::Url::parse(raw).map_err(|_| UrlError::Invalid("not an absolute URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Invalid("the URL may not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(UrlError::Invalid("the URL may not carry a fragment"));
        }
        let (host, literal) = match url.host() {
            Some(url::Host::Domain(d)) => (d.to_owned(), None),
            Some(url::Host::Ipv4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
            Some(url::Host::Ipv6(a)) => (a.to_string(), Some(IpAddr::V6(a))),
            None => return Err(UrlError::Invalid("the URL names no host")),
        };
        // An internal address is refused as such whatever the scheme: the stable answer to
        // an SSRF probe (`http://169.254.169.254/`) is `webhook.url_refused`.
        if let Some(addr) = literal {
            check_address(addr, policy)?;
        }
        let port = url
            .port_or_known_default()
            .ok_or(UrlError::Invalid("the URL must be https"))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_loopback && is_loopback_name(&host, literal) => {}
            _ => return Err(UrlError::Invalid("the URL must be https")),
        }
        Ok(WebhookUrl {
            url: url.to_string(),
            host,
            port,
            literal,
        })
    }
}

fn is_loopback_name(host: &str, literal: Option<IpAddr>) -> bool {
    match literal {
        Some(a) => canonical(a).is_loopback(),
        None => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Refuses an address webhooks may not reach (see [`address_allowed`]).
pub fn check_address(addr: IpAddr, policy: UrlPolicy) -> Result<(), UrlError> {
    if address_allowed(addr, policy) {
        Ok(())
    } else {
        Err(UrlError::Refused)
    }
}

/// Judges what a host resolved to: refused when it resolved to nothing or to any address
/// webhooks may not reach (one bad address is enough: a resolver may answer either).
pub fn check_resolved(addrs: &[IpAddr], policy: UrlPolicy) -> Result<(), UrlError> {
    if addrs.is_empty() {
        return Err(UrlError::Refused);
    }
    addrs.iter().try_for_each(|a| check_address(*a, policy))
}

/// Whether a delivery may connect to `addr`: never to an unspecified, private, link-local
/// (the instance metadata service among them), unique-local, shared (CGNAT), multicast,
/// broadcast, reserved or documentation address; to loopback only under
/// [`UrlPolicy::LOCAL`]. An IPv4 address embedded in IPv6 (mapped, compatible, NAT64) is
/// judged as itself.
pub fn address_allowed(addr: IpAddr, policy: UrlPolicy) -> bool {
    match canonical(addr) {
        IpAddr::V4(a) => v4_allowed(a, policy),
        IpAddr::V6(a) => v6_allowed(a, policy),
    }
}

/// An IPv6 address that carries an IPv4 one, as that IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => {
            let s = a.segments();
            let embedded =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            let mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
            // ::a.b.c.d (deprecated "compatible"), but not :: or ::1.
            let compatible = s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1);
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if mapped || compatible || nat64 {
                IpAddr::V4(embedded)
            } else {
                addr
            }
        }
        v4 => v4,
    }
}

fn v4_allowed(a: Ipv4Addr, policy: UrlPolicy) -> bool {
    let [o0, o1, o2, _] = a.octets();
    if a.is_loopback() {
        return policy.allow_loopback;
    }
    let refused = o0 == 0 // "this network", 0.0.0.0 among it
        || o0 == 10
        || (o0 == 100 && (64..128).contains(&o1)) // shared address space (CGNAT)
        || (o0 == 169 && o1 == 254) // link-local, the instance metadata service
        || (o0 == 172 && (16..32).contains(&o1))
        || (o0 == 192 && o1 == 0 && o2 == 0) // IETF protocol assignments
        || (o0 == 192 && o1 == 0 && o2 == 2) // documentation
        || (o0 == 192 && o1 == 168)
        || (o0 == 198 && (o1 == 18 || o1 == 19)) // benchmarking
        || (o0 == 198 && o1 == 51 && o2 == 100) // documentation
        || (o0 == 203 && o1 == 0 && o2 == 113) // documentation
        || o0 >= 224; // multicast, reserved, broadcast
    !refused
}

fn v6_allowed(a: Ipv6Addr, policy: UrlPolicy) -> bool {
    if a.is_loopback() {
        return policy.allow_loopback;
    }
    let s0 = a.segments()[0];
    let refused = a.is_unspecified()
        || (s0 & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s0 & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s0 & 0xff00) == 0xff00 // multicast
        || (s0 == 0x2001 && a.segments()[1] == 0x0db8) // documentation
        || s0 == 0x0100 && a.segments()[1..4] == [0, 0, 0]; // discard-only 100::/64
    !refused
}

/// The signing secret's prefix (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new signing secret.
pub const SECRET_BYTES: usize = 32;

/// A subscription's signing secret, `whsec_` + base64 of its key bytes.
#[derive(Debug, Clone)]
pub struct SigningSecret(SecretString);

impl SigningSecret {
    /// The secret of `key` (at least 24 random bytes, [`SECRET_BYTES`] when new).
    pub fn from_key(key: &[u8]) -> SigningSecret {
        SigningSecret(SecretString::new(format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(key)
        )))
    }

    /// A stored secret read back; `None` if it is not one this module wrote.
    pub fn parse(raw: &str) -> Option<SigningSecret> {
        let key = STANDARD.decode(raw.strip_prefix(SECRET_PREFIX)?).ok()?;
        (key.len() >= 24).then(|| SigningSecret(SecretString::new(raw)))
    }

    /// The text shown once, in the create answer, and stored in Secrets Manager.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn key(&self) -> Vec<u8> {
        self.0
            .expose()
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_default()
    }

    /// The `webhook-signature` header's value: `v1,` + base64 of HMAC-SHA256 over
    /// `{id}.{timestamp}.{body}` with the secret's key bytes (Standard Webhooks).
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        // HMAC accepts a key of any length, so `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key()) else {
            return String::new();
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// How failed deliveries are retried: after attempt `n` (from 1) the next waits
/// `first_delay * 2^(n-1)`, at most `max_delay`; none is made past `window` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub first_delay_seconds: u32,
    pub max_delay_seconds: u32,
    pub window_seconds: u32,
}

impl Default for RetrySchedule {
    /// A minute, doubling to four hours, for 24 hours (13 attempts in all).
    fn default() -> Self {
        RetrySchedule {
            first_delay_seconds: 60,
            max_delay_seconds: 4 * 3600,
            window_seconds: 24 * 3600,
        }
    }
}

impl RetrySchedule {
    /// When attempt `made + 1` is due after `made` failed attempts, the last at `now`;
    /// `None`: the window is over and the delivery has failed.
    pub fn next_attempt(
        &self,
        made: u32,
        first_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let doubled = u64::from(self.first_delay_seconds)
            .saturating_mul(1u64 << made.saturating_sub(1).min(32));
        let delay = doubled.min(u64::from(self.max_delay_seconds));
        let next = now + Duration::seconds(i64::try_from(delay).unwrap_or(i64::MAX / 2));
        (next <= first_at + Duration::seconds(i64::from(self.window_seconds))).then_some(next)
    }
}

/// What a delivery attempt came to, besides an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptError {
    /// The host resolved to an address webhooks may not reach (checked again at delivery).
    AddressRefused,
    /// The host did not resolve.
    Unresolvable,
    /// No connection, or TLS failed.
    ConnectionFailed,
    Timeout,
    /// A 3xx: redirects are never followed.
    RedirectNotFollowed,
    /// Any other status but 2xx.
    HttpStatus,
    /// The subscription's secret could not be read.
    SecretUnavailable,
}

/// One delivery attempt: its status code or error, never the response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    #[serde(with = "crate::time")]
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AttemptError>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Retries are scheduled.
    Retrying,
    Delivered,
    /// The retry window ended without a 2xx; the delivery went to the dead-letter queue.
    Failed,
}

/// One event's delivery to one subscription, as its log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id` header: the same on every attempt, so receivers deduplicate.
    pub id: String,
    pub webhook_id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The `webhook-id` of an event's delivery to a subscription: the same however often the
/// event is handled, so a redelivered event is deduplicated by receivers.
pub fn delivery_id(event_id: &str, webhook: WebhookId) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(format!("{event_id}/{webhook}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// A payload: `{type, timestamp, data}` (Standard Webhooks), `data` holding ids, codes,
/// counts and links only.
pub fn payload(event: EventType, at: DateTime<Utc>, data: &Value) -> String {
    json!({
        "type": event.as_str(),
        "timestamp": crate::time::format(at),
        "data": data,
    })
    .to_string()
}

/// A finished run as its `OperationRun Completed` event describes it (the fields read here).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompletedRun {
    pub run_id: RunId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub operation: String,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub failure_codes: Vec<String>,
}

impl CompletedRun {
    /// The events the run's end is, besides `drift.detected` (which needs its report).
    pub fn events(&self) -> Vec<EventType> {
        let mut out = Vec::new();
        match self.outcome.as_deref() {
            Some("failed") => {
                out.push(EventType::RunFailed);
                if self.operation == "provider_connection.verify" {
                    out.push(EventType::ConnectionVerificationFailed);
                }
            }
            Some("partially_succeeded") => out.push(EventType::RunPartiallySucceeded),
            _ => {}
        }
        out
    }

    /// Whether the run is a drift check (asked for, or a drift schedule's slot) that wrote a
    /// report (succeeded, or partly).
    pub fn may_have_drift(&self) -> bool {
        [
            crate::OperationType::DriftCheck,
            crate::OperationType::DriftScheduled,
        ]
        .iter()
        .any(|t| t.as_str() == self.operation)
            && matches!(
                self.outcome.as_deref(),
                Some("succeeded" | "partially_succeeded")
            )
    }

    /// The `data` of a run event.
    pub fn data(&self) -> Value {
        json!({
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
            "operation": self.operation,
            "outcome": self.outcome,
            "failure_codes": self.failure_codes,
            "links": { "run": links::view(self.run_id) },
        })
    }

    /// The `data` of `drift.detected`: the report's counts and link.
    pub fn drift_data(&self, added: u32, removed: u32, changed: u32) -> Value {
        json!({
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
            "report_id": self.run_id,
            "counts": { "added": added, "removed": removed, "changed": changed },
            "links": {
                "run": links::view(self.run_id),
                "report": links::drift_report(self.workspace_id, self.tenant_id, self.run_id),
            },
        })
    }
}

/// The `data` of `schedule.slot_missed`.
pub fn slot_missed_data(
    ws: WorkspaceId,
    tenant: Option<TenantId>,
    schedule: ScheduleId,
    slots: &[DateTime<Utc>],
) -> Value {
    let link = match tenant {
        Some(t) => links::tenant_schedule(ws, t, schedule),
        None => links::workspace_schedule(ws, schedule),
    };
    json!({
        "workspace_id": ws,
        "tenant_id": tenant,
        "schedule_id": schedule,
        "slots": slots.iter().map(|s| crate::time::format(*s)).collect::<Vec<_>>(),
        "links": { "schedule": link },
    })
}

/// The `data` of a test delivery.
pub fn test_data(ws: WorkspaceId, webhook: WebhookId) -> Value {
    json!({
        "workspace_id": ws,
        "webhook_id": webhook,
        "links": { "webhook": links::webhook(ws, webhook) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        WebhookUrl::parse(raw, UrlPolicy::PUBLIC) == Err(UrlError::Refused)
    }

    #[test]
    fn urls_are_https_hosts_without_credentials() {
        let ok =
            WebhookUrl::parse("https://hooks.example.com/x?y=1", UrlPolicy::PUBLIC).expect("valid");
        assert_eq!((ok.host.as_str(), ok.port), ("hooks.example.com", 443));
        assert!(refused("http://169.254.169.254/latest/meta-data/"));
        assert!(refused("http://10.0.0.1/"));
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "/relative",
            "http://localhost/",
        ] {
            assert!(
                matches!(
                    WebhookUrl::parse(bad, UrlPolicy::PUBLIC),
                    Err(UrlError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/", UrlPolicy::LOCAL).is_ok());
        assert!(WebhookUrl::parse("http://localhost:8080/", UrlPolicy::LOCAL).is_ok());
        assert!(matches!(
            WebhookUrl::parse("http://hooks.example.com/", UrlPolicy::LOCAL),
            Err(UrlError::Invalid(_))
        ));
    }

    #[test]
    fn private_link_local_and_other_internal_addresses_are_refused() {
        for raw in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://127.0.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert!(refused(raw), "{raw}");
        }
        for ok in ["https://93.184.216.34/", "https://[2606:4700::1111]/"] {
            assert!(WebhookUrl::parse(ok, UrlPolicy::PUBLIC).is_ok(), "{ok}");
        }
        assert!(address_allowed(
            "127.0.0.1".parse().expect("ip"),
            UrlPolicy::LOCAL
        ));
        assert!(!address_allowed(
            "10.0.0.1".parse().expect("ip"),
            UrlPolicy::LOCAL
        ));
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_follow_standard_webhooks() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retries_double_to_the_cap_and_stop_after_the_window() {
        let s = RetrySchedule::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut now = t0;
        let mut made = 1;
        let mut delays = Vec::new();
        while let Some(next) = s.next_attempt(made, t0, now) {
            delays.push((next - now).num_seconds());
            now = next;
            made += 1;
        }
        assert_eq!(&delays[..4], &[60, 120, 240, 480]);
        assert!(delays.iter().all(|d| *d <= 4 * 3600));
        assert!(now - t0 <= Duration::hours(24) && now - t0 > Duration::hours(20));
        assert_eq!(made, 13);
    }

    #[test]
    fn completed_runs_name_their_events() {
        let run = |op: &str, outcome: &str| CompletedRun {
            run_id: RunId::new(),
            workspace_id: WorkspaceId::new(),
            tenant_id: TenantId::new(),
            operation: op.into(),
            outcome: Some(outcome.into()),
            failure_codes: vec![],
        };
        assert_eq!(run("backup", "failed").events(), [EventType::RunFailed]);
        assert_eq!(
            run("provider_connection.verify", "failed").events(),
            [
                EventType::RunFailed,
                EventType::ConnectionVerificationFailed
            ]
        );
        assert_eq!(
            run("backup", "partially_succeeded").events(),
            [EventType::RunPartiallySucceeded]
        );
        assert!(run("backup", "succeeded").events().is_empty());
        assert!(run("drift.check", "succeeded").may_have_drift());
        assert!(!run("drift.check", "failed").may_have_drift());
        assert!(run("drift.scheduled", "partially_succeeded").may_have_drift());
    }
}
