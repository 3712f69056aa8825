//! `berth export`: a container's flattened file system (its merged root, whiteouts already
//! applied by the overlay) as a tar stream on STDOUT or into `-o FILE`. The tree is walked by
//! handles from the root's (see `containers_fs::tree`), so a running container renaming things
//! cannot point the walk at host files (CVE-2018-15664).

use std::ffi::OsStr;
use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::Path;

use anyhow::Context as _;

use crate::archive::ArchiveError;
use crate::cli::ExportArgs;
use crate::container;
use crate::containers_fs::{append_tree_at, MergedRoot, RootDir};
use crate::context::Ctx;

/// Runs `export`.
///
/// # Errors
/// No such container, STDOUT is a terminal, mount or I/O failures.
pub fn run(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::Terminal.into_anyhow());
    }
    let (dir, state) = container::find(ctx.store.root(), &args.container)?;
    let merged = MergedRoot::open(&ctx.store, &dir, &state)?;
    // Walked from a handle of the root, one handle per directory: a directory the container
    // swaps for a symlink meanwhile is archived as that symlink, never followed.
    let root = RootDir::open(merged.path())?;
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
        append_tree_at(&mut b, root.fd(), OsStr::new("."), Path::new(""), false)
            .context("cannot archive the container's file system")?;
        b.into_inner()?.flush()?;
        Ok(())
    };
    match &args.output {
        Some(path) => {
            // Write beside the target and rename, so a failed export leaves no partial file.
            let tmp = crate::archive::TempPath::beside(path);
            let mut f = fs_err::File::create(tmp.path())?;
            write(&mut f)?;
            f.sync_all()?;
            tmp.persist(path).map_err(ArchiveError::into_anyhow)?;
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(())
}
