//! Blobs as seen through a repository: existence, streaming reads, links, mounts and deletes.

use std::sync::Arc;

use bytes::Bytes;
use oci_spec::image::Digest;

use super::cache::Cached;
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
