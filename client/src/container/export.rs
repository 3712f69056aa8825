//! `export`: a container's flattened file system (its merged root, whiteouts already applied by
//! the overlay) as a tar stream, into a file or the caller's writer. The tree is walked by
//! handles from the root's (see `containers_fs::tree`), so a running container renaming things
//! cannot point the walk at host files (CVE-2018-15664).
//!
//! May call [`super::state`], [`crate::containers_fs`], [`crate::archive`] (the file written
//! beside its target, then renamed) and [`crate::store`].

use std::ffi::OsStr;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::state::{self, StateError};
use crate::archive::ArchiveError;
use crate::containers_fs::{append_tree_at, MergedRoot, ResolveError, RootDir};
use crate::store::Store;

/// A container could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The container's root file system cannot be mounted (or found).
    #[error(transparent)]
    Mount(#[from] crate::containers_fs::MountError),
    /// The merged root cannot be opened as a handle.
    #[error(transparent)]
    Root(ResolveError),
    /// Walking the tree into the archive.
    #[error("cannot archive the container's file system")]
    Archive(#[source] std::io::Error),
    /// Writing the stream or the file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Renaming the written file onto the target.
    #[error(transparent)]
    Persist(ArchiveError),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, ExportError>;

/// What to export, and where (`export`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The container's name or ID.
    pub container: String,
    /// `-o FILE`; none for the caller's writer.
    pub output: Option<PathBuf>,
}

/// Writes the container's file system as a tar stream into `opts.output` (written beside it and
/// renamed, so a failed export leaves no partial file) or else into `stdout`.
///
/// # Errors
/// No such container, mount or I/O failures.
pub fn export(store: &Store, opts: &ExportOptions, stdout: &mut dyn Write) -> Result<()> {
    let (dir, state) = state::find(store.root(), &opts.container)?;
    let merged = MergedRoot::open(store, &dir, &state).map_err(ExportError::Mount)?;
    // Walked from a handle of the root, one handle per directory: a directory the container
    // swaps for a symlink meanwhile is archived as that symlink, never followed.
    let root = RootDir::open(merged.path()).map_err(ExportError::Root)?;
    let write = |out: &mut dyn Write| -> Result<()> {
        let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
        append_tree_at(&mut b, root.fd(), OsStr::new("."), Path::new(""), false)
            .map_err(ExportError::Archive)?;
        b.into_inner()?.flush()?;
        Ok(())
    };
    match &opts.output {
        Some(path) => {
            let tmp = crate::archive::TempPath::beside(path);
            let mut f = fs_err::File::create(tmp.path())?;
            write(&mut f)?;
            f.sync_all()?;
            tmp.persist(path).map_err(ExportError::Persist)?;
        }
        None => write(stdout)?,
    }
    Ok(())
}
