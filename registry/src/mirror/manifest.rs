//! Manifests through the mirror: fetched once, stored byte-for-byte (so clients get the
//! upstream's digest), tags revalidated with `HEAD` at most once per `tag_recheck_secs`, digests
//! never revalidated, cached content served when the upstream is down or answers `429`/`5xx`
//! (stale-if-error), and misses remembered for a while (negative cache).

use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use oci_spec::image::Digest;

use super::upstream::{UpstreamError, MANIFEST_ACCEPT};
use super::{Mirror, MirrorError, Result, Target};
use crate::metrics::MirrorKind;
use crate::service::cache::Cached;
use crate::service::{paths, ServiceError};

const KNOWN: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl Mirror {
    /// The manifest `reference` (tag or digest) of `t`, from the cache or the upstream.
    ///
    /// # Errors
    /// Upstream failures with nothing cached, bad content, a remembered miss.
    pub async fn manifest(self: &Arc<Self>, t: &Target, reference: &str) -> Result<Arc<Cached>> {
        let key = (t.repo.clone(), reference.to_owned());
        // Fast path: a digest, or a tag confirmed within the interval.
        if let Ok(c) = self.store.get_manifest(&t.repo, reference) {
            let fresh = reference.contains(':')
                || self
                    .checked
                    .lock()
                    .expect("lock")
                    .get(&key)
                    .is_some_and(|at| at.elapsed() < t.upstream.tag_recheck);
            if fresh {
                self.touched(t, &c.digest);
                hit(t);
                return Ok(c);
            }
        }
        // One upstream exchange per (repository, reference) at a time: concurrent clients wait
        // for it and then find its answer in the cache (or the negative cache).
        let lock = {
            let mut inflight = self.inflight.lock().expect("lock");
            if inflight.len() > 10_000 {
                inflight.retain(|_, l| Arc::strong_count(l) > 1);
            }
            inflight.entry(key).or_default().clone()
        };
        let _turn = lock.lock().await;
        self.manifest_locked(t, reference).await
    }

    async fn manifest_locked(self: &Arc<Self>, t: &Target, reference: &str) -> Result<Arc<Cached>> {
        let by_digest = reference.contains(':');
        let cached = match self.store.get_manifest(&t.repo, reference) {
            Ok(c) => Some(c),
            Err(ServiceError::ManifestUnknown { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let key = (t.repo.clone(), reference.to_owned());
        if let Some(c) = &cached {
            let fresh = by_digest
                || self
                    .checked
                    .lock()
                    .expect("lock")
                    .get(&key)
                    .is_some_and(|at| at.elapsed() < t.upstream.tag_recheck);
            if fresh {
                self.touched(t, &c.digest);
                hit(t);
                return Ok(c.clone());
            }
            // A cached tag due for revalidation: HEAD (free on Docker Hub's pull limit).
            match self.head(t, reference).await {
                Ok(Some(d)) if d == c.digest => {
                    self.confirmed(&key);
                    self.touched(t, &c.digest);
                    hit(t);
                    return Ok(c.clone());
                }
                Ok(_) => {} // moved (or no digest header): fetch below
                Err(e) if e.is_unavailable() => {
                    hit(t);
                    return Ok(self.stale(t, reference, c, &e));
                }
                Err(UpstreamError::NotFound { .. }) => {
                    self.forget_tag(t, reference);
                    return Err(self.remember(
                        t,
                        reference,
                        true,
                        &UpstreamError::NotFound {
                            registry: t.upstream.registry.clone(),
                            what: format!("{}:{reference}", t.remote),
                        },
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        } else if let Some(miss) = self.remembered(t, reference) {
            return Err(miss);
        }
        let fetched = self.fetch(t, reference).await;
        if cached.is_none() || fetched.is_ok() {
            crate::metrics::global().mirror_miss(&t.upstream.registry, MirrorKind::Manifest);
        }
        match fetched {
            Ok(entry) => {
                if !by_digest {
                    self.confirmed(&key);
                }
                Ok(entry)
            }
            Err(MirrorError::Upstream(e)) if e.is_unavailable() => match &cached {
                Some(c) => {
                    hit(t);
                    Ok(self.stale(t, reference, c, &e))
                }
                None => Err(self.remember(t, reference, false, &e)),
            },
            Err(MirrorError::Upstream(e @ UpstreamError::NotFound { .. })) => {
                Err(self.remember(t, reference, true, &e))
            }
            Err(e) => Err(e),
        }
    }

    /// `HEAD` of a manifest nothing is cached for: asked of the upstream with `HEAD` (which
    /// Docker Hub does not count against pull limits) and answered from its headers, caching
    /// nothing. The upstream is asked with every manifest type (so a 404 means "not there"),
    /// and its answer is used only when the client accepts the type it names. `Ok(None)` when
    /// something is cached, the client did not list the type (an index to a client that wants
    /// a manifest: the `GET` path negotiates), or the upstream's answer lacks a digest or a
    /// length: the caller then takes the `GET` path.
    ///
    /// # Errors
    /// Upstream failures; a remembered miss.
    pub async fn head_uncached(
        &self,
        t: &Target,
        reference: &str,
        client_accepts: &[String],
    ) -> Result<Option<UpstreamHead>> {
        match self.store.get_manifest(&t.repo, reference) {
            Err(ServiceError::ManifestUnknown { .. }) => {}
            Ok(_) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if let Some(miss) = self.remembered(t, reference) {
            return Err(miss);
        }
        if client_accepts.is_empty() {
            return Ok(None);
        }
        let h = match self.head_headers(t, reference).await {
            Ok(h) => h,
            Err(e @ UpstreamError::NotFound { .. }) => {
                return Err(self.remember(t, reference, true, &e))
            }
            Err(e) if e.is_unavailable() => return Err(self.remember(t, reference, false, &e)),
            Err(e) => return Err(e.into()),
        };
        let digest = announced_digest(&h);
        let length: Option<u64> = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let media_type = content_type(&h)
            .filter(|c| KNOWN.contains(&c.as_str()))
            .filter(|c| client_accepts.iter().any(|a| a == c || a == "*/*"));
        Ok(match (digest, length, media_type) {
            (Some(digest), Some(length), Some(media_type)) => {
                crate::metrics::global().mirror_miss(&t.upstream.registry, MirrorKind::Manifest);
                Some(UpstreamHead {
                    digest,
                    length,
                    media_type,
                })
            }
            _ => None,
        })
    }

    /// Records a use of a cached manifest for eviction.
    fn touched(&self, t: &Target, digest: &Digest) {
        if self.lru.touch_manifest(&t.repo, digest) {
            super::evict::persist_use(self, &t.repo, digest);
        }
    }

    /// Serves `c` although the upstream failed, and says so.
    fn stale(
        &self,
        t: &Target,
        reference: &str,
        c: &Arc<Cached>,
        e: &UpstreamError,
    ) -> Arc<Cached> {
        tracing::warn!(
            upstream = %t.upstream.registry,
            repo = %t.remote,
            reference,
            digest = %c.digest,
            error = %error_chain(e),
            "upstream unavailable: serving the cached manifest (stale-if-error)"
        );
        // Don't ask again for every request while it is down.
        self.confirmed(&(t.repo.clone(), reference.to_owned()));
        c.clone()
    }

    fn confirmed(&self, key: &(String, String)) {
        self.checked
            .lock()
            .expect("lock")
            .insert(key.clone(), Instant::now());
    }

    fn remembered(&self, t: &Target, reference: &str) -> Option<MirrorError> {
        let ttl = Mirror::negative_ttl(t);
        let mut neg = self.negative.lock().expect("lock");
        let key = (t.repo.clone(), reference.to_owned());
        match neg.get(&key) {
            Some((at, what, not_found)) if at.elapsed() < ttl => Some(MirrorError::Negative {
                what: what.clone(),
                secs: ttl.as_secs(),
                not_found: *not_found,
            }),
            Some(_) => {
                neg.remove(&key);
                None
            }
            None => None,
        }
    }

    fn remember(
        &self,
        t: &Target,
        reference: &str,
        not_found: bool,
        e: &UpstreamError,
    ) -> MirrorError {
        let what = error_chain(e);
        let mut neg = self.negative.lock().expect("lock");
        if neg.len() > 100_000 {
            neg.clear();
        }
        neg.insert(
            (t.repo.clone(), reference.to_owned()),
            (Instant::now(), what, not_found),
        );
        drop(neg);
        if !not_found {
            tracing::warn!(upstream = %t.upstream.registry, repo = %t.remote, reference, error = %error_chain(e), "upstream unavailable and nothing cached");
        }
        MirrorError::Upstream(clone_error(e))
    }

    fn forget_tag(&self, t: &Target, tag: &str) {
        let _ = self.store.driver.delete(&paths::tag_dir(&t.repo, tag));
        self.store.manifests.invalidate(&t.repo);
    }

    /// `HEAD` of a manifest upstream: its digest, if the upstream says.
    async fn head(
        &self,
        t: &Target,
        reference: &str,
    ) -> std::result::Result<Option<Digest>, UpstreamError> {
        Ok(announced_digest(&self.head_headers(t, reference).await?))
    }

    /// `HEAD` of a manifest upstream with every manifest type accepted: its headers.
    async fn head_headers(
        &self,
        t: &Target,
        reference: &str,
    ) -> std::result::Result<HeaderMap, UpstreamError> {
        let resp = t
            .upstream
            .send(
                Method::HEAD,
                &t.remote,
                &format!("manifests/{reference}"),
                &accept(),
            )
            .await?;
        check_status(t, resp.status(), &format!("{}:{reference}", t.remote))?;
        Ok(resp.headers().clone())
    }

    /// `GET` of a manifest upstream; verified and stored before it is returned.
    async fn fetch(&self, t: &Target, reference: &str) -> Result<Arc<Cached>> {
        let what = format!("{}:{reference}", t.remote);
        let resp = t
            .upstream
            .send(
                Method::GET,
                &t.remote,
                &format!("manifests/{reference}"),
                &accept(),
            )
            .await?;
        check_status(t, resp.status(), &what)?;
        let bad = |reason: String| {
            UpstreamError::BadContent {
                registry: t.upstream.registry.clone(),
                what: what.clone(),
                reason,
            }
            .counted()
        };
        let content_type = content_type(resp.headers());
        let announced = announced_digest(resp.headers());
        let limit = self.store.config().max_manifest_bytes;
        let bytes: Bytes = super::upstream::body_within(resp, limit)
            .await
            .map_err(|source| {
                UpstreamError::Unreachable {
                    registry: t.upstream.registry.clone(),
                    source,
                }
                .counted()
            })?
            .ok_or_else(|| bad(format!("manifest is larger than {limit} bytes")))?;
        crate::metrics::global().mirror_upstream_bytes(&t.upstream.registry, bytes.len() as u64);
        let digest = if reference.contains(':') {
            let want = crate::digest::parse(reference).map_err(&bad)?;
            let got = crate::digest::of_bytes_like(&want, &bytes);
            if got != want {
                return Err(bad(format!("its bytes hash to {got}")).into());
            }
            want
        } else {
            let got = match &announced {
                Some(a) => crate::digest::of_bytes_like(a, &bytes),
                None => crate::digest::sha256(&bytes),
            };
            if let Some(a) = &announced {
                if *a != got {
                    return Err(bad(format!(
                        "its bytes hash to {got}, not {a} as its Docker-Content-Digest says"
                    ))
                    .into());
                }
            }
            got
        };
        let media_type = media_type(content_type.as_deref(), &bytes).map_err(bad)?;
        let refs = super::evict::references(&media_type, &bytes);
        // Content, then the links that make it visible (as a push).
        let store = &self.store;
        let blob = paths::blob_data(&digest);
        if !store.exists(&blob)? {
            store.driver.put(&blob, &bytes)?;
        }
        store.driver.put(
            &paths::revision_link(&t.repo, &digest),
            format!("{digest}\n{media_type}").as_bytes(),
        )?;
        if !reference.contains(':') {
            store.driver.put(
                &paths::tag_link(&t.repo, reference),
                digest.to_string().as_bytes(),
            )?;
        }
        store.manifests.invalidate(&t.repo);
        self.lru
            .add_manifest(&t.repo, &digest, bytes.len() as u64, refs);
        tracing::info!(upstream = %t.upstream.registry, repo = %t.remote, reference, %digest, "cached manifest from upstream");
        self.lru.enforce(self);
        Ok(Arc::new(Cached {
            digest,
            media_type,
            bytes,
        }))
    }
}

/// Counts a manifest answered from the cache.
fn hit(t: &Target) {
    crate::metrics::global().mirror_hit(&t.upstream.registry, MirrorKind::Manifest);
}

/// What an upstream `HEAD` of a manifest said.
#[derive(Debug, Clone)]
pub struct UpstreamHead {
    /// `Docker-Content-Digest`.
    pub digest: Digest,
    /// `Content-Length`.
    pub length: u64,
    /// `Content-Type`, one of the manifest types.
    pub media_type: String,
}

/// `Docker-Content-Digest`, when present and well formed.
fn announced_digest(h: &HeaderMap) -> Option<Digest> {
    h.get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// `Content-Type` without its parameters.
fn content_type(h: &HeaderMap) -> Option<String> {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
}

fn accept() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
    h
}

/// Maps upstream statuses onto errors; `Ok` for success.
pub(crate) fn check_status(
    t: &Target,
    status: StatusCode,
    what: &str,
) -> std::result::Result<(), UpstreamError> {
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::NOT_FOUND {
        return Err(UpstreamError::NotFound {
            registry: t.upstream.registry.clone(),
            what: what.to_owned(),
        }
        .counted());
    }
    Err(UpstreamError::Status {
        registry: t.upstream.registry.clone(),
        status: status.as_u16(),
        what: what.to_owned(),
    }
    .counted())
}

/// The manifest's media type: the upstream's `Content-Type` when it is a manifest type, else the
/// document's `mediaType`, else its shape. Schema 1 and non-JSON are refused.
fn media_type(content_type: Option<&str>, bytes: &[u8]) -> std::result::Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not JSON: {e}"))?;
    if v.get("schemaVersion").and_then(serde_json::Value::as_u64) != Some(2) {
        return Err("not a schema 2 / OCI manifest (schema 1 is not supported)".into());
    }
    if let Some(c) = content_type.filter(|c| KNOWN.contains(c)) {
        return Ok(c.to_owned());
    }
    if let Some(m) = v
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .filter(|m| KNOWN.contains(m))
    {
        return Ok(m.to_owned());
    }
    Ok(if v.get("manifests").is_some() {
        KNOWN[1].to_owned()
    } else {
        KNOWN[0].to_owned()
    })
}

/// `e` and its causes on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A copy of `e` for the client (transport errors are not `Clone`; their text is kept).
pub(crate) fn clone_error(e: &UpstreamError) -> UpstreamError {
    match e {
        UpstreamError::Unreachable { registry, .. } => UpstreamError::Status {
            registry: registry.clone(),
            status: 502,
            what: format!("the request ({})", error_chain(e)),
        },
        UpstreamError::Status {
            registry,
            status,
            what,
        } => UpstreamError::Status {
            registry: registry.clone(),
            status: *status,
            what: what.clone(),
        },
        UpstreamError::NotFound { registry, what } => UpstreamError::NotFound {
            registry: registry.clone(),
            what: what.clone(),
        },
        UpstreamError::Unauthorized { registry, reason } => UpstreamError::Unauthorized {
            registry: registry.clone(),
            reason: reason.clone(),
        },
        UpstreamError::BadContent {
            registry,
            what,
            reason,
        } => UpstreamError::BadContent {
            registry: registry.clone(),
            what: what.clone(),
            reason: reason.clone(),
        },
    }
}
