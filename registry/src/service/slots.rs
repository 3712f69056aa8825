//! Admission for the long requests: upload and download slots, and the read-ahead budget.
//!
//! Uploads and downloads each get their own slots, so neither can starve the other, and small
//! requests (manifests, tags, small blobs from memory) need none. A request past a limit is
//! refused at once with [`ServiceError::Busy`] (the API answers `429` with `Retry-After`), never
//! queued. The read-ahead budget bounds the bytes read from disk for downloads and not yet
//! handed to the connection, over all downloads together: each download reserves two chunks with
//! its slot (the one being read, the one being written) and reads one chunk at a time (see
//! `super::blob`). The blocking calls themselves (chunk reads, batch writes) are bounded too, so
//! the thread count stays small whatever the number of clients.

use std::sync::Arc;

use berth_config::registry::Limits;
use berth_config::registry_limits::DOWNLOAD_CHUNK_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Result, ServiceError};

/// The semaphores of one registry.
pub struct Slots {
    uploads: Arc<Semaphore>,
    max_uploads: usize,
    downloads: Arc<Semaphore>,
    max_downloads: usize,
    /// One permit per [`DOWNLOAD_CHUNK_BYTES`] of read-ahead.
    read_ahead: Arc<Semaphore>,
    /// Permits for blocking reads of download chunks.
    pub(crate) read_io: Arc<Semaphore>,
    /// Permits for blocking upload writes.
    pub(crate) write_io: Arc<Semaphore>,
}

/// Blocking reads (download chunks) in flight at once; more wait their turn. Page-cache reads
/// take microseconds, so this bounds threads, not throughput.
const READ_THREADS: usize = 32;
/// Blocking writes (upload batches, fsyncs) in flight at once, apart from the reads so a slow
/// fsync never holds up downloads.
const WRITE_THREADS: usize = 32;

/// Read-ahead chunks charged to each download: the one being read and the one being written.
const CHUNKS_PER_DOWNLOAD: u32 = 2;

/// What a download holds for its whole life: its slot and its read-ahead budget.
pub(crate) struct DownloadSlot {
    pub(crate) _slot: OwnedSemaphorePermit,
    pub(crate) _reserved: OwnedSemaphorePermit,
}

impl Slots {
    /// Slots sized by `limits`.
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        let chunks = usize::try_from(limits.read_ahead_bytes / DOWNLOAD_CHUNK_BYTES)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads)),
            max_uploads: limits.max_concurrent_uploads,
            downloads: Arc::new(Semaphore::new(limits.max_concurrent_downloads)),
            max_downloads: limits.max_concurrent_downloads,
            read_ahead: Arc::new(Semaphore::new(chunks)),
            read_io: Arc::new(Semaphore::new(READ_THREADS)),
            write_io: Arc::new(Semaphore::new(WRITE_THREADS)),
        }
    }

    /// A slot for an upload in progress.
    ///
    /// # Errors
    /// `Busy` when every slot is taken.
    pub fn upload(&self) -> Result<OwnedSemaphorePermit> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy {
                what: "uploads",
                limit: self.max_uploads,
            })
    }

    /// A slot for a streamed download, with its read-ahead budget.
    ///
    /// # Errors
    /// `Busy` when every slot is taken or the read-ahead budget is spent.
    pub(crate) fn download(&self) -> Result<DownloadSlot> {
        let busy = || ServiceError::Busy {
            what: "downloads",
            limit: self.max_downloads,
        };
        let slot = self
            .downloads
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let reserved = self
            .read_ahead
            .clone()
            .try_acquire_many_owned(CHUNKS_PER_DOWNLOAD)
            .map_err(|_| busy())?;
        Ok(DownloadSlot {
            _slot: slot,
            _reserved: reserved,
        })
    }

    /// Free upload slots (for tests and diagnostics).
    #[must_use]
    pub fn free_uploads(&self) -> usize {
        self.uploads.available_permits()
    }

    /// Free download slots (for tests and diagnostics).
    #[must_use]
    pub fn free_downloads(&self) -> usize {
        self.downloads.available_permits()
    }
}
