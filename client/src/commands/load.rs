//! `berth load`: registers the images of a docker-archive or OCI layout tar read from `-i FILE`
//! or STDIN (see [`crate::archive::load`]) and prints Docker's `Loaded image: …` lines.

use std::io::{IsTerminal as _, Read};

use anyhow::Context as _;

use crate::archive::{load, ArchiveError};
use crate::cli::LoadArgs;
use crate::context::Ctx;

/// Runs `load`.
///
/// # Errors
/// Unreadable, malformed or hostile archives; nothing is registered then.
pub fn run(ctx: &Ctx, args: &LoadArgs) -> anyhow::Result<()> {
    let printer = ctx.printer.quiet(args.quiet);
    let (input, what): (Box<dyn Read>, String) = match &args.input {
        Some(path) => (
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open `{}`", path.display()))?,
            ),
            format!("`{}`", path.display()),
        ),
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "requested load from stdin, but stdin is empty; use `-i FILE` or redirect"
                );
            }
            (Box::new(std::io::stdin().lock()), "STDIN".to_owned())
        }
    };
    printer.debug(&format!("loading images from {what}"));
    let loaded = load::load(&ctx.store, input)
        .map_err(ArchiveError::into_anyhow)
        .with_context(|| format!("cannot load images from {what}"))?;
    for image in loaded {
        if image.tags.is_empty() {
            printer.data(&format!("Loaded image ID: {}", image.id));
        }
        for t in &image.tags {
            printer.data(&format!("Loaded image: {}", t.familiar()));
        }
    }
    Ok(())
}
