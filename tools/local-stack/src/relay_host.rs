//! Plays the template's `RelayEventSourceMapping`: the relay Lambda fed with the runs the
//! table's stream shows inserted. What the relay did not finish is kept and handed to it
//! again on the next poll, as the mapping retries a batch from its first failed record before
//! it reads on.

use std::time::Duration;

use tenantops_relay::Insert;

use crate::stream::RunInserts;

/// How often the standing host polls: Lambda polls a stream's shards about four times a
/// second.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// The template's `RelayEventSourceMapping` `BatchSize`: records to one invocation.
pub const BATCH_SIZE: usize = 100;

#[derive(Debug)]
pub struct RelayHost {
    inserts: RunInserts,
    /// Inserts read but not yet relayed (their batch failed).
    pending: Vec<Insert>,
}

impl RelayHost {
    /// A host for `table`'s stream; `from_start` as in [`RunInserts::new`].
    pub async fn new(
        sdk: &aws_config::SdkConfig,
        table: &str,
        from_start: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inserts: RunInserts::new(sdk, table, from_start).await?,
            pending: Vec::new(),
        })
    }

    /// Reads the stream once and relays what it found (with what failed before), at most
    /// [`BATCH_SIZE`] records to an invocation as the mapping delivers them; returns how many
    /// inserts it relayed.
    pub async fn poll_once(&mut self, deps: &tenantops_relay::Deps) -> anyhow::Result<usize> {
        let fresh = self.inserts.next_inserts().await?;
        self.pending.extend(fresh);
        let mut relayed = 0;
        while !self.pending.is_empty() {
            let take = self.pending.len().min(BATCH_SIZE);
            match tenantops_relay::relay_inserts(&self.pending[..take], deps).await {
                Ok(()) => {
                    self.pending.drain(..take);
                    relayed += take;
                }
                Err(e) => {
                    // The relayed prefix is done; the rest is handed over again.
                    self.pending.drain(..e.retry_from());
                    return Err(e.into());
                }
            }
        }
        Ok(relayed)
    }

    /// Polls until two reads in a row find nothing new: everything committed before the call
    /// is relayed. (A stream read may come back empty before a shard's end, as DynamoDB
    /// Streams documents; a second empty read makes a false end far less likely.)
    pub async fn settle(&mut self, deps: &tenantops_relay::Deps) -> anyhow::Result<usize> {
        let mut relayed = 0;
        let mut empty = 0;
        while empty < 2 {
            match self.poll_once(deps).await? {
                0 => empty += 1,
                n => {
                    relayed += n;
                    empty = 0;
                }
            }
        }
        Ok(relayed)
    }

    /// Polls forever, as the mapping does.
    pub async fn run(mut self, deps: tenantops_relay::Deps) {
        loop {
            if let Err(e) = self.poll_once(&deps).await {
                tracing::error!(error = %e, "relay poll failed");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}
