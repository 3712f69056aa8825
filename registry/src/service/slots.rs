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
//!
//! Fairness between clients: one client address may hold at most `max_uploads_per_ip` upload and
//! `max_downloads_per_ip` download slots, so a single host (or attacker) cannot take every slot
//! and leave other clients with `429`s. The address is the request's task-local [`as_client`],
//! set by the access-log layer from the connection; requests without one (in-process callers)
//! count only against the totals.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use berth_config::registry::Limits;
use berth_config::registry_limits::DOWNLOAD_CHUNK_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Result, ServiceError};

tokio::task_local! {
    static CLIENT_IP: IpAddr;
}

/// Runs `f` as a request from `ip`: the slots it takes count against that address too.
pub async fn as_client<F: Future>(ip: Option<IpAddr>, f: F) -> F::Output {
    match ip {
        Some(ip) => CLIENT_IP.scope(ip, f).await,
        None => f.await,
    }
}

const UPLOAD: usize = 0;
const DOWNLOAD: usize = 1;

/// Slots held per client address: `[uploads, downloads]`.
type PerIp = Arc<Mutex<HashMap<IpAddr, [usize; 2]>>>;

/// One slot counted against a client address; given back on drop.
pub(crate) struct IpShare {
    map: PerIp,
    ip: IpAddr,
    kind: usize,
}

impl Drop for IpShare {
    fn drop(&mut self) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = map.get_mut(&self.ip) {
            c[self.kind] = c[self.kind].saturating_sub(1);
            if c == &[0, 0] {
                map.remove(&self.ip);
            }
        }
    }
}

/// What an upload holds while it writes: its slot and its client's share.
pub struct UploadSlot {
    _share: Option<IpShare>,
    _slot: OwnedSemaphorePermit,
}

/// The semaphores of one registry (a clone shares them: the mirror's cache store draws on the
/// same slots and budget as local content).
#[derive(Clone)]
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
    per_ip: PerIp,
    /// `[max_uploads_per_ip, max_downloads_per_ip]`.
    per_ip_max: [usize; 2],
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
    pub(crate) _share: Option<IpShare>,
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
            per_ip: PerIp::default(),
            per_ip_max: [limits.max_uploads_per_ip, limits.max_downloads_per_ip],
        }
    }

    /// Counts one slot of `kind` against the current request's client address, if it has one.
    fn share(&self, kind: usize) -> Result<Option<IpShare>> {
        let Ok(ip) = CLIENT_IP.try_with(|ip| *ip) else {
            return Ok(None);
        };
        let mut map = self
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = map.entry(ip).or_default();
        if counts[kind] >= self.per_ip_max[kind] {
            return Err(ServiceError::Busy {
                what: if kind == UPLOAD {
                    "uploads from this client address"
                } else {
                    "downloads from this client address"
                },
                limit: self.per_ip_max[kind],
            });
        }
        counts[kind] += 1;
        Ok(Some(IpShare {
            map: self.per_ip.clone(),
            ip,
            kind,
        }))
    }

    /// A slot for an upload in progress.
    ///
    /// # Errors
    /// `Busy` when every slot is taken, or the client's address holds its share.
    pub fn upload(&self) -> Result<UploadSlot> {
        let share = self.share(UPLOAD)?;
        let slot = self
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy {
                what: "uploads",
                limit: self.max_uploads,
            })?;
        Ok(UploadSlot {
            _share: share,
            _slot: slot,
        })
    }

    /// A slot for a streamed download, with its read-ahead budget.
    ///
    /// # Errors
    /// `Busy` when every slot is taken, the read-ahead budget is spent, or the client's address
    /// holds its share.
    pub(crate) fn download(&self) -> Result<DownloadSlot> {
        let share = self.share(DOWNLOAD)?;
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
            _share: share,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(uploads: usize, per_ip: usize) -> Slots {
        Slots::new(&Limits {
            max_concurrent_uploads: uploads,
            max_uploads_per_ip: per_ip,
            max_concurrent_downloads: 8,
            max_downloads_per_ip: 2,
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn one_address_takes_only_its_share() {
        let s = slots(4, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held = as_client(Some(a), async {
            let one = s.upload().unwrap();
            let two = s.upload().unwrap();
            let err = s.upload().err().unwrap().to_string();
            assert!(err.contains("from this client address"), "{err}");
            assert!(err.contains("limit 2"), "{err}");
            let d1 = s.download().unwrap();
            let d2 = s.download().unwrap();
            assert!(s.download().is_err());
            (one, two, d1, d2)
        })
        .await;
        // Another address still gets slots; the totals still hold.
        as_client(Some(b), async {
            let _x = s.upload().unwrap();
            let _y = s.upload().unwrap();
            assert!(s.upload().is_err());
        })
        .await;
        // No address (in-process callers): totals only.
        assert_eq!(s.free_uploads(), 2);
        drop(held);
        assert_eq!(s.free_uploads(), 4);
        assert!(s.per_ip.lock().unwrap().is_empty(), "shares are given back");
        as_client(Some(a), async {
            let _again = s.upload().unwrap();
        })
        .await;
    }
}
