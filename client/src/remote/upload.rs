//! Writes: cross-repository mounts (end-11), blob uploads (end-4a/4b, end-5, end-6) and manifest
//! PUTs (end-7). All use a `repository:<repo>:pull,push` scope. Blobs are streamed from their
//! file, never held in memory whole (except small ones, sent in one PUT).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use oci_spec::image::{Digest, DigestAlgorithm};
use reqwest::header::{HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::auth::Scope;
use super::client::{Client, Replay};
use super::error::{RemoteError, Result};
use super::fetch::{digest_of, DOCKER_CONTENT_DIGEST};

/// Blobs below this size go in one `PUT` after the `POST`.
pub const MONOLITHIC_MAX: u64 = 8 << 20;

/// Default size of each `PATCH` of a chunked upload (see `Client::set_upload_chunk_size`).
pub const CHUNK_SIZE: u64 = 64 << 20;

/// How often progress is reported while a chunk streams.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

fn octet_stream() -> HeaderValue {
    HeaderValue::from_static("application/octet-stream")
}

impl Client {
    /// Cross-repository mount: `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`.
    /// True when the registry mounted the blob (201). When it opened an upload session instead
    /// (202), the session is cancelled and the answer is false: upload the blob.
    ///
    /// # Errors
    /// Auth, transport and status errors.
    pub async fn mount(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
        let mut url = self.url(&format!("{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_ref())
            .append_pair("from", from);
        let scope = Scope::Mount {
            repo: repo.to_owned(),
            from: from.to_owned(),
        };
        let resp = self
            .send(&Method::POST, &url, &scope, Replay::Yes, |rb| {
                rb.header(CONTENT_LENGTH, 0)
            })
            .await?;
        let resp = self.check(&Method::POST, &url, resp).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        if let Ok(location) = self.location(&resp, &url) {
            // Best effort: an abandoned session expires on its own anyway.
            let cancel = self
                .send(&Method::DELETE, &location, &scope, Replay::Yes, |rb| rb)
                .await;
            if let Err(e) = cancel {
                tracing::debug!(%location, error = %e, "cannot cancel the upload session");
            }
        }
        Ok(false)
    }

    /// Uploads the blob at `path` (`size` bytes, `digest`): one `PUT` after the `POST` below
    /// [`MONOLITHIC_MAX`], else `PATCH`es of [`CHUNK_SIZE`] with `Content-Range` streamed from
    /// the file, then `PUT ?digest=`. `progress` gets the bytes sent so far. A retryable failure
    /// starts over with a new session, up to `max-download-attempts` times.
    ///
    /// # Errors
    /// The file cannot be read or has another size; auth, transport and status errors
    /// (`DIGEST_INVALID` when the content does not match `digest`).
    pub async fn upload(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let mut attempt = 1;
        let mut delay = Duration::from_millis(200);
        loop {
            match self.upload_once(repo, digest, size, path, progress).await {
                Err(e) if e.is_retryable() && attempt < self.inner.attempts => {
                    tracing::debug!(%digest, attempt, error = %e, "upload failed; starting over");
                    progress(0);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn upload_once(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let io_err = |source| RemoteError::Io {
            path: path.to_owned(),
            source,
        };
        let actual_size = tokio::fs::metadata(path).await.map_err(io_err)?.len();
        if actual_size != size {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the file has {actual_size} bytes, the blob {size}"),
            )));
        }
        let scope = Scope::Push(repo.to_owned());
        let start = self.url(&format!("{repo}/blobs/uploads/"))?;
        let resp = self
            .send(&Method::POST, &start, &scope, Replay::Yes, |rb| {
                rb.header(CONTENT_LENGTH, 0)
            })
            .await?;
        let resp = self.check(&Method::POST, &start, resp).await?;
        let mut location = self.location(&resp, &start)?;

        if size < MONOLITHIC_MAX {
            let data: Bytes = tokio::fs::read(path).await.map_err(io_err)?.into();
            let url = with_digest(location, digest);
            let resp = self
                .send(&Method::PUT, &url, &scope, Replay::Yes, |rb| {
                    rb.header(CONTENT_TYPE, octet_stream())
                        .header(CONTENT_LENGTH, data.len())
                        .body(data.clone())
                })
                .await?;
            self.finish(&url, resp, digest).await?;
            progress(size);
            return Ok(());
        }

        let chunk = self.inner.chunk_size.load(Ordering::Relaxed);
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let resp = self
                .patch_chunk(&location, &scope, path, offset, len, progress)
                .await?;
            let resp = self.check(&Method::PATCH, &location, resp).await?;
            if let Ok(next) = self.location(&resp, &location) {
                location = next;
            }
            offset += len;
            progress(offset);
        }
        let url = with_digest(location, digest);
        let resp = self
            .send(&Method::PUT, &url, &scope, Replay::No, |rb| {
                rb.header(CONTENT_LENGTH, 0)
            })
            .await?;
        self.finish(&url, resp, digest).await
    }

    /// One `PATCH` streaming `len` bytes of the file from `offset`, reporting progress.
    async fn patch_chunk(
        &self,
        location: &Url,
        scope: &Scope,
        path: &Path,
        offset: u64,
        len: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Response> {
        let io_err = |source| RemoteError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io_err)?;
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10).map(
            move |chunk| {
                if let Ok(c) = &chunk {
                    counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                chunk
            },
        );
        // The body can be built once: a streamed PATCH is never replayed.
        let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)));
        let range = format!("{offset}-{}", offset + len - 1);
        let request = self.send(&Method::PATCH, location, scope, Replay::No, |rb| {
            let rb = rb
                .header(CONTENT_TYPE, octet_stream())
                .header(CONTENT_RANGE, range.as_str())
                .header(CONTENT_LENGTH, len);
            match body.lock().expect("body lock").take() {
                Some(b) => rb.body(b),
                None => rb,
            }
        });
        tokio::pin!(request);
        let mut tick = tokio::time::interval(PROGRESS_TICK);
        loop {
            tokio::select! {
                r = &mut request => return r,
                _ = tick.tick() => progress(offset + sent.load(Ordering::Relaxed)),
            }
        }
    }

    /// Checks the final `PUT` of an upload (201, and `Docker-Content-Digest` when sent).
    async fn finish(&self, url: &Url, resp: Response, digest: &Digest) -> Result<()> {
        let resp = self.check(&Method::PUT, url, resp).await?;
        if let Some(announced) = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<Digest>().ok())
        {
            if announced.algorithm() == digest.algorithm() && &announced != digest {
                return Err(RemoteError::DigestMismatch {
                    url: url.to_string(),
                    expected: digest.clone(),
                    actual: announced,
                });
            }
        }
        Ok(())
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with `Content-Type: media_type`; returns the
    /// manifest's digest (checked against `Docker-Content-Digest` when the registry sends one).
    ///
    /// # Errors
    /// [`RemoteError::DigestMismatch`]; auth, transport and status errors (`MANIFEST_INVALID`,
    /// `MANIFEST_BLOB_UNKNOWN`, …).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let content_type =
            HeaderValue::from_str(media_type).map_err(|_| RemoteError::InvalidAddress {
                address: media_type.to_owned(),
                reason: "not a valid media type".into(),
            })?;
        let algorithm = reference
            .parse::<Digest>()
            .ok()
            .filter(|_| reference.contains(':'))
            .map_or(DigestAlgorithm::Sha256, |d| d.algorithm().clone());
        let digest = digest_of(&algorithm, &bytes, url.as_str())?;
        let resp = self
            .send(
                &Method::PUT,
                &url,
                &Scope::Push(repo.to_owned()),
                Replay::Yes,
                |rb| {
                    rb.header(CONTENT_TYPE, content_type.clone())
                        .header(CONTENT_LENGTH, bytes.len())
                        .body(bytes.clone())
                },
            )
            .await?;
        self.finish(&url, resp, &digest).await?;
        Ok(digest)
    }

    /// The `Location` of an upload response, resolved against the request URL.
    fn location(&self, resp: &Response, request: &Url) -> Result<Url> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RemoteError::InvalidResponse {
                url: request.to_string(),
                reason: format!("{} without a Location header", resp.status()),
            })?;
        request
            .join(loc)
            .or_else(|_| self.join(loc))
            .map_err(|_| RemoteError::InvalidResponse {
                url: request.to_string(),
                reason: format!("bad Location `{loc}`"),
            })
    }
}

fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", digest.as_ref());
    url
}
