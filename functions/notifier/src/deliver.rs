//! One delivery attempt: the URL judged again (its host resolved now and every address
//! checked, against DNS rebinding since registration), the request sent to exactly the
//! addresses checked, signed per Standard Webhooks, never following a redirect. Only the
//! answer's status is kept, never its body.

use std::net::{IpAddr, SocketAddr};

use chrono::Utc;
use tenantops_aws::webhooks::WebhookRecord;
use tenantops_core::webhook::{AttemptError, UrlError, WebhookUrl, check_resolved};

use crate::{DeliveryMessage, Deps};

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub error: Option<AttemptError>,
}

impl Outcome {
    fn error(error: AttemptError) -> Self {
        Outcome {
            status_code: None,
            error: Some(error),
        }
    }
}

/// The addresses to connect to: the literal, or what the host resolves to now, each one
/// allowed by the deployment's policy.
async fn addresses(url: &WebhookUrl, deps: &Deps) -> Result<Vec<SocketAddr>, AttemptError> {
    let addrs: Vec<SocketAddr> = match url.literal {
        Some(ip) => vec![SocketAddr::new(ip, url.port)],
        None => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|_| AttemptError::Unresolvable)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(AttemptError::Unresolvable);
    }
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    check_resolved(&ips, deps.urls).map_err(|_| AttemptError::AddressRefused)?;
    Ok(addrs)
}

pub async fn attempt(sub: &WebhookRecord, message: &DeliveryMessage, deps: &Deps) -> Outcome {
    let url = match WebhookUrl::parse(&sub.url, deps.urls) {
        Ok(url) => url,
        Err(UrlError::Refused | UrlError::Invalid(_)) => {
            return Outcome::error(AttemptError::AddressRefused);
        }
    };
    let addrs = match addresses(&url, deps).await {
        Ok(a) => a,
        Err(e) => return Outcome::error(e),
    };
    let secret = match deps.secrets.read_webhook_secret(&sub.secret_name).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, code = ?e.code, "webhook secret unreadable");
            return Outcome::error(AttemptError::SecretUnavailable);
        }
    };
    // A client per attempt: its resolver is pinned to the addresses just checked, so the
    // connection cannot go where a second lookup would lead.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(deps.timeout)
        .resolve_to_addrs(&url.host, &addrs)
        .build();
    let Ok(client) = client else {
        return Outcome::error(AttemptError::ConnectionFailed);
    };
    let timestamp = Utc::now().timestamp();
    let signature = secret.sign(&message.id, timestamp, &message.payload);
    let sent = client
        .post(&url.url)
        .header("content-type", "application/json")
        .header("user-agent", "tenantops-webhooks/1")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let code = response.status().as_u16();
            let error = match code {
                200..=299 => None,
                300..=399 => Some(AttemptError::RedirectNotFollowed),
                _ => Some(AttemptError::HttpStatus),
            };
            // The body is never read: dropping the response closes it.
            Outcome {
                status_code: Some(code),
                error,
            }
        }
        Err(e) if e.is_timeout() => Outcome::error(AttemptError::Timeout),
        Err(_) => Outcome::error(AttemptError::ConnectionFailed),
    }
}
