//! `tenantops webhooks ...`: the workspace's webhook subscriptions.

use clap::Subcommand;
use tenantops_core::WebhookId;

use super::PageArgs;

#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// Subscribes an https URL to events; prints its signing secret, once
    Create {
        #[arg(long)]
        url: String,
        /// run.failed, run.partially_succeeded, drift.detected, schedule.slot_missed,
        /// connection.verification_failed; comma separated or repeated
        #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
        events: Vec<String>,
    },
    /// The workspace's subscriptions
    List,
    /// One subscription
    Show { webhook: WebhookId },
    /// Removes a subscription (its delivery log expires on its own)
    Delete { webhook: WebhookId },
    /// A subscription's deliveries, newest first, with their attempts
    Deliveries {
        webhook: WebhookId,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Sends a test event to a subscription (then see `deliveries`)
    Test { webhook: WebhookId },
}
