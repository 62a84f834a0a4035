//! `tenantops drift list|view|accept|revert` and `tenantops backup diff`: a tenant's drift
//! reports and the diff of two backup sets, both as drift items. Accepting starts a backup
//! (followed as any run); reverting previews a restore of the report's baseline, whose
//! confirmation token is kept for `tenantops restores execute`.

use tenantops_client::{BackupSetDiff, DriftCounts, DriftItem, ObjectRef, PageQuery};
use tenantops_core::{RunId, TenantId, WorkspaceId};

use super::restores::previewed;
use super::runs::{json_arg, started};
use super::{Ctx, page};
use crate::cli::DriftCmd;
use crate::error::CliError;
use crate::output;

/// Items read a page at a time when every one is needed (the API's largest page).
const ALL_PAGE: u32 = 100;

fn counts_line(c: &DriftCounts) -> String {
    format!(
        "added {}, removed {}, changed {}, unchanged {}",
        c.added, c.removed, c.changed, c.unchanged
    )
}

/// One line per item: what happened to which object, the fields that changed, and who.
fn items_table(items: &[DriftItem]) -> Result<(), CliError> {
    let rows = items
        .iter()
        .map(|i| {
            vec![
                i.kind.clone(),
                i.object_type.clone(),
                i.name.clone(),
                i.object_id.clone(),
                i.changed_fields().join(","),
                i.actor_name().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["CHANGE", "TYPE", "NAME", "OBJECT", "FIELDS", "BY"], rows)
}

/// `TYPE/ID` as an object of a report.
fn object_ref(spec: &str) -> Result<ObjectRef, CliError> {
    match spec.split_once('/') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok(ObjectRef {
            object_type: t.to_owned(),
            object_id: id.to_owned(),
        }),
        _ => Err(CliError::ItemRef(spec.to_owned())),
    }
}

/// Every changed and removed object of a report (an added one has nothing to revert to).
async fn revertible(
    ctx: &Ctx,
    ws: WorkspaceId,
    t: TenantId,
    report: RunId,
) -> Result<Vec<ObjectRef>, CliError> {
    let mut query = PageQuery {
        limit: Some(ALL_PAGE),
        cursor: None,
    };
    let mut out = Vec::new();
    loop {
        let view = ctx.client.drift_report(ws, t, report, &query).await?;
        out.extend(
            view.items
                .into_iter()
                .filter(|i| i.kind != "added")
                .map(|i| ObjectRef {
                    object_type: i.object_type,
                    object_id: i.object_id,
                }),
        );
        match view.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

pub async fn drift(ctx: &Ctx, cmd: DriftCmd) -> Result<u8, CliError> {
    let client = &ctx.client;
    let (ws, t) = ctx.tenant()?;
    match cmd {
        DriftCmd::List { page: p } => {
            let reports = client.drift_reports(ws, t, &page(&p)).await?;
            ctx.out.show(&reports, || {
                let rows = reports
                    .items
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.baseline_backup_set_id.clone(),
                            r.counts.added.to_string(),
                            r.counts.removed.to_string(),
                            r.counts.changed.to_string(),
                            r.counts.unchanged.to_string(),
                            if r.accepted_run.is_some() { "yes" } else { "" }.to_owned(),
                            r.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "REPORT",
                        "BASELINE",
                        "ADDED",
                        "REMOVED",
                        "CHANGED",
                        "UNCHANGED",
                        "ACCEPTED",
                        "CREATED",
                    ],
                    rows,
                )?;
                output::more(reports.next_cursor.as_deref());
                Ok(())
            })?;
            Ok(0)
        }
        DriftCmd::View { report, page: p } => {
            let view = client.drift_report(ws, t, report, &page(&p)).await?;
            ctx.out.show(&view, || {
                let r = &view.report;
                output::fields(&[
                    ("report", r.id.to_string()),
                    ("baseline", r.baseline_backup_set_id.clone()),
                    ("types", r.types.join(", ")),
                    ("not compared", r.unread_types.join(", ")),
                    ("counts", counts_line(&r.counts)),
                    ("items", r.item_count.to_string()),
                    ("created", r.created_at.clone()),
                    ("accepted by", output::opt(&r.accepted_run)),
                ])?;
                items_table(&view.items)?;
                output::more(view.next_cursor.as_deref());
                Ok(())
            })?;
            Ok(0)
        }
        DriftCmd::Accept {
            report,
            idempotency_key,
            watch: w,
        } => {
            let s = client
                .accept_drift(ws, t, report, idempotency_key.as_deref())
                .await?;
            started(ctx, s, w.watch).await
        }
        DriftCmd::Revert {
            report,
            all,
            item,
            mapping,
            watch: w,
        } => {
            let items = if all {
                revertible(ctx, ws, t, report).await?
            } else {
                item.iter()
                    .map(|s| object_ref(s))
                    .collect::<Result<_, _>>()?
            };
            if items.is_empty() {
                return Err(CliError::NothingToRevert(report.to_string()));
            }
            let mapping = mapping.map(|m| json_arg("mapping", &m)).transpose()?;
            let p = client.revert_drift(ws, t, report, &items, mapping).await?;
            previewed(ctx, ws, t, p, w.watch).await
        }
    }
}

/// `backup diff FROM TO`: every item, read page by page, with the counts.
pub async fn diff(ctx: &Ctx, from: &str, to: &str) -> Result<u8, CliError> {
    let (ws, t) = ctx.tenant()?;
    let mut query = PageQuery {
        limit: Some(ALL_PAGE),
        cursor: None,
    };
    let mut all: Option<BackupSetDiff> = None;
    loop {
        let page = ctx.client.diff_backup_sets(ws, t, from, to, &query).await?;
        let next = page.next_cursor.clone();
        match &mut all {
            None => all = Some(page),
            Some(a) => a.items.extend(page.items),
        }
        match next {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    let Some(mut diff) = all else {
        return Ok(0);
    };
    diff.next_cursor = None;
    ctx.out.show(&diff, || {
        output::line(&format!(
            "backup set {} to {}: {}",
            diff.from_backup_set_id,
            diff.to_backup_set_id,
            counts_line(&diff.counts)
        ))?;
        items_table(&diff.items)
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_type_slash_id() {
        let r = object_ref("deviceConfigurations/abc-1").expect("an item");
        assert_eq!(r.object_type, "deviceConfigurations");
        assert_eq!(r.object_id, "abc-1");
        for bad in ["abc", "/abc", "type/"] {
            assert!(object_ref(bad).is_err(), "{bad}");
        }
    }
}
