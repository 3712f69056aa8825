//! Storage drivers: a small, path-keyed interface with no registry logic in it.
//!
//! Digests, links, tags and sessions are the service layer's business (`crate::service`); a driver
//! only stores bytes under slash-separated relative paths. The trait is synchronous: the service
//! calls it directly for tiny metadata files (page-cache hits, microseconds) and from blocking
//! tasks for blob data. An S3-compatible driver can implement the same trait.
//!
//! Layout the service builds on top of a driver (see `crate::service::paths`):
//!
//! ```text
//! <root>/
//! ├── blobs/<alg>/<hh>/<hex>/data                      content, written once, shared by repositories
//! ├── repositories/<name>/
//! │   ├── _layers/<alg>/<hex>/link                     blob is part of this repository
//! │   ├── _manifests/revisions/<alg>/<hex>/link        manifest is part of this repository
//! │   ├── _manifests/tags/<tag>/current/link           tag -> manifest digest
//! │   └── _referrers/<alg>/<subject-hex>/<alg>-<hex>   descriptor of a manifest with that subject
//! └── _uploads/<uuid>/{info,data}                      upload sessions in progress
//! ```

pub mod fs;
#[cfg(test)]
mod testsuite;

use std::io::{Read, Write};
use std::time::SystemTime;

/// Result type of storage drivers.
pub type Result<T> = std::result::Result<T, StorageError>;

/// What can go wrong in a driver.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Nothing is stored at this path.
    #[error("path not found: {path}")]
    NotFound {
        /// The relative path asked for.
        path: String,
    },
    /// The path is not a clean relative path (`..`, empty or absolute components).
    #[error("invalid storage path: {path:?}")]
    InvalidPath {
        /// The offending path.
        path: String,
    },
    /// Any other I/O failure.
    #[error("storage I/O error on {path}")]
    Io {
        /// The relative path being accessed.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// Wraps an I/O error, mapping `NotFound` to [`StorageError::NotFound`].
    #[must_use]
    pub fn io(path: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound {
                path: path.to_owned(),
            }
        } else {
            Self::Io {
                path: path.to_owned(),
                source,
            }
        }
    }

    /// True when the storage is out of space or quota (`ENOSPC`, `EDQUOT`).
    #[must_use]
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::Io { source, .. }
            if matches!(source.raw_os_error(), Some(nix::libc::ENOSPC | nix::libc::EDQUOT)))
    }

    /// True when the error means "nothing there".
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// True for a directory (a path prefix with children).
    pub is_dir: bool,
}

/// A byte source for a stored file, positioned at the requested offset.
pub trait BlobReader: Read + Send {
    /// Reads what can be had without blocking (data already in memory), on the caller's thread:
    /// `Some(Ok(n))` read `n` bytes (`0` at the end), `None` when the read would have to wait
    /// for the device or the source cannot tell; the caller then reads on a blocking thread.
    fn read_now(&mut self, _buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        None
    }
}
impl BlobReader for std::fs::File {}

/// An append-only writer. Nothing it wrote is guaranteed durable until [`FileWriter::commit`].
pub trait FileWriter: Write + Send {
    /// Bytes in the file so far, including what was there before an append-mode open.
    fn size(&self) -> u64;
    /// Flushes and makes the data durable (fsync).
    ///
    /// # Errors
    /// On I/O failure.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// The storage driver interface.
pub trait StorageDriver: Send + Sync + 'static {
    /// Reads a whole (small) file.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn get(&self, path: &str) -> Result<Vec<u8>>;
    /// Atomically replaces a file's content: readers see the old or the new bytes, never a mix,
    /// and after return the new content survives a crash.
    ///
    /// # Errors
    /// On I/O failure.
    fn put(&self, path: &str, data: &[u8]) -> Result<()>;
    /// Opens a file for streaming from `offset`.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn BlobReader>>;
    /// Opens a file for appending (created if missing; truncated unless `append`).
    ///
    /// # Errors
    /// On I/O failure.
    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>>;
    /// Describes a file or directory.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn stat(&self, path: &str) -> Result<FileInfo>;
    /// Names of the direct children of a directory, sorted.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn list(&self, path: &str) -> Result<Vec<String>>;
    /// Atomically moves a file, replacing any file at `to`; durable on return.
    ///
    /// # Errors
    /// `NotFound` when `from` is absent.
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Cuts a file back to `size` bytes (used to undo a failed append) and makes it durable.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn truncate(&self, path: &str, size: u64) -> Result<()>;
    /// Removes a file or a whole directory tree.
    ///
    /// # Errors
    /// `NotFound` when absent.
    fn delete(&self, path: &str) -> Result<()>;
}

/// Rejects anything but clean relative paths. Every driver calls this first.
///
/// # Errors
/// `InvalidPath` for empty, absolute or dot components.
pub fn check_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'));
    if bad {
        Err(StorageError::InvalidPath {
            path: path.to_owned(),
        })
    } else {
        Ok(())
    }
}
