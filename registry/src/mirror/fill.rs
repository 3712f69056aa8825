//! Streaming, coalesced blob fills.
//!
//! The first request for a blob that is not cached starts one upstream `GET` in a task of its
//! own, which writes into `_mirror/_fills/<alg>-<hex>-<uuid>` and hashes as it goes. That client
//! and every concurrent client of the same blob (ranges included) read the growing file, waiting
//! on a watch channel for more bytes; nobody waits for the whole blob, and the upstream sees the
//! blob once. The task does not depend on any client, so the fill goes on when they disconnect.
//! A cut upstream connection is resumed with `Range: bytes=<written>-`. At the end the digest is
//! checked: on a match the file is renamed into `_mirror/blobs/…` (readers keep their open file);
//! on a mismatch it is deleted and every reader's stream ends with an error, so nothing wrong is
//! ever stored or served whole.
//!
//! Publishing and the lookup of a fill happen under one lock, so a request either finds the fill
//! (and opens its file while it still has that name) or finds the published blob. The bytes
//! themselves are hashed, written and read back in `super::fill_io`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use futures_util::StreamExt;
use oci_spec::image::Digest;
use tokio::sync::watch;

pub use super::fill_io::tail;
use super::fill_io::Writer;
use super::manifest::{check_status, error_chain};
use super::upstream::UpstreamError;
use super::{Mirror, Result, Target};
use crate::metrics::{self, MirrorKind};
use crate::service::{paths, ServiceError};
use crate::storage::StorageError;

/// Resumes of a cut upstream connection before the fill fails.
const MAX_RESUMES: u32 = 5;

/// Progress of one fill.
#[derive(Debug, Clone, Default)]
pub struct FillState {
    /// Bytes in the file, readable.
    pub written: u64,
    /// The blob's size, once the upstream said.
    pub total: Option<u64>,
    /// `Some` once finished: `Ok` published, `Err` why not.
    pub outcome: Option<std::result::Result<(), FillError>>,
    /// The last bytes written, still in memory: readers keeping up take them from here instead
    /// of reading the file back.
    pub recent: super::fill_io::Recent,
}

/// Why a fill failed, as its readers learn it.
#[derive(Debug, Clone)]
pub struct FillError {
    /// The upstream does not have the blob (the client gets `404 BLOB_UNKNOWN`).
    pub not_found: bool,
    /// The upstream is unreachable or answered 429/5xx (`503`).
    pub unavailable: bool,
    /// What happened.
    pub message: String,
}

impl FillError {
    pub(super) fn other(message: impl Into<String>) -> Self {
        Self {
            not_found: false,
            unavailable: false,
            message: message.into(),
        }
    }
}

impl From<UpstreamError> for FillError {
    fn from(e: UpstreamError) -> Self {
        Self {
            not_found: matches!(e, UpstreamError::NotFound { .. }),
            unavailable: e.is_unavailable(),
            message: error_chain(&e),
        }
    }
}

impl From<String> for FillError {
    fn from(message: String) -> Self {
        Self::other(message)
    }
}

impl std::error::Error for FillError {}

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One fill in progress.
pub struct Fill {
    path: PathBuf,
    pub(super) state: watch::Sender<FillState>,
}

/// Fills in progress, by digest.
pub struct Fills {
    dir: PathBuf,
    map: Mutex<HashMap<String, Arc<Fill>>>,
    /// Fills at once at most (`[cache] max_concurrent_fills`).
    max: usize,
}

impl Fills {
    /// Fills writing into `dir`; leftovers of a previous run are removed.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: PathBuf, max: u64) -> std::result::Result<Self, StorageError> {
        let _ = fs_err::remove_dir_all(&dir);
        fs_err::create_dir_all(&dir).map_err(|e| StorageError::io("_fills", e))?;
        Ok(Self {
            dir,
            map: Mutex::default(),
            max: usize::try_from(max).unwrap_or(usize::MAX),
        })
    }

    /// Number of fills in progress.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.map.lock().expect("fills lock").len()
    }
}

/// Where a mirrored blob is read from.
pub enum BlobSource {
    /// Published in the cache store.
    Stored(u64),
    /// Being filled: an open handle on the growing file and its progress.
    Filling {
        /// The fill's file, opened while it had that name.
        file: std::fs::File,
        /// Progress.
        state: watch::Receiver<FillState>,
    },
}

impl Mirror {
    /// Finds `digest` in the cache, or joins (or starts) its fill from `t`'s upstream.
    ///
    /// # Errors
    /// Storage failures.
    pub fn blob_source(self: &Arc<Self>, t: &Target, digest: &Digest) -> Result<BlobSource> {
        let key = digest.to_string();
        let mut map = self.fills.map.lock().expect("fills lock");
        if let Some(f) = map.get(&key) {
            if let Ok(file) = std::fs::File::open(&f.path) {
                metrics::global().mirror_miss(&t.upstream.registry, MirrorKind::Blob);
                return Ok(BlobSource::Filling {
                    file,
                    state: f.state.subscribe(),
                });
            }
        }
        match self.store.driver.stat(&paths::blob_data(digest)) {
            Ok(info) => {
                drop(map);
                self.lru.touch_blob(&key);
                metrics::global().mirror_hit(&t.upstream.registry, MirrorKind::Blob);
                return Ok(BlobSource::Stored(info.size));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if map.len() >= self.fills.max {
            return Err(ServiceError::Busy {
                what: "blob downloads from upstreams",
                limit: self.fills.max,
            }
            .into());
        }
        let path = self.fills.dir.join(format!(
            "{}-{}-{}",
            digest.algorithm().as_ref(),
            digest.digest(),
            uuid::Uuid::new_v4()
        ));
        let std_file = std::fs::File::create(&path).map_err(|e| StorageError::io("_fills", e))?;
        let reader = std::fs::File::open(&path).map_err(|e| StorageError::io("_fills", e))?;
        let (tx, rx) = watch::channel(FillState::default());
        let fill = Arc::new(Fill { path, state: tx });
        map.insert(key, fill.clone());
        drop(map);
        metrics::global().mirror_miss(&t.upstream.registry, MirrorKind::Blob);
        let mirror = self.clone();
        let t = t.clone();
        let digest = digest.clone();
        tokio::spawn(async move {
            let result = mirror.run_fill(&t, &digest, &fill, std_file).await;
            mirror.finish_fill(&t, &digest, &fill, result);
        });
        Ok(BlobSource::Filling {
            file: reader,
            state: rx,
        })
    }

    /// Size of an uncached blob, from the upstream (`HEAD`, no fill).
    ///
    /// # Errors
    /// Upstream failures.
    pub async fn blob_head(&self, t: &Target, digest: &Digest) -> Result<Option<u64>> {
        let resp = t
            .upstream
            .send(
                Method::HEAD,
                &t.remote,
                &format!("blobs/{digest}"),
                &HeaderMap::new(),
            )
            .await?;
        check_status(t, resp.status(), &format!("{}@{digest}", t.remote))?;
        Ok(resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Downloads into `file`, resuming cut connections, and checks the digest.
    async fn run_fill(
        &self,
        t: &Target,
        digest: &Digest,
        fill: &Fill,
        file: std::fs::File,
    ) -> std::result::Result<(), FillError> {
        let what = format!("{}@{digest}", t.remote);
        let hasher = crate::digest::Hasher::new(digest.algorithm()).ok_or_else(|| {
            FillError::other(format!(
                "unsupported digest algorithm {}",
                digest.algorithm()
            ))
        })?;
        let mut writer = Writer::new(file, hasher);
        // Bytes received and queued for writing (readers see them once written).
        let mut received: u64 = 0;
        let mut resumes = 0;
        loop {
            let mut headers = HeaderMap::new();
            if received > 0 {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes={received}-")) {
                    headers.insert(header::RANGE, v);
                }
            }
            let resp = t
                .upstream
                .send(Method::GET, &t.remote, &format!("blobs/{digest}"), &headers)
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e @ UpstreamError::Unreachable { .. })
                    if received > 0 && resumes < MAX_RESUMES =>
                {
                    resumes += 1;
                    tracing::warn!(%digest, received, error = %error_chain(&e), "upstream connection failed; resuming");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(resumes)))
                        .await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            check_status(t, resp.status(), &what)?;
            // A 200 to a ranged request resends from the start: skip what we have.
            let mut skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                0
            } else {
                received
            };
            if received == 0 || resp.status() != StatusCode::PARTIAL_CONTENT {
                if let Some(len) = resp.content_length() {
                    fill.state.send_modify(|s| s.total = Some(len));
                }
            }
            let mut body = resp.bytes_stream();
            let mut cut = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(mut c) => {
                        if skip > 0 {
                            #[allow(clippy::cast_possible_truncation)]
                            let n = skip.min(c.len() as u64) as usize;
                            c = c.slice(n..);
                            skip -= n as u64;
                        }
                        received += c.len() as u64;
                        metrics::global()
                            .mirror_upstream_bytes(&t.upstream.registry, c.len() as u64);
                        writer.push(c, fill).await?;
                    }
                    Err(e) => {
                        cut = Some(e);
                        break;
                    }
                }
            }
            writer.flush(fill).await?;
            let total = fill.state.borrow().total;
            if total.is_some_and(|n| received > n) {
                return Err(FillError::other(format!(
                    "upstream sent {received} bytes for a blob of {} bytes",
                    total.unwrap_or(0)
                )));
            }
            let short = total.is_some_and(|n| received < n);
            let why = match cut {
                None if !short => break,
                None => format!(
                    "the body ended after {received} of {} bytes",
                    total.unwrap_or(0)
                ),
                Some(e) => error_chain(&e),
            };
            metrics::global().mirror_upstream_error(&t.upstream.registry, "cut");
            if resumes >= MAX_RESUMES {
                return Err(FillError::other(format!(
                    "upstream connection cut after {received} bytes ({why}), {MAX_RESUMES} resumes failed"
                )));
            }
            resumes += 1;
            tracing::warn!(%digest, received, reason = why, "upstream connection cut mid-blob; resuming with Range");
        }
        let (file, got) = writer.finish(fill).await?;
        if got != *digest {
            metrics::global().mirror_upstream_error(&t.upstream.registry, "bad_content");
            return Err(FillError::other(format!(
                "upstream `{}` sent {received} bytes for {what} that hash to {got}; nothing was stored",
                t.upstream.registry
            )));
        }
        super::fill_io::sync(file).await
    }

    /// Publishes or discards the fill's file and tells its readers.
    fn finish_fill(
        &self,
        t: &Target,
        digest: &Digest,
        fill: &Fill,
        result: std::result::Result<(), FillError>,
    ) {
        let key = digest.to_string();
        let rel = fill
            .path
            .strip_prefix(self.fills.dir.parent().unwrap_or(&self.fills.dir))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut map = self.fills.map.lock().expect("fills lock");
        let result = result.and_then(|()| {
            self.store
                .driver
                .rename(&rel, &paths::blob_data(digest))
                .map_err(|e| FillError::other(error_chain(&e)))
        });
        map.remove(&key);
        drop(map);
        match &result {
            Ok(()) => {
                let size = fill.state.borrow().written;
                tracing::info!(upstream = %t.upstream.registry, repo = %t.remote, %digest, size, "cached blob from upstream");
                let _ = self.store.link_blob(&t.repo, digest);
                self.lru.add_blob(&key, size);
                self.lru.enforce(self);
            }
            Err(e) => {
                let reason = &e.message;
                let _ = fs_err::remove_file(&fill.path);
                tracing::warn!(upstream = %t.upstream.registry, repo = %t.remote, %digest, reason, "blob fill failed; nothing stored");
            }
        }
        fill.state.send_modify(|s| {
            s.outcome = Some(result);
            // Late readers read the file; the memory goes now, not with the last reader.
            s.recent = super::fill_io::Recent::default();
        });
    }
}

/// Waits until the fill knows the blob's size (or failed): `Some(size)`, `None` when the
/// upstream did not say.
///
/// # Errors
/// The fill's failure.
pub async fn wait_for_size(
    state: &mut watch::Receiver<FillState>,
) -> std::result::Result<Option<u64>, FillError> {
    loop {
        {
            let s = state.borrow_and_update();
            if let Some(total) = s.total {
                return Ok(Some(total));
            }
            match &s.outcome {
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(())) => return Ok(Some(s.written)),
                None if s.written > 0 => return Ok(None),
                None => {}
            }
        }
        if state.changed().await.is_err() {
            let s = state.borrow();
            return match &s.outcome {
                Some(Ok(())) => Ok(Some(s.written)),
                Some(Err(e)) => Err(e.clone()),
                None => Err(FillError::other("the fill stopped")),
            };
        }
    }
}
