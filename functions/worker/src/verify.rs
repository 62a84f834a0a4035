//! `provider_connection.verify`: can the app get a token, and does it hold the permissions
//! tenantops needs? The run's result is the report of every check.

use serde_json::json;
use tenantops_core::{Counters, Failure, Outcome};
use tenantops_graph::GraphError;
use tenantops_graph::registry::Budget;

use crate::job::{Job, Report, Stop};

/// (permission, budget, probe): the smallest read that needs each permission.
const PROBES: &[(&str, Budget, &str)] = &[
    (
        "DeviceManagementConfiguration.Read.All",
        Budget::Intune,
        "v1.0/deviceManagement/deviceConfigurations?$top=1&$select=id",
    ),
    (
        "DeviceManagementApps.Read.All",
        Budget::Intune,
        "v1.0/deviceAppManagement/mobileApps?$top=1&$select=id",
    ),
    (
        "DeviceManagementRBAC.Read.All",
        Budget::Intune,
        "v1.0/deviceManagement/roleDefinitions?$top=1&$select=id",
    ),
    (
        "Group.Read.All",
        Budget::Directory,
        "v1.0/groups?$top=1&$select=id",
    ),
    // Graph refuses `$top` here (400 "Query option 'Top' is not allowed"): the list supports
    // only `$filter` on id, displayName and isBuiltIn (eq, in) and `$expand`, per
    // https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions (optional
    // query parameters). One built-in role by name is the smallest answer it allows.
    (
        "RoleManagement.Read.Directory",
        Budget::Directory,
        "v1.0/roleManagement/directory/roleDefinitions?$filter=displayName eq 'Global Reader'",
    ),
    (
        "Policy.Read.All",
        Budget::ConditionalAccess,
        "v1.0/identity/conditionalAccess/policies?$top=1&$select=id",
    ),
];

pub async fn check(job: Job<'_>) -> Result<Report, Stop> {
    let deps = job.deps;
    let creds = job.credentials().await?;
    let total = PROBES.len() as u64 + 1;
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
    for (permission, budget, probe) in PROBES {
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
