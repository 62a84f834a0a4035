//! Reading graph-sim's request log after a Graph-bound run: what the run cost against
//! Microsoft's documented Intune budget, per registry type, and whether anything was read
//! twice (a successful GET of the same URL served more than once).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use tenantops_graph::registry::{ObjectType, REGISTRY};
use tenantops_graph_sim::RecordedRequest;

/// Intune's documented budget: 1,000 requests per 20 s per app per tenant.
pub const INTUNE_BUDGET_PER_S: f64 = 1000.0 / 20.0;

/// The registry type a Graph path (`/graph/{version}/{path}`) belongs to, and whether the
/// request was the type's own list (not a read below one of its objects).
fn type_of(path: &str) -> Option<(&'static ObjectType, bool)> {
    let rest = path.strip_prefix("/graph/")?;
    let (_version, rest) = rest.split_once('/')?;
    REGISTRY
        .iter()
        .filter(|t| rest == t.path || rest.starts_with(&format!("{}/", t.path)))
        .max_by_key(|t| t.path.len())
        .map(|t| (t, rest == t.path))
}

fn is_intune(r: &RecordedRequest) -> bool {
    r.path.contains("/deviceManagement/") || r.path.contains("/deviceAppManagement/")
}

/// Successful GETs of one URL (path and query) for one tenant served more than once: the
/// same page, object or sub-collection read again.
pub fn read_twice(requests: &[RecordedRequest]) -> Vec<(String, usize)> {
    let mut served: HashMap<(Option<&str>, &str, &str), usize> = HashMap::new();
    for r in requests {
        if r.method == "GET" && r.path.starts_with("/graph/") && (200..300).contains(&r.status) {
            *served
                .entry((r.tenant_id.as_deref(), r.path.as_str(), r.query.as_str()))
                .or_default() += 1;
        }
    }
    let mut twice: Vec<(String, usize)> = served
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((tenant, path, query), n)| (format!("{}: {path}?{query}", tenant.unwrap_or("-")), n))
        .collect();
    twice.sort();
    twice
}

/// The Graph side of a run that took `seconds` and captured `objects` objects.
pub fn cost(requests: &[RecordedRequest], seconds: f64, objects: u64) -> Value {
    let graph: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.path.starts_with("/graph/"))
        .collect();
    let intune = graph.iter().filter(|r| is_intune(r)).count();
    let mut by_type: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &graph {
        if let Some((t, list)) = type_of(&r.path) {
            let e = by_type.entry(t.name).or_default();
            if list {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let twice = read_twice(requests);
    let per_object = if objects == 0 {
        0.0
    } else {
        graph.len() as f64 / objects as f64
    };
    let by_type: serde_json::Map<String, Value> = by_type
        .iter()
        .map(|(name, (lists, reads))| {
            (
                (*name).to_owned(),
                json!({ "list_pages": lists, "object_reads": reads }),
            )
        })
        .collect();
    json!({
        "requests": graph.len(),
        "requests_per_object": per_object,
        "requests_per_second": graph.len() as f64 / seconds,
        "intune_requests_per_second": intune as f64 / seconds,
        "intune_budget_use": (intune as f64 / seconds) / INTUNE_BUDGET_PER_S,
        "throttled_429": graph.iter().filter(|r| r.status == 429).count(),
        "requests_inside_retry_after": graph.iter().filter(|r| r.inside_retry_after).count(),
        "urls_read_twice": twice.len(),
        "read_twice_examples": twice
            .iter()
            .take(5)
            .map(|(u, n)| json!({ "url": u, "served": n }))
            .collect::<Vec<_>>(),
        "by_type": by_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_longest_registry_type() {
        let (t, list) = type_of("/graph/beta/deviceManagement/configurationPolicies").unwrap();
        assert_eq!((t.name, list), ("configurationPolicies", true));
        let (t, list) =
            type_of("/graph/v1.0/deviceManagement/roleDefinitions/x/roleAssignments").unwrap();
        assert_eq!((t.name, list), ("intuneRoleDefinitions", false));
        assert!(type_of("/login/t/oauth2/v2.0/token").is_none());
    }
}
