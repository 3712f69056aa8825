//! `berth history IMAGE`: the config's history, newest first, with layer sizes.

use super::{find_image, short_id};
use crate::cli::HistoryArgs;
use crate::context::Ctx;
use crate::format::{self, human_size, Row};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// Prints the history table (or IDs with `-q`, or a template).
///
/// # Errors
/// No such image, corrupt config.
pub fn run(ctx: &Ctx, args: &HistoryArgs) -> anyhow::Result<()> {
    let image = find_image(ctx, &args.image)?;
    let config: serde_json::Value =
        serde_json::from_slice(&ctx.store.read_blob(&image.id.parse()?)?)?;
    let empty = Vec::new();
    let history = config
        .get("history")
        .and_then(|h| h.as_array())
        .unwrap_or(&empty);
    let mut layers = image.layers.iter();
    let mut rows: Vec<Row> = Vec::new();
    let entries: Vec<serde_json::Value> = if history.is_empty() {
        image.layers.iter().map(|_| serde_json::json!({})).collect()
    } else {
        history.clone()
    };
    for h in &entries {
        let empty_layer = h
            .get("empty_layer")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let size = if empty_layer {
            0
        } else {
            layers
                .next()
                .and_then(|l| ctx.store.layer_size(&l.diff_id.parse().ok()?))
                .unwrap_or(0)
        };
        let created = h.get("created").and_then(|c| c.as_str()).map(str::to_owned);
        let by = h
            .get("created_by")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_owned();
        let by = if !args.no_trunc && by.chars().count() > 45 {
            format!("{}…", by.chars().take(44).collect::<String>())
        } else {
            by
        };
        let mut row = Row::new();
        row.insert("ID", "<missing>".into());
        row.insert(
            "CreatedSince",
            if args.human {
                format::since(created.as_deref())
            } else {
                created.clone().unwrap_or_default()
            },
        );
        row.insert("CreatedAt", created.unwrap_or_default());
        row.insert("CreatedBy", by);
        row.insert(
            "Size",
            if args.human {
                human_size(size)
            } else {
                size.to_string()
            },
        );
        row.insert(
            "Comment",
            h.get("comment")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_owned(),
        );
        rows.push(row);
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        let id = if args.no_trunc {
            image.id.clone()
        } else {
            short_id(&image.id)
        };
        top.insert("ID", id);
    }
    if args.quiet {
        for r in &rows {
            ctx.printer.data(&r["ID"]);
        }
        return Ok(());
    }
    ctx.printer
        .data(&format::render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?);
    Ok(())
}
