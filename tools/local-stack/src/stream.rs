//! Reading the table's stream as Lambda's and Pipes' pollers do: every shard, in order, from
//! where the last read stopped. What the local pipe and the local relay consume: the runs
//! (and, for the relay, the batches) the stream shows inserted (the filters they have in the
//! template).

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodbstreams::types::{OperationType as StreamOp, ShardIteratorType};
use tenantops_core::Run;
use tenantops_relay::Insert;

#[derive(Debug)]
pub struct RunInserts {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    start: ShardIteratorType,
    /// Where each shard's reading stands (`None`: the shard is closed and read to its end).
    iterators: HashMap<String, Option<String>>,
}

impl RunInserts {
    /// A reader of `table`'s stream. `from_start` reads what is already in the stream (tests);
    /// otherwise only what comes after (like a mapping created now).
    pub async fn new(
        sdk: &aws_config::SdkConfig,
        table: &str,
        from_start: bool,
    ) -> anyhow::Result<Self> {
        let described = aws_sdk_dynamodb::Client::new(sdk)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .context("describing the table")?;
        let stream_arn = described
            .table
            .and_then(|t| t.latest_stream_arn)
            .context("the table has no stream")?;
        // Locally, DynamoDB Local serves the table's stream as well as the table.
        let mut streams = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            streams = streams.endpoint_url(url);
        }
        Ok(Self {
            streams: aws_sdk_dynamodbstreams::Client::from_conf(streams.build()),
            stream_arn,
            start: if from_start {
                ShardIteratorType::TrimHorizon
            } else {
                ShardIteratorType::Latest
            },
            iterators: HashMap::new(),
        })
    }

    /// Reads every shard once: the runs inserted since the last read, in stream order.
    pub async fn next(&mut self) -> anyhow::Result<Vec<Run>> {
        Ok(self
            .next_inserts()
            .await?
            .into_iter()
            .filter_map(|insert| match insert {
                Insert::Run(run) => Some(*run),
                Insert::Batch(_) => None,
            })
            .collect())
    }

    /// Reads every shard once: the runs and batches inserted since the last read, in stream
    /// order.
    pub async fn next_inserts(&mut self) -> anyhow::Result<Vec<Insert>> {
        let stream = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .context("describing the stream")?;
        let shards: Vec<String> = stream
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.shard_id)
            .collect();
        let run_sort = tenantops_aws::keys::run(tenantops_core::RunId::new()).sk;
        let mut runs = Vec::new();
        for shard in shards {
            if !self.iterators.contains_key(&shard) {
                let it = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard)
                    .shard_iterator_type(self.start.clone())
                    .send()
                    .await
                    .context("getting a shard iterator")?
                    .shard_iterator;
                self.iterators.insert(shard.clone(), it);
            }
            let Some(Some(iterator)) = self.iterators.get(&shard).cloned() else {
                continue;
            };
            let out = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .context("reading stream records")?;
            self.iterators.insert(shard, out.next_shard_iterator);
            for record in out.records.unwrap_or_default() {
                if record.event_name != Some(StreamOp::Insert) {
                    continue;
                }
                let Some(data) = record.dynamodb else {
                    continue;
                };
                let sort = data
                    .keys
                    .as_ref()
                    .and_then(|k| k.get(tenantops_aws::keys::SK))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let Some(image) = data.new_image else {
                    continue;
                };
                if sort == run_sort {
                    runs.push(Insert::Run(Box::new(
                        serde_dynamo::from_item(image).context("a run image that does not map")?,
                    )));
                } else if sort.starts_with(tenantops_aws::keys::BATCH_PREFIX) {
                    runs.push(Insert::Batch(Box::new(
                        serde_dynamo::from_item(image)
                            .context("a batch image that does not map")?,
                    )));
                }
            }
        }
        Ok(runs)
    }
}
