//! `tenantops webhooks create|list|show|delete|deliveries|test`. The signing secret is printed
//! once, when the subscription is created: the API never answers it again.

use serde_json::json;
use tenantops_client::{Delivery, Webhook};

use super::{Ctx, page};
use crate::cli::WebhooksCmd;
use crate::error::CliError;
use crate::output;

fn row(w: &Webhook) -> Vec<String> {
    vec![
        w.id.to_string(),
        w.url.clone(),
        w.events.join(","),
        w.created_at.clone(),
    ]
}

const HEADER: [&str; 4] = ["WEBHOOK", "URL", "EVENTS", "CREATED"];

fn delivery_row(d: &Delivery) -> Vec<String> {
    let attempts = d.attempts.as_array().map_or(0, Vec::len);
    vec![
        d.id.clone(),
        d.event_type.clone(),
        d.status.clone(),
        attempts.to_string(),
        d.created_at.clone(),
        output::opt(&d.next_attempt_at),
    ]
}

pub async fn webhooks(ctx: &Ctx, cmd: WebhooksCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let ws = ctx.workspace()?;
    match cmd {
        WebhooksCmd::Create { url, events } => {
            let created = client.create_webhook(ws, &url, &events).await?.webhook;
            let secret = created
                .secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default();
            // The secret is the one thing to keep from this answer: shown here on purpose.
            let shown = json!({ "webhook": &created, "secret": &secret });
            ctx.out.show(&shown, || {
                output::table(&HEADER, vec![row(&created)])?;
                output::line(&format!(
                    "signing secret (shown once; keep it to verify signatures): {secret}"
                ))
            })?;
        }
        WebhooksCmd::List => {
            let list = client.list_webhooks(ws).await?;
            ctx.out.show(&list, || {
                output::table(&HEADER, list.items.iter().map(row).collect())
            })?;
        }
        WebhooksCmd::Show { webhook } => {
            let w = client.view_webhook(ws, webhook).await?;
            ctx.out
                .show(&w, || output::table(&HEADER, vec![row(&w.webhook)]))?;
        }
        WebhooksCmd::Delete { webhook } => {
            client.delete_webhook(ws, webhook).await?;
            ctx.out.show(&json!({ "deleted": webhook }), || {
                output::line(&format!("webhook {webhook} deleted"))
            })?;
        }
        WebhooksCmd::Deliveries { webhook, page: p } => {
            let list = client.webhook_deliveries(ws, webhook, &page(&p)).await?;
            ctx.out.show(&list, || {
                output::table(
                    &["DELIVERY", "EVENT", "STATUS", "ATTEMPTS", "CREATED", "NEXT"],
                    list.items.iter().map(delivery_row).collect(),
                )?;
                output::more(list.next_cursor.as_deref());
                Ok(())
            })?;
        }
        WebhooksCmd::Test { webhook } => {
            let sent = client.test_webhook(ws, webhook).await?;
            ctx.out.show(&sent, || {
                output::line(&format!(
                    "test event queued for webhook {webhook}: see `tenantops webhooks deliveries {webhook}`"
                ))
            })?;
        }
    }
    Ok(0)
}
