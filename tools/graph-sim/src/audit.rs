//! Intune's audit log: `GET /deviceManagement/auditEvents`, the events of who changed what
//! ([`DOC`]), and
//! [`record`], which tests and the admin routes use to log a change as the portal would.
//!
//! Events are the tenant's `deviceManagement/auditEvents` collection, oldest first. The list
//! page documents no optional query parameters; the Intune portal and Microsoft's own
//! samples filter on `activityDateTime` only, so this accepts exactly that: comparisons
//! (`ge`, `gt`, `le`, `lt`) of `activityDateTime` with an unquoted UTC time, joined by
//! `and`. Any other `$filter` (a filter on `resources`, an `or`) is refused with Graph's 400,
//! never ignored: an ignored filter would return wrong data silently. Answers come in one
//! page (a client follows `@odata.nextLink` only when one is given).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::{Collection, SimTenant};
use crate::reply::{Reply, RequestIds, graph_error};

/// The collection's path (without version) in a tenant's collections.
pub const PATH: &str = "deviceManagement/auditEvents";

/// The list's reference page, which the rule below follows.
pub const DOC: &str =
    "https://learn.microsoft.com/graph/api/intune-auditing-auditevent-list?view=graph-rest-1.0";

/// The `$filter` forms accepted, per the module's rule.
const FILTER_RULE: &str =
    "only `activityDateTime` comparisons (ge, gt, le, lt) joined by `and` are supported";

/// The page whose rule a request to the audit log follows (`options::documented`'s answer
/// for it): the list only.
pub(crate) fn documented(method: &str, path: &str) -> Option<&'static str> {
    (method.eq_ignore_ascii_case("GET") && path == PATH).then_some(DOC)
}

/// One bound of the time window.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Ge(DateTime<Utc>),
    Gt(DateTime<Utc>),
    Le(DateTime<Utc>),
    Lt(DateTime<Utc>),
}

impl Bound {
    fn holds(self, at: DateTime<Utc>) -> bool {
        match self {
            Bound::Ge(t) => at >= t,
            Bound::Gt(t) => at > t,
            Bound::Le(t) => at <= t,
            Bound::Lt(t) => at < t,
        }
    }
}

fn parse_filter(raw: &str) -> Option<Vec<Bound>> {
    raw.split(" and ")
        .map(|clause| {
            let mut words = clause.split_whitespace();
            let (property, op, literal) = (words.next()?, words.next()?, words.next()?);
            if words.next().is_some() || !property.eq_ignore_ascii_case("activityDateTime") {
                return None;
            }
            let at = DateTime::parse_from_rfc3339(literal)
                .ok()?
                .with_timezone(&Utc);
            Some(match op {
                "ge" => Bound::Ge(at),
                "gt" => Bound::Gt(at),
                "le" => Bound::Le(at),
                "lt" => Bound::Lt(at),
                _ => return None,
            })
        })
        .collect()
}

fn event_time(event: &Value) -> Option<DateTime<Utc>> {
    event
        .get("activityDateTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The list: every event of the tenant within the `$filter`'s window.
pub(crate) fn list(tenant: &SimTenant, raw_query: &str, ids: &RequestIds) -> Reply {
    let mut bounds = Vec::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match k.trim_start_matches('$').to_ascii_lowercase().as_str() {
            "filter" => match parse_filter(&v) {
                Some(b) => bounds = b,
                None => {
                    return graph_error(
                        400,
                        "BadRequest",
                        &format!("Invalid filter clause: {FILTER_RULE} ({DOC})."),
                        ids,
                    );
                }
            },
            other => {
                return graph_error(
                    400,
                    "BadRequest",
                    &format!("Query option '{other}' is not allowed: {FILTER_RULE} ({DOC})."),
                    ids,
                );
            }
        }
    }
    let events: Vec<Value> = tenant
        .collections
        .get(PATH)
        .map(|c| c.objects.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|e| event_time(e).is_some_and(|at| bounds.iter().all(|b| b.holds(at))))
        .cloned()
        .collect();
    Reply::json(
        200,
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/auditEvents",
            "value": events,
        }),
    )
}

/// Who made a change, as Intune's audit log names them.
#[derive(Debug, Clone, Default)]
pub struct AuditActor {
    pub user_principal_name: Option<String>,
    pub application_display_name: Option<String>,
}

/// Logs a change of one object as Intune does: `activity` (e.g. `Patch
/// DeviceConfiguration`), its operation type, the actor and the resource, now.
pub fn record(
    tenant: &mut SimTenant,
    actor: &AuditActor,
    activity: &str,
    operation: &str,
    resource_id: &str,
    resource_type: &str,
) -> Value {
    let events = tenant
        .collections
        .entry(PATH.to_owned())
        .or_insert_with(|| Collection::with_objects(Vec::new()));
    let event = json!({
        "id": ulid::Ulid::new().to_string().to_lowercase(),
        "displayName": activity,
        "componentName": "DeviceConfiguration",
        "activity": activity,
        "activityDateTime": crate::sim::intune_now(),
        "activityType": activity,
        "activityOperationType": operation,
        "activityResult": "Success",
        "category": "DeviceConfiguration",
        "actor": {
            "type": "ItPro",
            "auditActorType": if actor.user_principal_name.is_some() { "ItPro" } else { "Application" },
            "userPermissions": ["*"],
            "applicationId": null,
            "applicationDisplayName": actor.application_display_name,
            "userPrincipalName": actor.user_principal_name,
            "servicePrincipalName": null,
            "ipAddress": null,
            "userId": null,
        },
        "resources": [{
            "displayName": null,
            "type": resource_type,
            "resourceId": resource_id,
        }],
    });
    events.objects.push(event.clone());
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_time_windows_filter() {
        assert_eq!(
            parse_filter("activityDateTime ge 2026-01-01T00:00:00Z and activityDateTime le 2026-01-02T00:00:00Z")
                .map(|b| b.len()),
            Some(2)
        );
        assert!(parse_filter("resources/any(r:r/resourceId eq 'x')").is_none());
        assert!(parse_filter("activityDateTime eq 2026-01-01T00:00:00Z").is_none());
        assert!(parse_filter("category eq 'X'").is_none());
    }
}
