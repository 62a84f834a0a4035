//! Plays the template's EventBridge Pipe (`RunQueuedPipe`): every new run item on the table's
//! stream becomes an `OperationRun Queued` event on the bus. The API pays nothing for it (a
//! start stays one transaction and one send), and the event exists exactly when the run was
//! committed.

use tenantops_aws::events::{Lifecycle, LifecycleEvents};

use crate::stream::RunInserts;

#[derive(Debug)]
pub struct RunPipe {
    inserts: RunInserts,
    events: LifecycleEvents,
}

impl RunPipe {
    /// A pipe for `table`'s stream. `from_start` reads what is already in the stream (tests);
    /// otherwise only what comes after (like a pipe created now).
    pub async fn new(
        sdk: &aws_config::SdkConfig,
        table: &str,
        events: LifecycleEvents,
        from_start: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inserts: RunInserts::new(sdk, table, from_start).await?,
            events,
        })
    }

    /// Reads every shard once; returns how many Queued events it published.
    pub async fn poll_once(&mut self) -> anyhow::Result<usize> {
        let runs = self.inserts.next().await?;
        for run in &runs {
            self.events.publish(Lifecycle::Queued, run).await?;
        }
        Ok(runs.len())
    }

    /// Polls forever, as the pipe does.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.poll_once().await {
                tracing::error!(error = %e, "run pipe poll failed");
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
