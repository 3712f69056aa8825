//! `berth rmi` / `berth image rm`: untag, and delete images no tag refers to any more.
//!
//! An image a container uses (running or stopped) is never deleted: its layers are that
//! container's overlay lower directories. As with Docker, removing its last tag or its ID is
//! refused (`conflict: …`); `-f` only untags it (it stays as `<none>` until its containers are
//! gone), and nothing is forced past a running container.

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

/// Removes every tag of `id` but keeps the image (a container needs it).
fn untag_all(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let _lock = ctx.store.lock()?;
    let mut tags = ctx.store.tags()?;
    let names: Vec<String> = tags
        .iter()
        .filter(|(_, v)| v.as_str() == id)
        .map(|(k, _)| k.clone())
        .collect();
    for n in &names {
        tags.remove(n);
    }
    ctx.store.save_tags(&tags)?;
    for n in names {
        let shown = Reference::parse(&n).map_or_else(|_| n.clone(), |r| r.familiar());
        ctx.printer.data(&format!("Untagged: {shown}"));
    }
    Ok(())
}

fn remove_one(ctx: &Ctx, arg: &str, force: bool) -> anyhow::Result<()> {
    let full = Reference::parse(arg).ok();
    let tags = ctx.store.tags()?;
    let in_use = crate::container::images::images_in_use(ctx.store.root());
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
        if let Some(user) = in_use.get(&id).and_then(|u| u.first()) {
            if !force {
                anyhow::bail!(
                    "Error response from daemon: conflict: unable to remove repository reference \"{arg}\" (must force) - container {} is using its referenced image {}",
                    short_id(&user.id),
                    short_id(&id)
                );
            }
            return untag_all(ctx, &id);
        }
        return delete(ctx, &id);
    }
    let image = super::find_image(ctx, arg)?;
    if let Some(users) = in_use.get(&image.id) {
        if let Some(running) = users.iter().find(|u| u.running) {
            anyhow::bail!(
                "Error response from daemon: conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short_id(&image.id),
                short_id(&running.id)
            );
        }
        if !force {
            anyhow::bail!(
                "Error response from daemon: conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                short_id(&image.id),
                short_id(&users[0].id)
            );
        }
        return untag_all(ctx, &image.id);
    }
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
