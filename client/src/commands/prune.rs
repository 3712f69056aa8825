//! `berth image prune [-a] [-f]`

use crate::cli::PruneArgs;
use crate::context::Ctx;
use crate::format::human_size;
use crate::reference::Reference;

/// Removes dangling images (all unused ones with `-a`), asking first unless `-f`.
///
/// # Errors
/// Store failures.
pub fn run(ctx: &Ctx, args: &PruneArgs) -> anyhow::Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !super::confirm(warning, args.force)? {
        return Ok(());
    }
    let tags = ctx.store.tags()?;
    // An image a container uses (running or not) holds that container's lower layers.
    let in_use = crate::container::images::images_in_use(ctx.store.root());
    let mut lines = Vec::new();
    let mut reclaimed = 0;
    for image in ctx.store.images()? {
        let tagged = tags.values().any(|v| *v == image.id);
        if (tagged && !args.all) || in_use.contains_key(&image.id) {
            continue;
        }
        let removed = ctx.store.delete_image(&image.id)?;
        for t in removed.untagged {
            let shown = Reference::parse(&t).map_or(t.clone(), |r| r.familiar());
            lines.push(format!("untagged: {shown}"));
        }
        lines.push(format!("deleted: {}", image.id));
        reclaimed += removed.reclaimed;
    }
    let mut out = String::new();
    if !lines.is_empty() {
        out.push_str("Deleted Images:\n");
        out.push_str(&lines.join("\n"));
        out.push_str("\n\n");
    }
    out.push_str(&format!("Total reclaimed space: {}", human_size(reclaimed)));
    ctx.printer.data(&out);
    Ok(())
}
