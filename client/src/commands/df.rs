//! `berth system df`: disk usage of images (containers and volumes arrive with the runtime).

use std::collections::HashMap;

use crate::cli::DfArgs;
use crate::context::Ctx;
use crate::format::{self, human_size, Row};
use crate::reference::Reference;

const COLUMNS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// Prints the summary table (and per-image usage with `-v`).
///
/// # Errors
/// Store failures, bad templates.
pub fn run(ctx: &Ctx, args: &DfArgs) -> anyhow::Result<()> {
    let images = ctx.store.images()?;
    // Layers shared between images count once.
    let mut layer_users: HashMap<&str, usize> = HashMap::new();
    for i in &images {
        for l in &i.layers {
            *layer_users.entry(l.diff_id.as_str()).or_default() += 1;
        }
    }
    let layer_size = |diff: &str| {
        diff.parse()
            .ok()
            .and_then(|d| ctx.store.layer_size(&d))
            .unwrap_or(0)
    };
    let total: u64 = layer_users.keys().map(|d| layer_size(d)).sum();
    let row = |t: &str, n: usize, size: u64| {
        let mut r = Row::new();
        r.insert("Type", t.to_owned());
        r.insert("TotalCount", n.to_string());
        r.insert("Active", "0".into());
        r.insert("Size", human_size(size));
        r.insert(
            "Reclaimable",
            if size == 0 {
                "0B".into()
            } else {
                format!("{} (100%)", human_size(size))
            },
        );
        r
    };
    let rows = vec![
        row("Images", images.len(), total),
        row("Containers", 0, 0),
        row("Local Volumes", 0, 0),
        row("Build Cache", 0, 0),
    ];
    let mut out =
        format::render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    if args.verbose && args.format.is_none() {
        let tags = ctx.store.tags()?;
        let mut detail = Vec::new();
        for i in &images {
            let shared: u64 = i
                .layers
                .iter()
                .filter(|l| layer_users[l.diff_id.as_str()] > 1)
                .map(|l| layer_size(&l.diff_id))
                .sum();
            let names: Vec<Reference> = tags
                .iter()
                .filter(|(_, v)| **v == i.id)
                .filter_map(|(k, _)| Reference::parse(k).ok())
                .collect();
            let mut r = Row::new();
            r.insert(
                "Repository",
                names
                    .first()
                    .map_or("<none>".into(), Reference::familiar_name),
            );
            r.insert(
                "Tag",
                names
                    .first()
                    .and_then(|n| n.tag.clone())
                    .unwrap_or_else(|| "<none>".into()),
            );
            r.insert("ID", super::short_id(&i.id));
            r.insert("CreatedSince", format::since(i.created.as_deref()));
            r.insert("Size", human_size(i.size));
            r.insert("SharedSize", human_size(shared));
            r.insert("UniqueSize", human_size(i.size.saturating_sub(shared)));
            r.insert("Containers", "0".into());
            detail.push(r);
        }
        let cols: &[(&str, &str)] = &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ];
        out = format!(
            "Images space usage:\n\n{}\n{}",
            format::render(&detail, cols, None).map_err(anyhow::Error::msg)?,
            out
        );
    }
    ctx.printer.data(&out);
    Ok(())
}
