//! `tenantops backups`, `inventory`, `audit` and `notifications`: what the API has recorded.

use tenantops_client::{ManifestEntry, PageQuery};

use super::{Ctx, page};
use crate::cli::{AuditArgs, BackupsCmd, InventoryArgs, NotificationsArgs};
use crate::error::CliError;
use crate::output;

pub async fn backups(ctx: &Ctx, cmd: BackupsCmd) -> Result<u8, CliError> {
    let (ws, t) = ctx.tenant()?;
    match cmd {
        BackupsCmd::List { page: p } => {
            let sets = ctx.client.backup_sets(ws, t, &page(&p)).await?;
            ctx.out.show(&sets, || {
                let rows = sets
                    .items
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.status.clone(),
                            s.object_count.to_string(),
                            s.types.len().to_string(),
                            s.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(&["SET", "STATUS", "OBJECTS", "TYPES", "CREATED"], rows)?;
                output::more(sets.next_cursor.as_deref());
                Ok(())
            })?;
        }
        BackupsCmd::Show { set, page: p } => {
            let view = ctx.client.backup_set(ws, t, &set, &page(&p)).await?;
            ctx.out.show(&view, || {
                let s = &view.backup_set;
                output::fields(&[
                    ("set", s.id.clone()),
                    ("status", s.status.clone()),
                    ("objects", s.object_count.to_string()),
                    ("types", s.types.join(", ")),
                    ("run", s.run_id.to_string()),
                    ("created", s.created_at.clone()),
                ])?;
                let rows = view
                    .items
                    .iter()
                    .map(|e| {
                        vec![
                            e.object_type.clone(),
                            e.name.clone(),
                            e.object_id.clone(),
                            e.hash.chars().take(12).collect(),
                        ]
                    })
                    .collect();
                output::table(&["TYPE", "NAME", "OBJECT", "HASH"], rows)?;
                output::more(view.next_cursor.as_deref());
                Ok(())
            })?;
        }
        BackupsCmd::Diff { from, to } => {
            let (before, after) = (
                manifest(ctx, ws, t, &from).await?,
                manifest(ctx, ws, t, &to).await?,
            );
            let changes = diff(&before, &after);
            ctx.out.show(&changes, || {
                let rows = changes
                    .iter()
                    .map(|c| {
                        vec![
                            c.change.to_owned(),
                            c.object_type.clone(),
                            c.name.clone(),
                            c.object_id.clone(),
                        ]
                    })
                    .collect();
                output::table(&["CHANGE", "TYPE", "NAME", "OBJECT"], rows)
            })?;
        }
    }
    Ok(0)
}

/// One object's change between two backup sets.
#[derive(Debug, serde::Serialize)]
struct Change {
    change: &'static str,
    object_type: String,
    object_id: String,
    name: String,
}

/// Every manifest entry of a set, page by page, by (type, id).
async fn manifest(
    ctx: &Ctx,
    ws: tenantops_core::WorkspaceId,
    t: tenantops_core::TenantId,
    set: &str,
) -> Result<std::collections::BTreeMap<(String, String), ManifestEntry>, CliError> {
    let mut entries = std::collections::BTreeMap::new();
    let mut query = PageQuery {
        limit: Some(100),
        cursor: None,
    };
    loop {
        let view = ctx.client.backup_set(ws, t, set, &query).await?;
        for e in view.items {
            entries.insert((e.object_type.clone(), e.object_id.clone()), e);
        }
        match view.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(entries),
        }
    }
}

/// Added, removed and changed objects (a changed object's normalized content hash differs),
/// in type and id order.
fn diff(
    before: &std::collections::BTreeMap<(String, String), ManifestEntry>,
    after: &std::collections::BTreeMap<(String, String), ManifestEntry>,
) -> Vec<Change> {
    let change = |change, e: &ManifestEntry| Change {
        change,
        object_type: e.object_type.clone(),
        object_id: e.object_id.clone(),
        name: e.name.clone(),
    };
    let mut out: Vec<Change> = Vec::new();
    for (key, e) in after {
        match before.get(key) {
            None => out.push(change("added", e)),
            Some(old) if old.hash != e.hash => out.push(change("changed", e)),
            Some(_) => {}
        }
    }
    for (key, e) in before {
        if !after.contains_key(key) {
            out.push(change("removed", e));
        }
    }
    out.sort_by(|a, b| (&a.object_type, &a.object_id).cmp(&(&b.object_type, &b.object_id)));
    out
}

pub async fn inventory(ctx: &Ctx, args: InventoryArgs) -> Result<u8, CliError> {
    let (ws, t) = ctx.tenant()?;
    let items = ctx
        .client
        .inventory(ws, t, args.kind.as_deref(), &page(&args.page))
        .await?;
    ctx.out.show(&items, || {
        let rows = items
            .items
            .iter()
            .map(|i| {
                vec![
                    i.kind.clone(),
                    i.name.clone(),
                    i.id.clone(),
                    if i.deleted { "deleted" } else { "" }.to_owned(),
                    i.seen_at.clone(),
                ]
            })
            .collect();
        output::table(&["TYPE", "NAME", "OBJECT", "STATE", "SEEN"], rows)?;
        output::more(items.next_cursor.as_deref());
        Ok(())
    })?;
    Ok(0)
}

pub async fn audit(ctx: &Ctx, args: AuditArgs) -> Result<u8, CliError> {
    let ws = ctx.workspace()?;
    let tenant = if args.tenant_only {
        Some(ctx.tenant()?.1)
    } else {
        None
    };
    let entries = ctx
        .client
        .list_audit(ws, args.action.as_deref(), tenant, &page(&args.page))
        .await?;
    ctx.out.show(&entries, || {
        let rows = entries
            .items
            .iter()
            .map(|e| {
                vec![
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                ]
            })
            .collect();
        output::table(&["AT", "ACTOR", "ACTION", "TARGET"], rows)?;
        output::more(entries.next_cursor.as_deref());
        Ok(())
    })?;
    Ok(0)
}

pub async fn notifications(ctx: &Ctx, args: NotificationsArgs) -> Result<u8, CliError> {
    let notes = ctx.client.notifications(args.limit).await?;
    ctx.out.show(&notes, || {
        let rows = notes
            .items
            .iter()
            .map(|n| {
                vec![
                    n.at.clone(),
                    n.run_id.to_string(),
                    n.kind.clone(),
                    n.status.clone(),
                    n.outcome.clone(),
                ]
            })
            .collect();
        output::table(&["AT", "RUN", "TYPE", "STATUS", "OUTCOME"], rows)
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, hash: &str) -> ((String, String), ManifestEntry) {
        (
            ("deviceConfigurations".into(), id.into()),
            ManifestEntry {
                object_type: "deviceConfigurations".into(),
                object_id: id.into(),
                name: format!("policy {id}"),
                hash: hash.into(),
            },
        )
    }

    #[test]
    fn a_diff_names_added_removed_and_changed_objects() {
        let before = [entry("a", "1"), entry("b", "2"), entry("c", "3")]
            .into_iter()
            .collect();
        let after = [entry("b", "2"), entry("c", "4"), entry("d", "5")]
            .into_iter()
            .collect();
        let got: Vec<(&str, String)> = diff(&before, &after)
            .into_iter()
            .map(|c| (c.change, c.object_id))
            .collect();
        assert_eq!(
            got,
            vec![
                ("removed", "a".to_owned()),
                ("changed", "c".to_owned()),
                ("added", "d".to_owned())
            ]
        );
    }
}
