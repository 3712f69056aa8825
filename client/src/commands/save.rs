//! `berth save`: images to one tar that is both a docker-archive and an OCI image layout
//! (see [`crate::archive::save`]). With `-o` the tar is written beside the target and renamed
//! into place at the end, so a failed save leaves no partial file.

use std::io::{BufWriter, IsTerminal, Write};

use anyhow::Context as _;

use crate::archive::{save, ArchiveError, TempPath};
use crate::cli::SaveArgs;
use crate::context::Ctx;

/// Runs `save`.
///
/// # Errors
/// Unknown images, missing blobs, a terminal as output, I/O.
pub fn run(ctx: &Ctx, args: &SaveArgs) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::Terminal.into_anyhow());
    }
    let images = save::select(&ctx.store, &args.images).map_err(ArchiveError::into_anyhow)?;
    match &args.output {
        Some(target) => {
            let tmp = TempPath::beside(target);
            let file = std::fs::File::create(tmp.path())
                .with_context(|| format!("cannot create `{}`", target.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            save::save(&ctx.store, &images, &mut out)
                .map_err(ArchiveError::into_anyhow)
                .with_context(|| format!("cannot save to `{}`", target.display()))?;
            let file = out
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)
                .with_context(|| format!("cannot write `{}`", tmp.path().display()))?;
            file.sync_all()
                .with_context(|| format!("cannot write `{}`", tmp.path().display()))?;
            tmp.persist(target)
                .map_err(ArchiveError::into_anyhow)
                .with_context(|| format!("cannot save to `{}`", target.display()))?;
        }
        None => {
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            save::save(&ctx.store, &images, &mut out)
                .map_err(ArchiveError::into_anyhow)
                .context("cannot save to STDOUT")?;
            out.flush().context("cannot save to STDOUT")?;
        }
    }
    Ok(())
}
