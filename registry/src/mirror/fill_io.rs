//! The byte-moving half of a fill: [`Writer`] hashes and writes what the upstream sends, and
//! [`tail`] streams the growing file to a client.
//!
//! Both keep the bytes out of the async threads and copy them as little as the kernel allows:
//! the writer hands whole batches of the upstream's `Bytes` to one blocking call that hashes and
//! writes each chunk in place (no staging buffer), and the next batch is received while the
//! previous one is written. Once written, a batch's chunks also stay in memory for a while
//! ([`Recent`], at most [`RECENT_BYTES`] per fill): readers that keep up with the fill, as
//! concurrent pulls of a cold image do, are handed those same `Bytes` (no copy, no read);
//! readers further behind read the file, one blocking call per chunk, straight into fresh,
//! uninitialised capacity. Called by `super::fill` only.

use std::io::{Read, Seek, Write};

use bytes::Bytes;
use futures_util::Stream;
use oci_spec::image::Digest;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fill::{Fill, FillError, FillState};
use crate::digest::Hasher;

/// Bytes received before a batch goes to the blocking pool (and, once written, to readers).
const FLUSH_BYTES: usize = 1024 * 1024;
/// Bytes a reader reads from the fill file at a time.
const READ_CHUNK: usize = 512 * 1024;

/// Bytes of a fill kept in memory after they are written. With `[cache] max_concurrent_fills`
/// (default 64) this bounds the memory at 64 × 2 MiB.
pub const RECENT_BYTES: usize = 2 * 1024 * 1024;

type Batch = std::io::Result<(std::fs::File, Hasher, Vec<Bytes>)>;

/// The last [`RECENT_BYTES`] (or a little more: whole chunks) written to a fill file.
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// File offset of the first chunk.
    start: u64,
    chunks: std::collections::VecDeque<Bytes>,
    len: usize,
}

impl Recent {
    /// Appends a chunk written at the end of the file; forgets the oldest past the bound.
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push_back(chunk);
        while self.len > RECENT_BYTES {
            let Some(old) = self.chunks.pop_front() else {
                break;
            };
            self.len -= old.len();
            self.start += old.len() as u64;
        }
    }

    /// Up to `max` bytes from file offset `pos`, without copying, when still in memory.
    fn slice(&self, pos: u64, max: usize) -> Option<Bytes> {
        let mut off = pos.checked_sub(self.start)?;
        for c in &self.chunks {
            let len = c.len() as u64;
            if off < len {
                #[allow(clippy::cast_possible_truncation)] // off < len <= usize::MAX
                let from = off as usize;
                let to = c.len().min(from.saturating_add(max));
                return Some(c.slice(from..to));
            }
            off -= len;
        }
        None
    }
}

/// Hashes and writes a fill's bytes in order, one batch in flight while the next is received.
pub(super) struct Writer {
    /// The file and hasher, when no batch is in flight.
    idle: Option<(std::fs::File, Hasher)>,
    inflight: Option<JoinHandle<Batch>>,
    batch: Vec<Bytes>,
    batch_len: usize,
}

impl Writer {
    pub(super) fn new(file: std::fs::File, hasher: Hasher) -> Self {
        Self {
            idle: Some((file, hasher)),
            inflight: None,
            batch: Vec::new(),
            batch_len: 0,
        }
    }

    /// Queues `chunk`; a full batch is handed to the blocking pool.
    pub(super) async fn push(&mut self, chunk: Bytes, fill: &Fill) -> Result<(), FillError> {
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= FLUSH_BYTES {
            self.dispatch(fill).await?;
        }
        Ok(())
    }

    /// Hands the queued bytes to the blocking pool and waits until everything is written
    /// (readers then see all of it).
    pub(super) async fn flush(&mut self, fill: &Fill) -> Result<(), FillError> {
        self.dispatch(fill).await?;
        self.settle(fill).await
    }

    /// Flushes; returns the file (for [`sync`]) and the digest of everything written.
    pub(super) async fn finish(
        mut self,
        fill: &Fill,
    ) -> Result<(std::fs::File, Digest), FillError> {
        self.flush(fill).await?;
        let (file, hasher) = self
            .idle
            .take()
            .ok_or_else(|| FillError::other("the fill writer was lost"))?;
        Ok((file, hasher.finish()))
    }

    /// Waits for the batch in flight (publishing its bytes to readers), then starts the next.
    async fn dispatch(&mut self, fill: &Fill) -> Result<(), FillError> {
        self.settle(fill).await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let (mut file, mut hasher) = self
            .idle
            .take()
            .ok_or_else(|| FillError::other("the fill writer was lost"))?;
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            for c in &batch {
                hasher.update(c);
                file.write_all(c)?;
            }
            Ok((file, hasher, batch))
        }));
        Ok(())
    }

    /// Waits for the batch in flight, if any, and tells readers about its bytes.
    async fn settle(&mut self, fill: &Fill) -> Result<(), FillError> {
        let Some(job) = self.inflight.take() else {
            return Ok(());
        };
        let (file, hasher, batch) = job
            .await
            .map_err(|e| FillError::other(e.to_string()))?
            .map_err(|e| FillError::other(format!("writing the fill file: {e}")))?;
        self.idle = Some((file, hasher));
        fill.state.send_modify(|s| {
            for c in batch {
                s.written += c.len() as u64;
                s.recent.push(c);
            }
        });
        Ok(())
    }
}

/// Makes a verified fill durable before it is published.
pub(super) async fn sync(file: std::fs::File) -> Result<(), FillError> {
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(|e| FillError::other(e.to_string()))?
        .map_err(|e| FillError::other(format!("syncing the fill file: {e}")))
}

/// Streams bytes `start..end` (`end` `None`: to the end of the blob) of a growing fill file,
/// keeping `hold` (the reader's download slot) until the stream is dropped.
pub fn tail<G: Send + 'static>(
    file: std::fs::File,
    state: watch::Receiver<FillState>,
    start: u64,
    end: Option<u64>,
    hold: G,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    struct Tail<G> {
        _hold: G,
        /// `None` while a read is on the blocking pool.
        file: Option<std::fs::File>,
        state: watch::Receiver<FillState>,
        pos: u64,
        end: Option<u64>,
        seeked: bool,
        finished: bool,
        /// Reads of what is already in memory, on this thread.
        now: crate::storage::fs::ReadNow,
    }
    fn fail<G>(mut t: Tail<G>, e: std::io::Error) -> Option<(std::io::Result<Bytes>, Tail<G>)> {
        t.finished = true;
        Some((Err(e), t))
    }
    let t = Tail {
        _hold: hold,
        file: Some(file),
        state,
        pos: start,
        end,
        seeked: false,
        finished: false,
        now: crate::storage::fs::ReadNow::default(),
    };
    futures_util::stream::unfold(t, |mut t| async move {
        if t.finished {
            return None;
        }
        loop {
            let (written, outcome, total) = {
                let s = t.state.borrow_and_update();
                (s.written, s.outcome.clone(), s.total)
            };
            if let Some(Err(e)) = outcome {
                return if t.end.is_some_and(|e| t.pos >= e) {
                    None
                } else {
                    fail(t, std::io::Error::other(e))
                };
            }
            let end = t.end.or(total).unwrap_or(u64::MAX);
            if t.pos >= end || (outcome.is_some() && t.pos >= written) {
                return None;
            }
            // The blob's last byte waits for the digest check: a client never receives a
            // whole blob that then turns out wrong.
            let verified = matches!(outcome, Some(Ok(())));
            let readable = match total {
                Some(n) if !verified => written.min(n.saturating_sub(1)),
                _ => written,
            };
            let avail = readable.min(end);
            if t.pos < avail {
                #[allow(clippy::cast_possible_truncation)]
                let want = (avail - t.pos).min(READ_CHUNK as u64) as usize;
                let in_memory = t.state.borrow().recent.slice(t.pos, want);
                if let Some(b) = in_memory {
                    t.pos += b.len() as u64;
                    // The file is read from `pos` on next time, wherever it was left.
                    t.seeked = false;
                    return Some((Ok(b), t));
                }
                // Written data is in the page cache: read it here when the kernel can say so
                // without blocking (a chunk of recycled memory, no blocking-pool round trip).
                if let Some(b) = read_now(&mut t.file, &mut t.now, t.pos, t.seeked, want) {
                    return match b {
                        Ok(b) => {
                            t.pos += b.len() as u64;
                            t.seeked = true;
                            Some((Ok(b), t))
                        }
                        Err(e) => fail(t, e),
                    };
                }
                let Some(mut file) = t.file.take() else {
                    return fail(t, std::io::Error::other("the fill reader was lost"));
                };
                let (pos, seek) = (t.pos, !t.seeked);
                let read = tokio::task::spawn_blocking(move || {
                    let r = (|| {
                        if seek {
                            file.seek(std::io::SeekFrom::Start(pos))?;
                        }
                        // Into spare capacity: `File` reads without zeroing it first.
                        let mut buf = Vec::with_capacity(want);
                        (&mut file).take(want as u64).read_to_end(&mut buf)?;
                        if buf.len() < want {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the fill file is shorter than its writer said",
                            ));
                        }
                        Ok(buf)
                    })();
                    (file, r)
                })
                .await;
                let (file, buf) = match read {
                    Ok(pair) => pair,
                    Err(e) => return fail(t, std::io::Error::other(e)),
                };
                t.file = Some(file);
                t.seeked = true;
                return match buf {
                    Ok(buf) => {
                        t.pos += buf.len() as u64;
                        Some((Ok(Bytes::from(buf)), t))
                    }
                    Err(e) => fail(t, e),
                };
            }
            if t.state.changed().await.is_err() {
                // The fill task is gone; its last state is final.
                let s = t.state.borrow().clone();
                if s.outcome.is_none() {
                    return fail(t, std::io::Error::other("the fill stopped"));
                }
            }
        }
    })
}

/// Up to `want` bytes from `pos` of the fill file, when they can be read without blocking
/// (`None`: read on the blocking pool). `seeked`: the file's offset is `pos` already.
fn read_now(
    file: &mut Option<std::fs::File>,
    now: &mut crate::storage::fs::ReadNow,
    pos: u64,
    seeked: bool,
    want: usize,
) -> Option<std::io::Result<Bytes>> {
    let file = file.as_mut()?;
    if !seeked {
        // A seek moves an offset; it never waits for the device.
        if let Err(e) = file.seek(std::io::SeekFrom::Start(pos)) {
            return Some(Err(e));
        }
    }
    let len = want.min(crate::service::chunk::CHUNK);
    let mut buf = match crate::service::chunk::ChunkBuf::new(len) {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    match now.read(file, buf.as_mut()) {
        Some(Ok(n)) if n > 0 => Some(Ok(buf.into_bytes(n))),
        Some(Err(e)) => Some(Err(e)),
        // Nothing now (or a file shorter than its writer said): the blocking read settles it
        // (the offset is still `pos`: nothing was read).
        Some(Ok(_)) | None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_last_bytes_at_their_offsets() {
        let mut r = Recent::default();
        let chunk = |b: u8| Bytes::from(vec![b; RECENT_BYTES / 2]);
        r.push(chunk(1));
        r.push(chunk(2));
        assert_eq!(r.slice(0, 4).unwrap().as_ref(), &[1, 1, 1, 1]);
        let half = (RECENT_BYTES / 2) as u64;
        assert_eq!(
            r.slice(half - 1, 2).unwrap().as_ref(),
            &[1],
            "within one chunk"
        );
        assert_eq!(r.slice(half, 3).unwrap().as_ref(), &[2, 2, 2]);
        r.push(chunk(3));
        assert!(r.slice(0, 1).is_none(), "the oldest chunk is gone");
        assert_eq!(r.slice(2 * half, 1).unwrap().as_ref(), &[3]);
        assert!(r.slice(3 * half, 1).is_none(), "not written yet");
    }
}
