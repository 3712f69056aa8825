//! Blob upload sessions (end-4 … end-6, end-11, end-13, end-14).
//!
//! A session is a directory under `_uploads/<uuid>/` holding `info` (repository, algorithm,
//! start time) and `data` (bytes received so far), so it survives a registry restart. The
//! running hash lives in memory; after a restart, or after a failed chunk, it is recomputed from
//! `data` on next use. Request bodies are read asynchronously, with a progress timeout
//! (`limits.body_timeout_secs`), and written in batches of about 1 MiB by short blocking calls:
//! no thread waits for a slow client, and memory per upload stays at two batches whatever the
//! blob size. Uploads in progress are capped (`limits.max_concurrent_uploads`, see
//! `super::slots`).
//!
//! A chunk is all-or-nothing: when its body ends early or disagrees with its `Content-Range`,
//! the file is cut back to where the chunk began. The blob becomes visible only after its digest
//! is verified, its data fsynced and renamed into `blobs/`, and the repository link written.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use super::{paths, Registry, Result, ServiceError};
use crate::digest::Hasher;
use crate::storage::{FileWriter, StorageError};

/// Open sessions with their in-memory hash state.
#[derive(Default)]
pub struct Sessions {
    map: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

struct Session {
    name: String,
    size: u64,
    /// Hash of `data[..size]`; `None` when it must be recomputed from disk.
    hasher: Option<Hasher>,
    algorithm: String,
    /// Set once the session is finished or cancelled; later requests see it as unknown.
    closed: bool,
}

#[derive(Serialize, Deserialize)]
struct Info {
    name: String,
    algorithm: String,
    started_unix: u64,
}

/// Bytes gathered from the request body before they are handed to the writer (memory per
/// upload is at most about twice this, plus hyper's read buffer).
const BATCH_BYTES: usize = 1 << 20;

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Session>>> {
        self.map.lock().expect("sessions lock").get(id).cloned()
    }

    fn insert(&self, id: &str, s: Session) -> Arc<tokio::sync::Mutex<Session>> {
        let mut map = self.map.lock().expect("sessions lock");
        map.entry(id.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(s)))
            .clone()
    }

    fn remove(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(id);
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Registry {
    /// Starts a session (end-4a/4c); returns its id.
    ///
    /// # Errors
    /// `DigestInvalid` for an unsupported `digest-algorithm`; storage failures.
    pub fn start_upload(&self, name: &str, algorithm: Option<&str>) -> Result<String> {
        let algorithm = algorithm.unwrap_or("sha256");
        let hasher = Hasher::from_name(algorithm).ok_or_else(|| ServiceError::DigestInvalid {
            reason: format!(
                "unsupported digest algorithm `{algorithm}`; supported: {}",
                crate::digest::SUPPORTED.join(", ")
            ),
        })?;
        let id = uuid::Uuid::new_v4().to_string();
        let info = Info {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            started_unix: now_unix(),
        };
        self.driver
            .writer(&paths::upload_data(&id), false)?
            .commit()?;
        self.driver.put(
            &paths::upload_info(&id),
            &serde_json::to_vec(&info).expect("serializable"),
        )?;
        self.uploads.insert(
            &id,
            Session {
                name: name.to_owned(),
                size: 0,
                hasher: Some(hasher),
                algorithm: algorithm.to_owned(),
                closed: false,
            },
        );
        Ok(id)
    }

    /// Finds a session of repository `name`, loading it from disk after a restart.
    fn session(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Session>>> {
        let unknown = || ServiceError::UploadUnknown {
            session: id.to_owned(),
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(unknown());
        }
        if let Some(s) = self.uploads.get(id) {
            return Ok(s);
        }
        let info: Info = match self.driver.get(&paths::upload_info(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| unknown())?,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let size = match self.driver.stat(&paths::upload_data(id)) {
            Ok(i) => i.size,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        Ok(self.uploads.insert(
            id,
            Session {
                name: info.name,
                size,
                hasher: None,
                algorithm: info.algorithm,
                closed: false,
            },
        ))
    }

    async fn locked_session(
        &self,
        name: &str,
        id: &str,
    ) -> Result<tokio::sync::OwnedMutexGuard<Session>> {
        let s = self.session(id)?.lock_owned().await;
        if s.closed || s.name != name {
            return Err(ServiceError::UploadUnknown {
                session: id.to_owned(),
            });
        }
        Ok(s)
    }

    /// Bytes received so far (end-13).
    ///
    /// # Errors
    /// `UploadUnknown`.
    pub async fn upload_status(&self, name: &str, id: &str) -> Result<u64> {
        Ok(self.locked_session(name, id).await?.size)
    }

    /// Appends a chunk (end-5). `range` is the request's `Content-Range` (inclusive), if any.
    /// Returns the session's new size.
    ///
    /// # Errors
    /// `Busy`, `UploadUnknown`, `RangeInvalid` (416), `BodyInterrupted`, `BodyTimeout`, storage
    /// failures (the session then stays at the size it had before this chunk).
    pub async fn append_upload<S>(
        &self,
        name: &str,
        id: &str,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, axum::Error>> + Send + Unpin,
    {
        let _slot = self.slots.upload()?;
        let mut s = self.locked_session(name, id).await?;
        self.write_chunk(id, &mut s, range, body).await?;
        Ok(s.size)
    }

    /// Closes a session (end-6): appends the optional final chunk, verifies `digest` over the
    /// whole upload, and publishes the blob in `name`. Returns the blob size.
    ///
    /// # Errors
    /// `UploadUnknown`, `RangeInvalid`, `DigestInvalid` (the session is then discarded), storage.
    pub async fn finish_upload<S>(
        &self,
        name: &str,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: Option<S>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, axum::Error>> + Send + Unpin,
    {
        let _slot = body.as_ref().map(|_| self.slots.upload()).transpose()?;
        let mut s = self.locked_session(name, id).await?;
        if let Some(body) = body {
            self.write_chunk(id, &mut s, range, body).await?;
        }
        let computed = match (&s.hasher, digest.algorithm().as_ref() == s.algorithm) {
            (Some(h), true) => h.clone().finish(),
            _ => {
                let (driver, path, size) = (self.driver.clone(), paths::upload_data(id), s.size);
                let hasher =
                    Hasher::new(digest.algorithm()).ok_or_else(|| ServiceError::DigestInvalid {
                        reason: format!("unsupported digest {digest}"),
                    })?;
                tokio::task::spawn_blocking(move || rehash(&*driver, &path, size, hasher)).await??
            }
        };
        if computed != *digest {
            s.closed = true;
            self.discard_session(id);
            return Err(ServiceError::DigestInvalid {
                reason: format!(
                    "upload has digest {computed} but the request named {digest}; nothing was stored"
                ),
            });
        }
        let driver = self.driver.clone();
        let (id_owned, name_owned, digest_owned) = (id.to_owned(), name.to_owned(), digest.clone());
        let gate = self.gc_gate.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            // Under the GC gate: the existence check and the link (see `crate::gc::gate`).
            gate.reference([&digest_owned], || -> Result<()> {
                let target = paths::blob_data(&digest_owned);
                match driver.stat(&target) {
                    // Same digest, same bytes: an earlier or concurrent upload already published it.
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {
                        driver.rename(&paths::upload_data(&id_owned), &target)?;
                    }
                    Err(e) => return Err(e.into()),
                }
                // Last: the link that makes the blob visible in the repository.
                let link = paths::layer_link(&name_owned, &digest_owned);
                driver.put(&link, digest_owned.to_string().as_bytes())?;
                Ok(())
            })
        })
        .await??;
        s.closed = true;
        self.discard_session(id);
        Ok(s.size)
    }

    /// Single-request upload (end-4b): a session that is started and finished at once.
    ///
    /// # Errors
    /// As [`Registry::finish_upload`].
    pub async fn upload_monolithic<S>(&self, name: &str, digest: &Digest, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, axum::Error>> + Send + Unpin,
    {
        let id = self.start_upload(name, Some(digest.algorithm().as_ref()))?;
        let result = self
            .finish_upload(name, &id, digest, None, Some(body))
            .await;
        if result.is_err() {
            self.discard_session(&id);
        }
        result
    }

    /// Cancels a session (end-14).
    ///
    /// # Errors
    /// `UploadUnknown`.
    pub async fn cancel_upload(&self, name: &str, id: &str) -> Result<()> {
        let mut s = self.locked_session(name, id).await?;
        s.closed = true;
        self.discard_session(id);
        Ok(())
    }

    fn discard_session(&self, id: &str) {
        self.uploads.remove(id);
        if let Err(e) = self.driver.delete(&paths::upload_dir(id)) {
            if !e.is_not_found() {
                tracing::warn!(session = id, error = %e, "could not remove upload session");
            }
        }
    }

    /// Removes sessions older than `max_age` that no request is using. Returns how many.
    ///
    /// # Errors
    /// Storage failures listing the sessions.
    pub fn purge_stale_uploads(&self, max_age: Duration) -> Result<usize> {
        let cutoff = now_unix().saturating_sub(max_age.as_secs());
        let mut purged = 0;
        for id in self.list_or_empty(paths::UPLOADS)? {
            let started = match self.driver.get(&paths::upload_info(&id)) {
                Ok(b) => serde_json::from_slice::<Info>(&b).map_or(0, |i| i.started_unix),
                // No info: a session being started right now (`start_upload` writes its data
                // file, then its info), or one a crash left half made. The directory's age
                // tells them apart; taking it for stale would pull a new session from under
                // its first request.
                Err(e) if e.is_not_found() => match self.driver.stat(&paths::upload_dir(&id)) {
                    Ok(dir) => dir
                        .modified
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                },
                Err(e) => return Err(e.into()),
            };
            if started > cutoff {
                continue;
            }
            if let Some(s) = self.uploads.get(&id) {
                let Ok(mut guard) = s.try_lock() else {
                    continue;
                };
                guard.closed = true;
            }
            self.discard_session(&id);
            purged += 1;
        }
        Ok(purged)
    }

    async fn write_chunk<S>(
        &self,
        id: &str,
        s: &mut Session,
        range: Option<(u64, u64)>,
        mut body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, axum::Error>> + Send + Unpin,
    {
        if let Some((start, end)) = range {
            if start != s.size || end < start {
                return Err(ServiceError::RangeInvalid {
                    reason: format!(
                        "Content-Range {start}-{end} does not continue the upload, which holds {} bytes; next chunk must start at {}",
                        s.size, s.size
                    ),
                    size: s.size,
                });
            }
        }
        let before = s.size;
        let path = paths::upload_data(id);
        let body_timeout = Duration::from_secs(self.config.limits.body_timeout_secs);
        let driver = self.driver.clone();
        let p = path.clone();
        let io = self.slots.write_io.clone();
        let permit = io.clone().acquire_owned().await.expect("never closed");
        let writer = tokio::task::spawn_blocking(move || {
            let _io = permit;
            driver.writer(&p, true)
        })
        .await??;
        let mut batcher = Batcher {
            io,
            writer: Some(writer),
            hasher: s.hasher.take(),
            pending: None,
            path: path.clone(),
        };
        let mut received: u64 = 0;
        let mut failure = None;
        // Frames arrive in whatever size the socket gives (often 8–64 KiB); gather about
        // BATCH_BYTES, then write them with one short blocking call while the next batch is
        // received. No thread waits for the network: a stalled client holds only its session.
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        loop {
            let chunk = match tokio::time::timeout(body_timeout, body.next()).await {
                Err(_) => {
                    failure = Some(ServiceError::BodyTimeout {
                        received,
                        secs: body_timeout.as_secs(),
                    });
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(source))) => {
                    failure = Some(ServiceError::BodyInterrupted { received, source });
                    break;
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            batch_bytes += chunk.len();
            batch.push(chunk);
            if batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                if let Err(e) = batcher.submit(std::mem::take(&mut batch)).await {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() && !batch.is_empty() {
            failure = batcher.submit(batch).await.err();
        }
        // Wait for the last write, then make the chunk durable.
        let written = match (batcher.finish().await, failure) {
            (Ok(pair), None) => Ok(pair),
            (Ok(_), Some(f)) => Err(f),
            // The body's own failure says more than the write that follows from it.
            (
                Err(_),
                Some(f @ (ServiceError::BodyInterrupted { .. } | ServiceError::BodyTimeout { .. })),
            ) => Err(f),
            (Err(e), _) => Err(e),
        };
        let failure = match written {
            Err(e) => Some(e),
            Ok((size, hasher)) => match range {
                Some((start, end)) if end - start + 1 != received => {
                    Some(ServiceError::RangeInvalid {
                        reason: format!(
                            "Content-Range {start}-{end} declares {} bytes but the body had {received}",
                            end - start + 1
                        ),
                        size: before,
                    })
                }
                _ => {
                    s.size = size;
                    s.hasher = hasher;
                    None
                }
            },
        };
        if let Some(err) = failure {
            // Undo the partial chunk so the session stays at a chunk boundary: its offset, its
            // file and its hash agree, and the client resumes from the `Range` it is given.
            s.hasher = None;
            s.size = before;
            let (driver, p) = (self.driver.clone(), path);
            if let Err(undo) =
                tokio::task::spawn_blocking(move || driver.truncate(&p, before)).await?
            {
                tracing::error!(session = id, error = %undo, "could not undo a failed chunk; the session is discarded");
                s.closed = true;
                self.discard_session(id);
            }
            return Err(err);
        }
        Ok(())
    }
}

/// Writes batches of one chunk on the blocking pool, one at a time, while the next batch is
/// received: each blocking call lasts one `writev` of about [`BATCH_BYTES`] and its hash.
struct Batcher {
    /// Permits for the blocking calls.
    io: Arc<tokio::sync::Semaphore>,
    writer: Option<Box<dyn FileWriter>>,
    hasher: Option<Hasher>,
    pending: Option<tokio::task::JoinHandle<WriteOutcome>>,
    path: String,
}

type WriteOutcome = (
    Box<dyn FileWriter>,
    Option<Hasher>,
    std::result::Result<(), StorageError>,
);

impl Batcher {
    /// Waits for the write in flight, if any; then the writer is back.
    async fn settle(&mut self) -> Result<()> {
        if let Some(job) = self.pending.take() {
            let (w, h, r) = job.await?;
            self.writer = Some(w);
            self.hasher = h;
            r?;
        }
        Ok(())
    }

    async fn submit(&mut self, batch: Vec<Bytes>) -> Result<()> {
        self.settle().await?;
        let mut w = self.writer.take().expect("writer is back after settle");
        let mut h = self.hasher.take();
        let path = self.path.clone();
        let permit = self.io.clone().acquire_owned().await.expect("never closed");
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let _io = permit;
            let r = write_batch(&mut *w, &batch).map_err(|e| StorageError::io(&path, e));
            if r.is_ok() {
                if let Some(h) = h.as_mut() {
                    for chunk in &batch {
                        h.update(chunk);
                    }
                }
            }
            (w, h, r)
        }));
        Ok(())
    }

    /// Waits for the last write and commits (fsync); returns the file size and the hash.
    async fn finish(mut self) -> Result<(u64, Option<Hasher>)> {
        self.settle().await?;
        let w = self.writer.take().expect("writer is back after settle");
        let size = w.size();
        let permit = self.io.clone().acquire_owned().await.expect("never closed");
        tokio::task::spawn_blocking(move || {
            let _io = permit;
            w.commit()
        })
        .await??;
        Ok((size, self.hasher))
    }
}

/// Writes every buffer of `batch`, with as few `writev` calls as the kernel allows.
fn write_batch(w: &mut dyn crate::storage::FileWriter, batch: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        batch.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = w.write_vectored(rest)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

fn rehash(
    driver: &dyn crate::storage::StorageDriver,
    path: &str,
    size: u64,
    mut hasher: Hasher,
) -> Result<Digest> {
    let mut reader = driver.reader(path, 0)?.take(size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| StorageError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}
