//! The memory of the chunks blobs are streamed in ([`ChunkBuf`]): shared by local downloads
//! (`super::blob`) and the mirror's readers of a growing fill (`crate::mirror::fill_io`).
//!
//! May call nothing else of the crate.

use berth_config::registry_limits::DOWNLOAD_CHUNK_BYTES;
use bytes::Bytes;

/// One download chunk's memory: full-size chunks are anonymous mappings recycled through
/// [`IDLE_CHUNKS`], the tail of a blob an ordinary allocation.
///
/// Why not the heap: chunks allocated on the async threads' heaps stay in the process after a
/// burst of slow readers is gone (glibc keeps freed blocks there once its mmap threshold has
/// risen; 140 MB in `registry_hostile::slow_readers_keep_memory_and_threads_bounded`). Why
/// recycled: a fresh mapping per chunk costs its page faults and zeroing every time (measured:
/// 0.85 s of CPU per GiB served over TLS, against 0.37 s with reuse). Recycled, a chunk costs
/// neither; mappings beyond [`KEEP_IDLE`] are unmapped when their chunk has been sent, so the
/// memory goes back to the system.
pub(crate) enum ChunkBuf {
    /// A recycled mapping (back to the idle ones when dropped unused, too).
    Mapped(Recycled),
    /// An ordinary allocation.
    Heap(Vec<u8>),
}

/// The size of a recycled chunk.
#[allow(clippy::cast_possible_truncation)] // 128 KiB
pub(crate) const CHUNK: usize = DOWNLOAD_CHUNK_BYTES as usize;

/// Idle chunk mappings kept for reuse at most (8 MiB).
const KEEP_IDLE: usize = 64;

/// Mappings of sent chunks, ready for the next read.
static IDLE_CHUNKS: std::sync::Mutex<Vec<memmap2::MmapMut>> = std::sync::Mutex::new(Vec::new());

/// A chunk's mapping, back to [`IDLE_CHUNKS`] (or unmapped) when dropped: once the last
/// `Bytes` of a sent chunk is gone, or a buffer was not used.
pub(crate) struct Recycled(Option<memmap2::MmapMut>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            let mut idle = IDLE_CHUNKS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < KEEP_IDLE {
                idle.push(m);
            }
        }
    }
}

impl ChunkBuf {
    /// A buffer of `len` bytes (its contents are whatever it held before: only what a read
    /// puts there is ever handed on).
    pub(crate) fn new(len: usize) -> std::io::Result<Self> {
        if len != CHUNK {
            return Ok(Self::Heap(vec![0u8; len]));
        }
        let reused = IDLE_CHUNKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        Ok(Self::Mapped(Recycled(Some(match reused {
            Some(m) => m,
            None => memmap2::MmapMut::map_anon(len)?,
        }))))
    }

    /// The whole buffer, to read into.
    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Mapped(r) => r.0.as_deref_mut().unwrap_or_default(),
            Self::Heap(v) => v,
        }
    }

    /// The first `len` bytes, without a copy.
    pub(crate) fn into_bytes(self, len: usize) -> Bytes {
        match self {
            Self::Mapped(r) => Bytes::from_owner(r).slice(..len),
            Self::Heap(mut v) => {
                v.truncate(len);
                Bytes::from(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> usize {
        IDLE_CHUNKS.lock().unwrap().len()
    }

    /// Full-size chunks are recycled (a sent chunk's mapping serves the next read) and only the
    /// bytes a read filled are handed on, never what a recycled mapping held before.
    #[test]
    fn chunks_are_recycled_and_expose_only_what_was_read() {
        let full = DOWNLOAD_CHUNK_BYTES as usize;
        let mut a = ChunkBuf::new(full).unwrap();
        a.as_mut().fill(0xAA);
        let bytes = a.into_bytes(full);
        assert_eq!(bytes.len(), full);
        // A slice keeps the mapping alive (not recycled under it) after the chunk is dropped.
        let part = bytes.slice(10..20);
        drop(bytes);
        let mut other = ChunkBuf::new(full).unwrap();
        other.as_mut().fill(0x55);
        assert_eq!(&part[..], &[0xAA; 10]);
        drop(other);
        let before = idle();
        drop(part);
        assert_eq!(
            idle(),
            before + 1,
            "back for reuse once the last slice is gone"
        );
        // An unused buffer goes back too: the next one takes it, and gives it back.
        let before = idle();
        let unused = ChunkBuf::new(full).unwrap();
        assert_eq!(idle(), before - 1, "taken from the idle mappings");
        drop(unused);
        assert_eq!(idle(), before);

        let mut b = ChunkBuf::new(full).unwrap();
        b.as_mut()[..3].copy_from_slice(b"abc");
        let short = b.into_bytes(3);
        assert_eq!(&short[..], b"abc");
        drop(short);

        // The tail of a blob is an ordinary allocation.
        let mut t = ChunkBuf::new(100).unwrap();
        assert!(matches!(t, ChunkBuf::Heap(_)));
        t.as_mut()[..2].copy_from_slice(b"zz");
        assert_eq!(&t.into_bytes(2)[..], b"zz");

        // At most KEEP_IDLE mappings are kept.
        let many: Vec<Bytes> = (0..KEEP_IDLE + 10)
            .map(|_| ChunkBuf::new(full).unwrap().into_bytes(1))
            .collect();
        drop(many);
        assert!(idle() <= KEEP_IDLE);
    }
}
