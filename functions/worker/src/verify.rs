//! `provider_connection.verify`: can the app get a token, and does it hold the permissions
//! tenantops needs? The run's result is the report of every check.

use serde_json::json;
use tenantops_core::{Counters, Failure, Outcome};
use tenantops_graph::GraphError;
use tenantops_graph::requests::PERMISSION_PROBES;

use crate::job::{Job, Report, Stop};

pub async fn check(job: Job<'_>) -> Result<Report, Stop> {
    let deps = job.deps;
    let creds = job.credentials().await?;
    let total = PERMISSION_PROBES.len() as u64 + 1;
    // Always a new token: the check proves the stored secret works now.
    if let Err(e) = deps.graph.fresh_token(&creds).await {
        let reason = e.reason();
        return Ok(Report {
            outcome: Outcome::Failed,
            counters: Counters {
                total,
                processed: 1,
                failed: 1,
                ..Counters::default()
            },
            failures: vec![Failure::of(reason)],
            result: Some(json!({ "token": { "ok": false, "code": reason }, "checks": [] })),
        });
    }
    let mut checks = Vec::new();
    let mut failures = Vec::new();
    for (permission, budget, probe) in PERMISSION_PROBES {
        match deps.graph.page(&creds, *budget, probe, false).await {
            Ok(_) => checks.push(json!({ "permission": permission, "ok": true })),
            Err(GraphError::Throttled { retry_after }) => return Err(Stop::HandBack(retry_after)),
            Err(e) => {
                let reason = e.reason();
                checks.push(json!({ "permission": permission, "ok": false, "code": reason }));
                failures.push(Failure {
                    object_ref: Some((*permission).to_owned()),
                    ..e.failure()
                });
            }
        }
    }
    let failed = failures.len() as u64;
    Ok(Report {
        // A connection missing any permission does not pass verification.
        outcome: if failed == 0 {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        counters: Counters {
            total,
            processed: total,
            succeeded: total - failed,
            failed,
            skipped: 0,
        },
        failures,
        result: Some(json!({ "token": { "ok": true }, "checks": checks })),
    })
}
