//! The local image store under the data root (default `/var/lib/berth`).
//!
//! ```text
//! <root>/
//! ├── lock                               flock: metadata writers take it exclusively
//! ├── blobs/sha256/<hex>                 manifests, configs, compressed layers (verified)
//! ├── layers/sha256/<diff-id hex>/       an unpacked layer: `fs/` (an overlayfs lowerdir), `size`
//! ├── images/sha256/<config hex>.json    image records (see [`ImageRecord`])
//! ├── repositories.json                  tags: {"docker.io/library/busybox:latest": "sha256:…"}
//! └── tmp/                               downloads in progress (`partial-<hex>`), unpack scratch
//! ```
//!
//! Nothing half-written is ever visible: every file is written in `tmp/` (or beside its target),
//! fsynced and renamed into place; blobs are verified against their digest before the rename and
//! layers against their diff ID. Two `berth` processes may run at once: content is
//! content-addressed (same name, same bytes), and metadata changes happen under [`Store::lock`].

pub mod gc;
pub mod image;
pub mod unpack;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

pub use image::{ImageRecord, LayerRecord, NewImage};
pub use unpack::PendingLayer;

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system failure.
    #[error("I/O error on {path}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Content does not hash to what it should.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the manifest/config promised.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A layer tarball tried to escape its directory or is otherwise hostile.
    #[error("refusing layer entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A record is unreadable.
    #[error("corrupt store file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No such image or blob.
    #[error("{0}")]
    NotFound(String),
    /// The store lock could not be taken.
    #[error("cannot lock the store at {path}")]
    Lock {
        /// Lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: nix::Error,
    },
}

/// Wraps an I/O error with its path.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Handle on a store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Exclusive hold on the store's metadata; released on drop.
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "layers/sha256", "images/sha256", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Self { root })
    }

    /// The data root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the exclusive metadata lock, waiting for other `berth` processes.
    ///
    /// # Errors
    /// When the lock file cannot be opened or locked.
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.root.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, source)| StoreError::Lock { path, source })?;
        Ok(StoreLock { _lock: lock })
    }

    /// Where a blob lives.
    #[must_use]
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_ref())
            .join(d.digest())
    }

    /// True when the blob is stored.
    #[must_use]
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a (small) blob.
    ///
    /// # Errors
    /// `NotFound` when absent.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound(format!("blob {d} is not in the store"))
            } else {
                StoreError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    /// Stores bytes as a blob; returns their sha256 digest.
    ///
    /// # Errors
    /// I/O failures.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let mut w = self.ingest(None)?;
        w.write_all(data).map_err(io(&w.path))?;
        w.commit()
    }

    /// Starts writing a blob to a temporary file; [`BlobWriter::commit`] verifies and publishes.
    /// With `expected`, the temporary file is `tmp/partial-<hex>` and is resumed when it exists:
    /// the returned writer's [`BlobWriter::offset`] tells where to continue.
    ///
    /// # Errors
    /// I/O failures.
    pub fn ingest(&self, expected: Option<&Digest>) -> Result<BlobWriter> {
        let (path, resume) = match expected {
            Some(d) => (
                self.root
                    .join("tmp")
                    .join(format!("partial-{}", d.digest())),
                true,
            ),
            None => (
                self.root
                    .join("tmp")
                    .join(format!("blob-{}", uuid::Uuid::new_v4())),
                false,
            ),
        };
        let mut hasher = Sha256::new();
        let mut offset = 0;
        if resume && path.is_file() {
            // Re-hash what an interrupted download left, then append.
            let mut f = File::open(&path).map_err(io(&path))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(io(&path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                offset += n as u64;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(BlobWriter {
            store: self.clone(),
            path,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher,
            offset,
            expected: expected.cloned(),
        })
    }

    /// Where an unpacked layer lives.
    #[must_use]
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join("layers")
            .join(diff_id.algorithm().as_ref())
            .join(diff_id.digest())
    }

    /// Unpacked size of a layer, when present.
    #[must_use]
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        std::fs::read_to_string(self.layer_path(diff_id).join("size"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Writes `data` to `path` atomically and durably.
    pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io(path))
    }
}

/// A blob being written; see [`Store::ingest`].
pub struct BlobWriter {
    store: Store,
    path: PathBuf,
    file: std::io::BufWriter<File>,
    hasher: Sha256,
    offset: u64,
    expected: Option<Digest>,
}

impl BlobWriter {
    /// Bytes already in the file (non-zero when resuming).
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Throws away what was written (a resumable partial file included).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Verifies the digest, fsyncs, and moves the blob into place. On mismatch the temporary
    /// file is removed and nothing is stored.
    ///
    /// # Errors
    /// `DigestMismatch`, I/O failures.
    pub fn commit(self) -> Result<Digest> {
        let Self {
            store,
            path,
            file,
            hasher,
            expected,
            ..
        } = self;
        let actual: Digest = format!("sha256:{}", hex::encode(hasher.finalize()))
            .parse()
            .expect("valid digest");
        if let Some(exp) = &expected {
            if *exp != actual {
                let _ = std::fs::remove_file(&path);
                return Err(StoreError::DigestMismatch {
                    expected: exp.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let file = file.into_inner().map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&path))?;
        let target = store.blob_path(&actual);
        std::fs::rename(&path, &target).map_err(io(&target))?;
        if let Some(dir) = target.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_before_they_appear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(b"hello").unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        let wrong: Digest =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .unwrap();
        let mut w = store.ingest(Some(&wrong)).unwrap();
        w.write_all(b"not it").unwrap();
        assert!(matches!(w.commit(), Err(StoreError::DigestMismatch { .. })));
        assert!(!store.has_blob(&wrong));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn partial_download_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d: Digest = format!("sha256:{}", hex::encode(Sha256::digest(b"abcdef")))
            .parse()
            .unwrap();
        let mut w = store.ingest(Some(&d)).unwrap();
        w.write_all(b"abc").unwrap();
        w.flush().unwrap();
        drop(w); // interrupted
        let mut w = store.ingest(Some(&d)).unwrap();
        assert_eq!(w.offset(), 3);
        w.write_all(b"def").unwrap();
        assert_eq!(w.commit().unwrap(), d);
        assert_eq!(store.read_blob(&d).unwrap(), b"abcdef");
    }

    #[test]
    fn lock_is_exclusive_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let held = store.lock().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("lock"))
            .unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("lock"))
            .unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
