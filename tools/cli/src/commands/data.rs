//! `tenantops backups`, `inventory`, `audit` and `notifications`: what the API has recorded.

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
        BackupsCmd::Diff { from, to } => return super::drift::diff(ctx, &from, &to).await,
    }
    Ok(0)
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
