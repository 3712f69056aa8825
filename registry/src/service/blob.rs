//! Blobs as seen through a repository: existence, streaming reads, links, mounts and deletes.

use std::io::Read;
use std::sync::Arc;

use berth_config::registry_limits::DOWNLOAD_CHUNK_BYTES;
use bytes::Bytes;
use futures_util::Stream;
use oci_spec::image::Digest;

use super::cache::Cached;
use super::chunk::ChunkBuf;
use super::slots::DownloadSlot;
use super::{paths, Registry, Result, ServiceError};
use crate::storage::BlobReader;

/// What [`Registry::open_blob`] found.
pub enum BlobHandle {
    /// The whole blob, in memory.
    Small(Arc<Cached>),
    /// A blob of this many bytes, to be streamed with [`Registry::blob_reader`].
    Large(u64),
}

impl Registry {
    /// Size of a blob that is linked into `name`.
    ///
    /// # Errors
    /// `BlobUnknown` when the repository does not have it.
    pub fn blob_size(&self, name: &str, digest: &Digest) -> Result<u64> {
        let unknown = || ServiceError::BlobUnknown {
            name: name.to_owned(),
            digest: digest.to_string(),
        };
        if !self.exists(&paths::layer_link(name, digest))? {
            return Err(unknown());
        }
        match self.driver.stat(&paths::blob_data(digest)) {
            Ok(info) => Ok(info.size),
            Err(e) if e.is_not_found() => Err(unknown()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a blob of `name` for serving: blobs of at most `max` bytes come whole from memory
    /// (cached after the first read); larger ones report their size, to be streamed.
    ///
    /// # Errors
    /// `BlobUnknown`, storage failures.
    pub fn open_blob(&self, name: &str, digest: &Digest, max: u64) -> Result<BlobHandle> {
        // A client may HEAD a blob and reference it in a manifest next: the GC gate records it.
        self.gc_gate
            .reference([digest], || self.open_blob_ungated(name, digest, max))
    }

    fn open_blob_ungated(&self, name: &str, digest: &Digest, max: u64) -> Result<BlobHandle> {
        let key = digest.to_string();
        if let Some(hit) = self.small_blobs.get(name, &key) {
            return Ok(BlobHandle::Small(hit));
        }
        let size = self.blob_size(name, digest)?;
        if size > max {
            return Ok(BlobHandle::Large(size));
        }
        let bytes = Bytes::from(self.driver.get(&paths::blob_data(digest))?);
        if bytes.len() as u64 != size {
            // Sizes are fixed once published; a mismatch means outside interference.
            return Err(ServiceError::BlobUnknown {
                name: name.to_owned(),
                digest: key,
            });
        }
        let entry = Arc::new(Cached {
            digest: digest.clone(),
            media_type: "application/octet-stream".to_owned(),
            bytes,
        });
        self.small_blobs.insert(name, &key, entry.clone());
        Ok(BlobHandle::Small(entry))
    }

    /// Opens a blob for streaming from `offset`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn blob_reader(&self, digest: &Digest, offset: u64) -> Result<Box<dyn BlobReader>> {
        Ok(self.driver.reader(&paths::blob_data(digest), offset)?)
    }

    /// Streams `len` bytes of a blob from `offset`, in a download slot.
    ///
    /// Chunks are read on demand, each by one short blocking call, only when the consumer asks
    /// for the next one: a client that does not read holds no thread, and a download holds two
    /// chunks of the shared read-ahead budget (reserved with its slot) for its whole life.
    ///
    /// # Errors
    /// `Busy` past the download limit or the read-ahead budget; storage failures.
    pub fn blob_stream(
        &self,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
        let slot = self.slots.download()?;
        let reader = self.blob_reader(digest, offset)?;
        let state = Download {
            reader: Some(reader),
            remaining: len,
            io: self.slots.read_io.clone(),
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(state, Download::next))
    }

    /// Makes an existing blob part of `name`.
    pub(crate) fn link_blob(&self, name: &str, digest: &Digest) -> Result<()> {
        Ok(self.driver.put(
            &paths::layer_link(name, digest),
            digest.to_string().as_bytes(),
        )?)
    }

    /// Cross-repository mount (end-11): links the blob into `name` when `from` has it.
    /// Returns the blob's size, or `None` when it cannot be mounted.
    ///
    /// # Errors
    /// Storage failures.
    pub fn mount_blob(&self, name: &str, from: &str, digest: &Digest) -> Result<Option<u64>> {
        self.gc_gate
            .reference([digest], || self.mount_blob_ungated(name, from, digest))
    }

    fn mount_blob_ungated(&self, name: &str, from: &str, digest: &Digest) -> Result<Option<u64>> {
        match self.blob_size(from, digest) {
            Ok(size) => {
                self.link_blob(name, digest)?;
                Ok(Some(size))
            }
            Err(ServiceError::BlobUnknown { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the blob from `name` (end-10). The content stays for other repositories; reclaiming
    /// unreferenced content is garbage collection's job.
    ///
    /// # Errors
    /// `BlobUnknown` when the repository does not have it.
    pub fn delete_blob(&self, name: &str, digest: &Digest) -> Result<()> {
        self.blob_size(name, digest)?;
        self.small_blobs.invalidate(name);
        let link = paths::layer_link(name, digest);
        let dir = link.trim_end_matches("/link");
        Ok(self.driver.delete(dir)?)
    }
}

/// State of one streamed download.
struct Download {
    /// `None` while a read is in flight (the reader is on the blocking pool).
    reader: Option<Box<dyn BlobReader>>,
    remaining: u64,
    /// Permits for the blocking read.
    io: Arc<tokio::sync::Semaphore>,
    /// The slot and its read-ahead budget, held until the stream is dropped.
    _slot: DownloadSlot,
}

impl Download {
    /// Reads the next chunk; called only when the consumer asks for it, so the previous chunk
    /// has been handed on (hyper polls again once its write buffer has room).
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        if self.remaining == 0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // at most DOWNLOAD_CHUNK_BYTES
        let want = self.remaining.min(DOWNLOAD_CHUNK_BYTES) as usize;
        let mut buf = match ChunkBuf::new(want) {
            Ok(b) => b,
            Err(e) => {
                self.remaining = 0;
                return Some((Err(e), self));
            }
        };
        // Data already in memory is read here, without a blocking-pool round trip.
        match self.reader.as_mut()?.read_now(buf.as_mut()) {
            Some(Ok(n)) if n > 0 => {
                self.remaining -= n as u64;
                return Some((Ok(buf.into_bytes(n)), self));
            }
            Some(Err(e)) => {
                self.remaining = 0;
                return Some((Err(e), self));
            }
            // The end, or it would block: the blocking read below settles it, into `buf`.
            Some(Ok(_)) | None => {}
        }
        let io = self.io.clone().acquire_owned().await.ok()?;
        let mut reader = self.reader.take()?;
        let read = tokio::task::spawn_blocking(move || {
            let mut filled = 0;
            while filled < want {
                match reader.read(&mut buf.as_mut()[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return (reader, Err(e)),
                }
            }
            (reader, Ok(buf.into_bytes(filled)))
        })
        .await;
        // Released once the task is done, so the next read finds its thread idle.
        drop(io);
        let (reader, data) = match read {
            Ok(pair) => pair,
            Err(join) => {
                self.remaining = 0;
                return Some((Err(std::io::Error::other(join)), self));
            }
        };
        self.reader = Some(reader);
        match data {
            Ok(d) if d.is_empty() => {
                self.remaining = 0;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob is shorter than its recorded size",
                    )),
                    self,
                ))
            }
            Ok(d) => {
                self.remaining -= d.len() as u64;
                Some((Ok(d), self))
            }
            Err(e) => {
                self.remaining = 0;
                Some((Err(e), self))
            }
        }
    }
}
