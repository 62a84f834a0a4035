//! Creates the table and queues on the emulators.

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use tenantops_aws::schema;

/// What was provisioned.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table_name: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    /// The EventBridge bus for run lifecycle events.
    pub event_bus_name: String,
    /// The snapshot bucket (versioned, Object Lock enabled, as in the template).
    pub snapshot_bucket: String,
    /// The notifier's queue, fed by the bus's webhook rule (as the template's
    /// `WebhookEventsRule`), and its dead-letter queue.
    pub webhook_queue_url: String,
    pub webhook_dead_letter_queue_url: String,
}

/// The bus events the notifier receives (the template's `WebhookEventsRule` pattern).
pub fn webhook_event_pattern() -> serde_json::Value {
    serde_json::json!({
        "source": [tenantops_aws::events::SOURCE],
        "detail-type": [
            tenantops_aws::events::Lifecycle::Completed.detail_type(),
            tenantops_aws::events::SLOT_MISSED,
            tenantops_aws::events::WEBHOOK_TEST,
        ],
    })
}

/// Receives after which a work message moves to the dead-letter queue (as in the template).
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// The work queue's visibility timeout in seconds (as in the template).
pub const VISIBILITY_TIMEOUT_SECS: u32 = 900;

/// Creates a table and a work queue with its dead-letter queue, all named `{prefix}-...`.
pub async fn provision(sdk: &SdkConfig, prefix: &str) -> anyhow::Result<Resources> {
    let table_name = format!("{prefix}-table");
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    schema::create_table(&dynamo, &table_name)
        .await
        .with_context(|| format!("creating table {table_name} (is DynamoDB Local running?)"))?;

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq_url = create_queue(&sqs, &format!("{prefix}-work-dlq"), None).await?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading the dead-letter queue's ARN")?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the dead-letter queue has no ARN")?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    })
    .to_string();
    let queue_url = create_queue(&sqs, &format!("{prefix}-work"), Some(redrive)).await?;
    let event_bus_name = format!("{prefix}-events");
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(&event_bus_name)
        .send()
        .await
        .with_context(|| format!("creating event bus {event_bus_name} (is moto running?)"))?;
    let snapshot_bucket = format!("{prefix}-snapshots");
    create_snapshot_bucket(sdk, &snapshot_bucket).await?;
    let (webhook_queue_url, webhook_dead_letter_queue_url) =
        webhook_queues(sdk, &sqs, prefix, &event_bus_name).await?;
    Ok(Resources {
        table_name,
        queue_url,
        dead_letter_queue_url: dlq_url,
        event_bus_name,
        snapshot_bucket,
        webhook_queue_url,
        webhook_dead_letter_queue_url,
    })
}

/// The notifier's queue and dead-letter queue, and the bus rule that feeds the queue (moto
/// delivers a rule's events to an SQS target as EventBridge does).
async fn webhook_queues(
    sdk: &SdkConfig,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    bus: &str,
) -> anyhow::Result<(String, String)> {
    let dlq_url = create_queue(sqs, &format!("{prefix}-webhooks-dlq"), None).await?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    })
    .to_string();
    let url = create_queue(sqs, &format!("{prefix}-webhooks"), Some(redrive)).await?;
    let arn = queue_arn(sqs, &url).await?;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let rule = format!("{prefix}-webhook-events");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(webhook_event_pattern().to_string())
        .send()
        .await
        .context("creating the webhook events rule")?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("notifier-queue")
                .arn(arn)
                .build()
                .context("the webhook rule's target")?,
        )
        .send()
        .await
        .context("targeting the webhook queue")?;
    Ok((url, dlq_url))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading a queue's ARN")?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the queue has no ARN")
}

/// The snapshot bucket with Object Lock enabled (which also versions it). No default
/// retention here, unlike the template's `SnapshotRetentionDays`: tests set one when they
/// need locked objects.
async fn create_snapshot_bucket(sdk: &SdkConfig, bucket: &str) -> anyhow::Result<()> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    let mut req = s3
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true);
    let region = sdk.region().map(|r| r.as_ref().to_owned());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    req.send()
        .await
        .with_context(|| format!("creating bucket {bucket} (is moto running?)"))?;
    Ok(())
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive: Option<String>,
) -> anyhow::Result<String> {
    let mut req = sqs.create_queue().queue_name(name);
    if let Some(r) = redrive {
        req = req
            .attributes(QueueAttributeName::RedrivePolicy, r)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT_SECS.to_string(),
            );
    }
    req.send()
        .await
        .with_context(|| format!("creating queue {name} (is moto running?)"))?
        .queue_url
        .context("CreateQueue returned no URL")
}
