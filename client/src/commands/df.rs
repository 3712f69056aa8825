//! `berth system df`: disk usage of images, containers (their writable layers) and volumes,
//! with what is in use (`ACTIVE`) and what a prune would free (`RECLAIMABLE`), as Docker counts
//! them: an image is active when a container (running or not) uses it, a container when it
//! runs, a volume when a container mounts it.

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
    let containers = crate::container::list(ctx.store.root());
    let used_images: std::collections::HashSet<&str> =
        containers.iter().map(|(_, s)| s.image.as_str()).collect();
    // Layers of images no container uses, and that no used image shares.
    let mut used_layers: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for i in images
        .iter()
        .filter(|i| used_images.contains(i.id.as_str()))
    {
        used_layers.extend(i.layers.iter().map(|l| l.diff_id.as_str()));
    }
    let image_reclaimable: u64 = layer_users
        .keys()
        .filter(|d| !used_layers.contains(*d))
        .map(|d| layer_size(d))
        .sum();
    let active_images = images
        .iter()
        .filter(|i| used_images.contains(i.id.as_str()))
        .count();
    let mut container_size = 0;
    let mut container_reclaimable = 0;
    let mut running = 0;
    for (dir, state) in &containers {
        let size = crate::volumes::disk_usage(&dir.join("upper"));
        container_size += size;
        if state.status() == crate::container::Status::Running {
            running += 1;
        } else {
            container_reclaimable += size;
        }
    }
    let volumes = crate::volumes::list(ctx.store.root());
    let users = crate::container::volume_users::users(ctx.store.root());
    let mut volume_size = 0;
    let mut volume_reclaimable = 0;
    let mut active_volumes = 0;
    for v in &volumes {
        let size =
            crate::volumes::disk_usage(&crate::volumes::mountpoint(ctx.store.root(), &v.name));
        volume_size += size;
        if users.contains_key(&v.name) {
            active_volumes += 1;
        } else {
            volume_reclaimable += size;
        }
    }
    let row = |t: &str, n: usize, active: usize, size: u64, reclaimable: u64| {
        let mut r = Row::new();
        r.insert("Type", t.to_owned());
        r.insert("TotalCount", n.to_string());
        r.insert("Active", active.to_string());
        r.insert("Size", human_size(size));
        r.insert("Reclaimable", reclaimable_text(size, reclaimable));
        r
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            active_images,
            total,
            image_reclaimable,
        ),
        row(
            "Containers",
            containers.len(),
            running,
            container_size,
            container_reclaimable,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            active_volumes,
            volume_size,
            volume_reclaimable,
        ),
        row("Build Cache", 0, 0, 0, 0),
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
            let users = containers.iter().filter(|(_, s)| s.image == i.id).count();
            r.insert("Containers", users.to_string());
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

/// Docker's `RECLAIMABLE` cell: `SIZE (PERCENT%)` of the total, or `0B` when there is nothing.
fn reclaimable_text(size: u64, reclaimable: u64) -> String {
    if size == 0 {
        return "0B".into();
    }
    let percent = reclaimable.saturating_mul(100) / size;
    format!("{} ({percent}%)", human_size(reclaimable))
}

#[cfg(test)]
mod tests {
    use super::reclaimable_text;

    #[test]
    fn reclaimable_reads_like_dockers() {
        assert_eq!(reclaimable_text(0, 0), "0B");
        assert_eq!(reclaimable_text(2_000_000, 2_000_000), "2MB (100%)");
        assert_eq!(reclaimable_text(2_000_000, 500_000), "500kB (25%)");
        assert_eq!(reclaimable_text(2_000_000, 0), "0B (0%)");
    }
}
