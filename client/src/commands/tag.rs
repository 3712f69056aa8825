//! `berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`

use anyhow::Context as _;

use super::find_image;
use crate::cli::TagArgs;
use crate::context::Ctx;
use crate::reference::Reference;

/// Points `target` at the image `source` names.
///
/// # Errors
/// No such image, or an invalid target reference.
pub fn run(ctx: &Ctx, args: &TagArgs) -> anyhow::Result<()> {
    let image = find_image(ctx, &args.source)?;
    let target = Reference::parse(&args.target)?;
    if target.digest.is_some() {
        anyhow::bail!(
            "refusing to create a tag with a digest reference: `{}`",
            args.target
        );
    }
    let _lock = ctx.store.lock()?;
    let mut tags = ctx.store.tags()?;
    tags.insert(target.to_string(), image.id.clone());
    ctx.store.save_tags(&tags).context("cannot save tags")?;
    Ok(())
}
