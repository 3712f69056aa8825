//! `berth rmi` / `berth image rm`: untag, and delete images no tag refers to any more.

use super::short_id;
use crate::cli::RmiArgs;
use crate::context::Ctx;
use crate::format::human_size;
use crate::reference::Reference;
use crate::store::StoreError;

/// Removes each argument; reports every failure and exits 1 if any, like Docker.
///
/// # Errors
/// When any image could not be removed.
pub fn run(ctx: &Ctx, args: &RmiArgs) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for arg in &args.images {
        if let Err(e) = remove_one(ctx, arg, args.force) {
            ctx.printer.warn(&format!("{e:#}"));
            failed.push(arg.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("could not remove {}", failed.join(", "))
    }
}

fn remove_one(ctx: &Ctx, arg: &str, force: bool) -> anyhow::Result<()> {
    let full = Reference::parse(arg).ok();
    let tags = ctx.store.tags()?;
    // A tag name: untag it; delete the image only when that was its last tag.
    if let Some(r) = full.as_ref().filter(|r| tags.contains_key(&r.to_string())) {
        let id = tags[&r.to_string()].clone();
        let others = tags
            .iter()
            .filter(|(k, v)| **v == id && **k != r.to_string())
            .count();
        if others > 0 {
            let _lock = ctx.store.lock()?;
            let mut tags = ctx.store.tags()?;
            tags.remove(&r.to_string());
            ctx.store.save_tags(&tags)?;
            ctx.printer.data(&format!("Untagged: {}", r.familiar()));
            return Ok(());
        }
        return delete(ctx, &id);
    }
    let image = super::find_image(ctx, arg)?;
    let count = tags.values().filter(|v| **v == image.id).count();
    if count > 1 && !force {
        anyhow::bail!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short_id(&image.id)
        );
    }
    delete(ctx, &image.id)
}

fn delete(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let image = ctx.store.image(id)?;
    let removed = match ctx.store.delete_image(id) {
        Ok(r) => r,
        Err(StoreError::NotFound(m)) => anyhow::bail!(m),
        Err(e) => return Err(e.into()),
    };
    for t in &removed.untagged {
        let shown = Reference::parse(t).map_or_else(|_| t.clone(), |r| r.familiar());
        ctx.printer.data(&format!("Untagged: {shown}"));
    }
    for d in &image.repo_digests {
        ctx.printer.data(&format!("Untagged: {d}"));
    }
    ctx.printer.data(&format!("Deleted: {}", image.id));
    ctx.printer
        .debug(&format!("reclaimed {}", human_size(removed.reclaimed)));
    Ok(())
}
