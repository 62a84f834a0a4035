//! Webhook subscriptions and their delivery logs. A subscription is written with the
//! caller's membership check and its audit entry in one transaction; its signing secret lives
//! in Secrets Manager ([`crate::secrets`]), the item holds only the secret's name. A delivery
//! is one item per event and subscription, rewritten by each attempt under the condition that
//! it has fewer attempts than the writer's (an older, redelivered message cannot set it back),
//! and expires through the table's TTL.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tenantops_core::webhook::{Delivery, EventType};
use tenantops_core::{WebhookId, WorkspaceId};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::expr::{Changes, Placeholders};
use crate::item::{from_items, keyed_item, number_attr, string_of};
use crate::keys;
use crate::table::{Query, Store};
use crate::transactions::{MemberGuard, Rejection, WriteError, committed_guarded, failed_at};

/// The count item's attribute: the workspace's subscriptions.
const COUNT: &str = "subscriptions";

/// How long a delivery stays in its log.
pub const DELIVERY_RETENTION_DAYS: i64 = 30;

/// A workspace's webhook subscription. Never the secret: only its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret_name: String,
    pub created_by: String,
    #[serde(with = "tenantops_core::time")]
    pub created_at: DateTime<Utc>,
}

/// A page of a delivery log, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// The sort key the next page starts after.
    pub next: Option<String>,
}

impl Store {
    /// Creates `hook` (its id must be new) if the caller still holds the guard's role and
    /// the workspace holds fewer than `limit` subscriptions; at the limit,
    /// [`Rejection::Precondition`] (the count is moved in the same transaction).
    pub async fn put_webhook(
        &self,
        hook: &WebhookRecord,
        limit: usize,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let key = keys::webhook(hook.workspace_id, hook.id);
        let mut p = Placeholders::default();
        let cond = format!(
            "{} OR {} < {}",
            p.absent(keys::PK),
            p.name(COUNT),
            p.value(number_attr(limit))
        );
        let update = Changes::default()
            .add(&[COUNT], number_attr(1))
            .render(&mut p);
        let items = vec![
            self.member_check(hook.workspace_id, guard)?,
            self.put_new(keyed_item("webhook", hook, &key)?, false)?,
            self.tx_update(
                &keys::webhook_count(hook.workspace_id),
                update,
                cond,
                p,
                false,
            )?,
            self.put_audit(audit)?,
        ];
        match self.transact(items).await? {
            Some(reasons)
                if failed_at(&reasons, 2).is_some() && failed_at(&reasons, 0).is_none() =>
            {
                Err(WriteError::Rejected(Rejection::Precondition(2)))
            }
            outcome => committed_guarded(outcome, None, Rejection::Conflict),
        }
    }

    /// Deletes the subscription if it exists and the caller still holds the guard's role;
    /// a subscription gone meanwhile is [`Rejection::Conflict`].
    pub async fn delete_webhook(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let mut p = Placeholders::default();
        let cond = p.exists(keys::PK);
        let mut counted = Placeholders::default();
        let counted_cond = counted.exists(keys::PK);
        let update = Changes::default()
            .add(&[COUNT], number_attr(-1))
            .render(&mut counted);
        let items = vec![
            self.member_check(ws, guard)?,
            self.tx_delete(&keys::webhook(ws, id), cond, p, false)?,
            self.tx_update(
                &keys::webhook_count(ws),
                update,
                counted_cond,
                counted,
                false,
            )?,
            self.put_audit(audit)?,
        ];
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }

    /// An audit entry alone, under the caller's membership (a test delivery's).
    pub async fn put_guarded_audit(
        &self,
        ws: WorkspaceId,
        guard: MemberGuard<'_>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError> {
        let items = vec![self.member_check(ws, guard)?, self.put_audit(audit)?];
        committed_guarded(self.transact(items).await?, None, Rejection::Conflict)
    }

    pub async fn webhook(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        self.get_as("webhook", &keys::webhook(ws, id)).await
    }

    /// Every subscription of the workspace (a consistent query of its partition's prefix).
    pub async fn webhooks(&self, ws: WorkspaceId) -> Result<Vec<WebhookRecord>, StoreError> {
        let items = self
            .partition(keys::workspace(ws).pk, Some(keys::WEBHOOK_PREFIX), None)
            .await?;
        from_items("webhook", items)
    }

    /// Writes `delivery` as of its attempts, unless the log already holds as many or more
    /// (`false`: nothing written).
    pub async fn record_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let sort = keys::webhook_delivery_sort(delivery.created_at, &delivery.id);
        let key = keys::webhook_delivery(delivery.workspace_id, delivery.webhook_id, &sort);
        let mut item = keyed_item("webhook delivery", delivery, &key)?;
        let made = delivery.attempts.len();
        item.insert("attempt_count".into(), number_attr(made));
        let expires = delivery.created_at + Duration::days(DELIVERY_RETENTION_DAYS);
        item.insert(keys::TTL.into(), number_attr(expires.timestamp()));
        let mut p = Placeholders::default();
        let cond = format!(
            "{} OR {} < {}",
            p.absent(keys::PK),
            p.name("attempt_count"),
            p.value(number_attr(made))
        );
        self.put_if(item, cond, p).await
    }

    /// A page of the subscription's delivery log, newest first, after the sort key `after`.
    pub async fn deliveries(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DeliveryPage, StoreError> {
        let pk = keys::webhook_deliveries_of(ws, id);
        let start = after.map(|sk| keys::webhook_delivery(ws, id, sk).to_item());
        let q = Query::partition(pk, Vec::new(), Placeholders::default()).newest_first();
        let (items, last) = self.query_filling(q, limit, start).await?;
        let next = last.and_then(|k| string_of(&k, keys::SK).cloned());
        Ok(DeliveryPage {
            items: from_items("webhook delivery", items)?,
            next,
        })
    }
}

/// The delivery log's sort key of `delivery` (a cursor's position).
pub fn delivery_sort(delivery: &Delivery) -> String {
    keys::webhook_delivery_sort(delivery.created_at, &delivery.id)
}
