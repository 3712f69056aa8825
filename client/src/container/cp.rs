//! `cp`: copies between a container and the host. Container paths are looked up inside a
//! handle of the container's merged root ([`RootDir`]), and the copy reads and writes relative
//! to handles from there, so a symlink in the container (`/evil -> /`), even one swapped in
//! while the copy runs, never leads to a host file (CVE-2018-15664). `-` on the host side is a
//! tar stream (the caller's stdin or stdout).
//!
//! May call [`super::state`], [`crate::containers_fs`] (the merged root, handles, tar trees)
//! and [`crate::store`].

use std::ffi::OsString;
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType};

use super::state::{self, StateError};
use crate::containers_fs::resolve::lexical;
use crate::containers_fs::{
    append_tree, append_tree_at, extract_in_root, piped, ExtractError, MergedRoot, ResolveError,
    RootDir,
};
use crate::store::Store;

/// A copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The container's root file system cannot be mounted (or found).
    #[error(transparent)]
    Mount(#[from] crate::containers_fs::MountError),
    /// The merged root cannot be opened as a handle.
    #[error(transparent)]
    Root(ResolveError),
    /// The source is not in the container (Docker's wording).
    #[error("Error response from daemon: Could not find the file {path} in container {container}")]
    NotInContainer {
        /// The path as given.
        path: String,
        /// The container as given.
        container: String,
        /// The lookup's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The destination's directory is not in the container (Docker's wording).
    #[error("Error response from daemon: Could not find the file {} in container {container}", path.display())]
    NoDirInContainer {
        /// The directory, as the container sees it.
        path: PathBuf,
        /// The container as given.
        container: String,
    },
    /// `-` into a container path that is not a directory.
    #[error("Error response from daemon: extraction point is not a directory")]
    NotADirectory,
    /// The host source does not exist.
    #[error("could not find the file {path}")]
    NoHostSource {
        /// The path as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host destination's directory does not exist.
    #[error("destination directory `{}` does not exist", .0.display())]
    NoHostDir(PathBuf),
    /// The destination has no file name (`..`, `/`).
    #[error("invalid destination")]
    InvalidDestination,
    /// Extracting into a host directory.
    #[error("cannot extract into `{}`", dir.display())]
    Extract {
        /// The host directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Extracting into the container.
    #[error(transparent)]
    ExtractInContainer(#[from] ExtractError),
    /// Reading the host source's path, archiving it, or writing the stream.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, CpError>;

fn open(store: &Store, container: &str) -> Result<(MergedRoot, RootDir)> {
    let (dir, state) = state::find(store.root(), container)?;
    let merged = MergedRoot::open(store, &dir, &state).map_err(CpError::Mount)?;
    let root = RootDir::open(merged.path()).map_err(CpError::Root)?;
    Ok((merged, root))
}

/// Whether the container path `p` is a directory (symlinks followed inside the root).
fn is_dir(root: &RootDir, p: &Path) -> bool {
    root.resolve(p)
        .ok()
        .and_then(|fd| rustix::fs::fstat(fd).ok())
        .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// `cp CONTAINER:SRC DEST`: into DEST (an existing directory gets SRC under its own name),
/// or, with DEST `-`, as a tar stream on `stdout`.
///
/// # Errors
/// No such container or source, no destination directory, I/O.
pub fn copy_out(
    store: &Store,
    container: &str,
    src: &str,
    dest: &str,
    stdout: &mut dyn Write,
) -> Result<()> {
    let (_merged, root) = open(store, container)?;
    let missing = |source: Box<dyn std::error::Error + Send + Sync>| CpError::NotInContainer {
        path: src.to_owned(),
        container: container.to_owned(),
        source,
    };
    // The source's directory as a handle inside the root; its last component is not followed.
    let (parent, name) = root
        .resolve_parent(Path::new(if src.is_empty() { "/" } else { src }))
        .map_err(|e| missing(e.into()))?;
    let last = name.clone().unwrap_or_else(|| OsString::from("."));
    rustix::fs::statat(&parent, &last, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| missing(std::io::Error::from(e).into()))?;
    let name = name.unwrap_or_else(|| OsString::from("."));
    if dest == "-" {
        let mut b = tar::Builder::new(BufWriter::new(stdout));
        append_tree_at(&mut b, parent.as_fd(), &last, Path::new(&name), false)?;
        b.into_inner()?.flush()?;
        return Ok(());
    }
    // Into an existing directory under the source's name, or else as DEST itself.
    let dest = Path::new(dest);
    let (dir, top) = if dest.is_dir() {
        (dest.to_owned(), name)
    } else {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(CpError::NoHostDir(parent));
        }
        (
            parent,
            dest.file_name()
                .ok_or(CpError::InvalidDestination)?
                .to_owned(),
        )
    };
    let top = PathBuf::from(top);
    piped(
        move |w| {
            let mut b = tar::Builder::new(BufWriter::new(w));
            append_tree_at(&mut b, parent.as_fd(), &last, &top, false)?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| {
            let mut a = tar::Archive::new(r);
            a.set_preserve_permissions(true);
            a.set_preserve_ownerships(nix::unistd::geteuid().is_root());
            a.set_overwrite(true);
            a.unpack(&dir).map_err(|source| CpError::Extract {
                dir: dir.clone(),
                source,
            })
        },
    )
}

/// `cp SRC CONTAINER:DEST`: SRC into DEST (an existing directory gets it under its own name),
/// or, with SRC `-`, the tar stream on `stdin` extracted into the directory DEST.
///
/// # Errors
/// No such container or source, no destination directory, I/O.
pub fn copy_in(
    store: &Store,
    src: &str,
    container: &str,
    dest: &str,
    stdin: &mut dyn Read,
) -> Result<()> {
    let (_merged, root) = open(store, container)?;
    let dest_in = lexical(Path::new(dest));
    if src == "-" {
        if !is_dir(&root, &dest_in) {
            return Err(CpError::NotADirectory);
        }
        return Ok(extract_in_root(&root, &dest_in, stdin)?);
    }
    let src_path = PathBuf::from(src);
    std::fs::symlink_metadata(&src_path).map_err(|source| CpError::NoHostSource {
        path: src.to_owned(),
        source,
    })?;
    let (dir, top) = if is_dir(&root, &dest_in) {
        let name = src_path
            .canonicalize()?
            .file_name()
            .map_or_else(|| OsString::from("."), ToOwned::to_owned);
        (dest_in, name)
    } else {
        let parent = dest_in.parent().unwrap_or(Path::new("")).to_owned();
        if !is_dir(&root, &parent) {
            return Err(CpError::NoDirInContainer {
                path: parent,
                container: container.to_owned(),
            });
        }
        (
            parent,
            dest_in
                .file_name()
                .ok_or(CpError::InvalidDestination)?
                .to_owned(),
        )
    };
    let top = PathBuf::from(top);
    piped(
        move |w| {
            let mut b = tar::Builder::new(BufWriter::new(w));
            append_tree(&mut b, &src_path, &top, false)?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| Ok(extract_in_root(&root, &dir, r)?),
    )
}
