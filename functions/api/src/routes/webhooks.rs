//! A workspace's webhook subscriptions (`webhook.manage`: owners and managers): register one
//! (its signing secret answered once, stored in Secrets Manager only), list, view, delete,
//! read its delivery log, send a test delivery. A URL is refused unless it is https and its
//! host resolves only to public addresses (the notifier checks again when it delivers).

use std::net::IpAddr;

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tenantops_aws::MemberGuard;
use tenantops_aws::webhooks::WebhookRecord;
use tenantops_core::webhook::{
    Delivery, EventType, SECRET_BYTES, SigningSecret, UrlError, UrlPolicy, WebhookUrl,
    check_resolved,
};
use tenantops_core::{Capability, UserId, WebhookId, WorkspaceId, links};

use super::common::{self, Audit};
use crate::Deps;
use crate::cursor;
use crate::error::{ApiError, Resource};
use crate::request::ApiRequest;
use crate::response::Reply;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
/// Subscriptions a workspace may hold (each event fans out to each of them).
pub const MAX_WEBHOOKS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    url: String,
    events: Vec<EventType>,
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(Resource::Webhook))
}

fn url_error(e: UrlError) -> ApiError {
    ApiError::Webhook(e.code(), e.to_string())
}

/// The caller with `webhook.manage` in `ws` (404 for non-members, then 403).
async fn manager(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
) -> Result<(UserId, WorkspaceId), ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    common::authorize(deps, ws, &caller, Capability::WebhookManage).await?;
    Ok((caller, ws))
}

/// The subscription `id` of `ws`; another workspace's is as missing as none.
async fn found(deps: &Deps, ws: WorkspaceId, id: &str) -> Result<WebhookRecord, ApiError> {
    let id = webhook_id(id)?;
    deps.store
        .webhook(ws, id)
        .await?
        .ok_or(ApiError::NotFound(Resource::Webhook))
}

fn webhook_json(w: &WebhookRecord) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "created_by": w.created_by,
        "created_at": tenantops_core::time::format(w.created_at),
        "links": {
            "self": links::webhook(w.workspace_id, w.id),
            "deliveries": links::webhook_deliveries(w.workspace_id, w.id),
        },
    })
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event_type": d.event_type,
        "status": d.status,
        "created_at": tenantops_core::time::format(d.created_at),
        "next_attempt_at": d.next_attempt_at.map(tenantops_core::time::format),
        "attempts": d.attempts,
    })
}

/// What the audit log keeps of a subscription: its host and events, not its URL (whose path
/// or query may carry the receiver's own token).
fn audit_view(w: &WebhookRecord, host: &str) -> Value {
    json!({ "host": host, "events": w.events })
}

/// Refuses a URL whose host resolves to nothing or to an address webhooks may not reach.
async fn check_host(url: &WebhookUrl, policy: UrlPolicy) -> Result<(), ApiError> {
    if url.literal.is_some() {
        // Judged by `WebhookUrl::parse` already.
        return Ok(());
    }
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map(|found| found.map(|a| a.ip()).collect())
        .unwrap_or_default();
    check_resolved(&addrs, policy).map_err(url_error)
}

/// `POST /v1/workspaces/{ws}/webhooks`: 201 with the subscription and its signing secret,
/// which no other answer ever shows again.
pub async fn create(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let caller = common::caller(req)?;
    let ws = common::workspace_id(ws)?;
    let body: CreateWebhook = common::body(req)?;
    let mut events = body.events;
    events.sort();
    events.dedup();
    if events.is_empty() || events.contains(&EventType::Test) {
        return Err(ApiError::InvalidBody(
            "`events` must name one or more of run.failed, run.partially_succeeded, \
             drift.detected, schedule.slot_missed, connection.verification_failed"
                .into(),
        ));
    }
    let url = WebhookUrl::parse(&body.url, deps.webhook_urls).map_err(url_error)?;
    common::authorize(deps, ws, &caller, Capability::WebhookManage).await?;
    check_host(&url, deps.webhook_urls).await?;

    let id = WebhookId::new();
    let secret = SigningSecret::from_key(&rand::random::<[u8; SECRET_BYTES]>());
    let secret_name = deps.secrets.webhook_secret_name(ws, id);
    deps.secrets
        .create_webhook_secret(&secret_name, &secret)
        .await?;
    let record = WebhookRecord {
        id,
        workspace_id: ws,
        url: url.url.clone(),
        events,
        secret_name,
        created_by: caller.to_string(),
        created_at: Utc::now(),
    };
    let audit = Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action: "webhook.create",
        target: id.to_string(),
    }
    .entry(None, Some(audit_view(&record, &url.host)));
    let roles = Capability::WebhookManage.roles();
    let written = deps
        .store
        .put_webhook(
            &record,
            MAX_WEBHOOKS,
            MemberGuard {
                user: &caller,
                roles: &roles,
            },
            &audit,
        )
        .await;
    if let Err(e) = written {
        // The subscription does not exist: neither may its secret.
        if let Err(d) = deps
            .secrets
            .delete_webhook_secret(&record.secret_name)
            .await
        {
            tracing::warn!(error = %d, code = ?d.code, "an unused webhook secret stays");
        }
        return Err(match e {
            tenantops_aws::WriteError::Rejected(tenantops_aws::Rejection::Precondition(_)) => {
                ApiError::InvalidBody(format!(
                    "a workspace holds at most {MAX_WEBHOOKS} webhook subscriptions"
                ))
            }
            e => ApiError::write(e, Capability::WebhookManage),
        });
    }
    let mut answer = webhook_json(&record);
    answer["secret"] = Value::String(secret.expose().to_owned());
    Ok(Reply::json(201, &json!({ "webhook": answer })))
}

/// `GET /v1/workspaces/{ws}/webhooks`.
pub async fn list(req: &ApiRequest, deps: &Deps, ws: &str) -> Result<Reply, ApiError> {
    let (_, ws) = manager(req, deps, ws).await?;
    let items: Vec<Value> = deps
        .store
        .webhooks(ws)
        .await?
        .iter()
        .map(webhook_json)
        .collect();
    Ok(Reply::json(200, &json!({ "items": items })))
}

/// `GET /v1/workspaces/{ws}/webhooks/{id}`.
pub async fn view(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (_, ws) = manager(req, deps, ws).await?;
    let hook = found(deps, ws, id).await?;
    Ok(Reply::json(200, &json!({ "webhook": webhook_json(&hook) })))
}

/// `DELETE /v1/workspaces/{ws}/webhooks/{id}`: 204; the secret is deleted after the
/// subscription (its log expires on its own).
pub async fn delete(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (caller, ws) = manager(req, deps, ws).await?;
    let hook = found(deps, ws, id).await?;
    let host = WebhookUrl::parse(&hook.url, UrlPolicy::LOCAL)
        .map(|u| u.host)
        .unwrap_or_default();
    let audit = Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action: "webhook.delete",
        target: hook.id.to_string(),
    }
    .entry(Some(audit_view(&hook, &host)), None);
    let roles = Capability::WebhookManage.roles();
    deps.store
        .delete_webhook(
            ws,
            hook.id,
            MemberGuard {
                user: &caller,
                roles: &roles,
            },
            &audit,
        )
        .await
        .map_err(|e| match e {
            tenantops_aws::WriteError::Rejected(tenantops_aws::Rejection::Conflict) => {
                ApiError::NotFound(Resource::Webhook)
            }
            e => ApiError::write(e, Capability::WebhookManage),
        })?;
    if let Err(e) = deps.secrets.delete_webhook_secret(&hook.secret_name).await {
        // The notifier finds no subscription for it any more; an operator may delete it.
        tracing::warn!(error = %e, code = ?e.code, "a deleted webhook's secret stays");
    }
    Ok(Reply::no_content())
}

/// `GET /v1/workspaces/{ws}/webhooks/{id}/deliveries?limit=&cursor=`: newest first.
pub async fn deliveries(
    req: &ApiRequest,
    deps: &Deps,
    ws: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let (_, ws) = manager(req, deps, ws).await?;
    let hook = found(deps, ws, id).await?;
    let q = common::query(req, &["limit", "cursor"])?;
    let limit = common::limit(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let query_key = format!("deliveries|{ws}|{}", hook.id);
    let after = cursor::after::<String>(&q, &query_key)?;
    let page = deps
        .store
        .deliveries(ws, hook.id, limit, after.as_deref())
        .await?;
    let next = page.next.map(|sort| cursor::encode(&query_key, sort));
    let items: Vec<Value> = page.items.iter().map(delivery_json).collect();
    Ok(Reply::json(
        200,
        &json!({ "items": items, "next_cursor": next }),
    ))
}

/// `POST /v1/workspaces/{ws}/webhooks/{id}/test`: 202; the notifier delivers a
/// `webhook.test` event to this subscription alone, logged like any delivery.
pub async fn test(req: &ApiRequest, deps: &Deps, ws: &str, id: &str) -> Result<Reply, ApiError> {
    let (caller, ws) = manager(req, deps, ws).await?;
    let hook = found(deps, ws, id).await?;
    let audit = Audit {
        workspace: ws,
        tenant: None,
        actor: &caller,
        action: "webhook.test",
        target: hook.id.to_string(),
    }
    .entry(None, None);
    let roles = Capability::WebhookManage.roles();
    deps.store
        .put_guarded_audit(
            ws,
            MemberGuard {
                user: &caller,
                roles: &roles,
            },
            &audit,
        )
        .await
        .map_err(|e| ApiError::write(e, Capability::WebhookManage))?;
    deps.events
        .publish_detail(
            tenantops_aws::events::WEBHOOK_TEST,
            &json!({ "workspace_id": ws, "webhook_id": hook.id, "request_id": audit.id.to_string() }),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Reply::json(
        202,
        &json!({
            "webhook": webhook_json(&hook),
            "links": { "deliveries": links::webhook_deliveries(ws, hook.id) },
        }),
    ))
}
