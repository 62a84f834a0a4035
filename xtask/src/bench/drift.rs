//! The section of `docs/benchmarks.md` for the drift check of a 3,000-object tenant.

use serde_json::Value;

use super::num;

pub fn section(report: &Value) -> String {
    let v = &report["drift_3000"];
    let d = |p: &str| num(v, p);
    let mut rows = String::new();
    if let Some(Value::Object(types)) = v.get("by_type") {
        for (name, t) in types {
            rows.push_str(&format!(
                "| {name} | {} | {} |\n",
                num(t, "/list_pages"),
                num(t, "/object_reads")
            ));
        }
    }
    format!(
        r#"
## Drift check of a {objects}-object tenant with {changed} changed objects

| objects compared | changed / added / removed reported | as expected | outcome | seconds | objects/s | Graph requests | per object | audit-log requests | share of the Intune budget | 429s met | inside Retry-After | URLs read twice | S3 reads | S3 writes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| {compared} | {rchanged} / {radded} / {rremoved} | {expected} | {outcome} | {secs} | {ops} | {reqs} | {per} | {audit} | {share} | {throttled} | {inside} | {twice} | {reads} | {writes} |

`cargo xtask bench drift_3000` measures it alone. The tenant's objects are spread over the
backup's Intune types as for the backups above; one backup of every backup type is the
baseline (not measured: {backup} s), then graph-sim changes one field of {changed} objects
spread over the types, and one `drift.check` of every backup type runs to its end through
the worker against graph-sim's default throttling. Measured for the check alone: it reads
every object as a backup does (list pages, then each object in full), hashes it, and compares
it with the baseline's manifest entries in DynamoDB; only a changed object costs an S3 read
(its baseline snapshot), an unchanged one none, and no S3 write is expected (a changed value
too long for the report's excerpt would add one). Intune's audit log is read once for the
actors.

Graph requests by type (list pages; reads below objects):

| type | list pages | object reads |
|---|---|---|
{rows}"#,
        objects = d("/objects_generated"),
        changed = d("/objects_changed"),
        compared = d("/objects_compared"),
        rchanged = d("/report/changed"),
        radded = d("/report/added"),
        rremoved = d("/report/removed"),
        expected = d("/counts_as_expected"),
        outcome = v
            .pointer("/outcome")
            .and_then(Value::as_str)
            .unwrap_or("n/a"),
        secs = d("/seconds"),
        ops = d("/objects_per_second"),
        reqs = d("/graph_requests"),
        per = d("/graph_requests_per_object"),
        audit = d("/audit_log_requests"),
        share = d("/intune_budget_use"),
        throttled = d("/throttled_429"),
        inside = d("/requests_inside_retry_after"),
        twice = d("/urls_read_twice"),
        reads = d("/s3_reads"),
        writes = d("/s3_writes"),
        backup = d("/baseline_backup_seconds"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Every figure of the section is one the measurement reports (none renders `n/a`).
    #[test]
    fn the_section_reads_every_figure_the_measurement_reports() {
        let report = json!({"drift_3000": {
            "objects_generated": 3000, "objects_changed": 50, "objects_compared": 3000,
            "report": {"changed": 50, "added": 0, "removed": 0, "unchanged": 2950},
            "counts_as_expected": true, "outcome": "succeeded", "seconds": 64.2,
            "objects_per_second": 46.7, "graph_requests": 2896,
            "graph_requests_per_object": 0.97, "audit_log_requests": 1,
            "intune_budget_use": 0.9, "throttled_429": 0, "requests_inside_retry_after": 0,
            "urls_read_twice": 0, "s3_reads": 50, "s3_writes": 0,
            "baseline_backup_seconds": 74.1,
            "by_type": {"intents": {"list_pages": 2, "object_reads": 212}},
        }});
        let md = super::section(&report);
        assert!(!md.contains("n/a"), "{md}");
        assert!(md.contains("| intents | 2 | 212 |"), "{md}");
        assert!(
            md.contains("| 3000 | 50 / 0 / 0 | true | succeeded |"),
            "{md}"
        );
    }
}
