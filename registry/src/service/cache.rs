//! A bounded in-memory cache of small immutable content, keyed by (repository, reference):
//! resolved manifests, and small blobs.
//!
//! Manifest and small-blob GETs are the hottest reads a registry serves and their answers only
//! change when this process writes the repository, so writes invalidate the repository's entries. Entries are
//! immutable `Arc`s; the whole cache is cleared when it would grow past its byte budget, which
//! keeps memory bounded without LRU bookkeeping on the read path. One registry process owns a
//! data directory; sharing one between processes is not supported.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use oci_spec::image::Digest;

/// Content as served: its digest, media type and exact bytes.
#[derive(Debug)]
pub struct Cached {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Media type it was pushed with.
    pub media_type: String,
    /// The exact bytes pushed.
    pub bytes: Bytes,
}

/// Byte budget of the cache.
const MAX_BYTES: usize = 8 << 20;

#[derive(Default)]
struct Inner {
    map: HashMap<(String, String), Arc<Cached>>,
    bytes: usize,
}

/// See the module docs.
#[derive(Default)]
pub struct ContentCache {
    inner: RwLock<Inner>,
}

impl ContentCache {
    /// The cached entry for `reference` in `name`.
    pub fn get(&self, name: &str, reference: &str) -> Option<Arc<Cached>> {
        let inner = self.inner.read().expect("cache lock");
        inner
            .map
            .get(&(name.to_owned(), reference.to_owned()))
            .cloned()
    }

    /// Remembers an entry.
    pub fn insert(&self, name: &str, reference: &str, entry: Arc<Cached>) {
        let mut inner = self.inner.write().expect("cache lock");
        let size = entry.bytes.len() + name.len() + reference.len();
        if size > MAX_BYTES / 4 {
            return;
        }
        if inner.bytes + size > MAX_BYTES {
            inner.map.clear();
            inner.bytes = 0;
        }
        if inner
            .map
            .insert((name.to_owned(), reference.to_owned()), entry)
            .is_none()
        {
            inner.bytes += size;
        }
    }

    /// Forgets every entry of repository `name`.
    pub fn invalidate(&self, name: &str) {
        let mut inner = self.inner.write().expect("cache lock");
        let mut freed = 0;
        inner.map.retain(|(n, r), e| {
            let keep = n != name;
            if !keep {
                freed += e.bytes.len() + n.len() + r.len();
            }
            keep
        });
        inner.bytes -= freed;
    }
}
