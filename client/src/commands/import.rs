//! `berth import`: a filesystem tarball (file, `-` for STDIN, or an http(s) URL) becomes a
//! one-layer image (see [`crate::archive::import`]); prints `sha256:<image id>` like Docker.

use std::io::Read;

use anyhow::Context as _;

use crate::archive::import::{self, ImportOptions};
use crate::archive::ArchiveError;
use crate::cli::ImportArgs;
use crate::context::Ctx;

/// Runs `import`.
///
/// # Errors
/// Invalid reference, platform or `--change`; unreadable source; a layer the store refuses.
pub async fn run(ctx: &Ctx, args: &ImportArgs) -> anyhow::Result<()> {
    let opts = ImportOptions::new(
        args.reference.as_deref(),
        args.change.clone(),
        args.message.clone(),
        args.platform.as_deref(),
    )
    .map_err(ArchiveError::into_anyhow)?;
    let source = args.source.clone();
    let downloaded = if source.starts_with("http://") || source.starts_with("https://") {
        Some(
            import::download(&ctx.store, &source)
                .await
                .map_err(ArchiveError::into_anyhow)
                .with_context(|| format!("cannot import `{source}`"))?,
        )
    } else {
        None
    };
    let store = ctx.store.clone();
    let record = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let input: Box<dyn Read> = match &downloaded {
            Some(tmp) => Box::new(
                std::fs::File::open(tmp.path())
                    .with_context(|| format!("cannot open `{}`", tmp.path().display()))?,
            ),
            None if source == "-" => Box::new(std::io::stdin().lock()),
            None => Box::new(
                std::fs::File::open(&source).with_context(|| format!("cannot open `{source}`"))?,
            ),
        };
        import::import(&store, input, &opts)
            .map_err(ArchiveError::into_anyhow)
            .with_context(|| format!("cannot import `{source}`"))
    })
    .await
    .context("the import task failed")??;
    ctx.printer.data(&record.id);
    Ok(())
}
