//! Reads: `GET /v2/` (end-1), manifests (end-3), blobs (end-2), tags (end-8a/b), the catalog,
//! and Docker's v1 search. All use a `repository:<repo>:pull` scope.

use bytes::Bytes;
use oci_spec::image::{Digest, DigestAlgorithm};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK, RANGE,
};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::Digest as _;

use super::auth::Scope;
use super::client::Client;
use super::error::{RemoteError, Result};
use super::{BlobStream, Manifest, DEFAULT_ACCEPT, MAX_MANIFEST_SIZE};

/// The `Docker-Content-Digest` response header.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Most pages we follow in a paginated listing (a loop guard).
const MAX_PAGES: usize = 10_000;

/// One result of Docker's v1 search API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SearchResult {
    /// Repository name.
    pub name: String,
    /// Short description.
    #[serde(default)]
    pub description: String,
    /// Stars.
    #[serde(default)]
    pub star_count: u64,
    /// An official image.
    #[serde(default)]
    pub is_official: bool,
    /// An automated build (deprecated by Docker Hub).
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearchResult>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// The digest of `bytes` with `algorithm` (sha256 or sha512; others are unsupported).
pub(super) fn digest_of(algorithm: &DigestAlgorithm, bytes: &[u8], url: &str) -> Result<Digest> {
    let text = match algorithm {
        DigestAlgorithm::Sha256 => format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))),
        DigestAlgorithm::Sha512 => format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes))),
        DigestAlgorithm::Sha384 => format!("sha384:{}", hex::encode(sha2::Sha384::digest(bytes))),
        other => {
            return Err(RemoteError::InvalidResponse {
                url: url.to_owned(),
                reason: format!("unsupported digest algorithm `{other}`"),
            })
        }
    };
    Ok(text.parse().expect("a well-formed digest"))
}

fn header_digest(headers: &HeaderMap, url: &str) -> Result<Option<Digest>> {
    match headers.get(DOCKER_CONTENT_DIGEST) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<Digest>().ok())
            .map(Some)
            .ok_or_else(|| RemoteError::InvalidResponse {
                url: url.to_owned(),
                reason: "malformed Docker-Content-Digest header".into(),
            }),
    }
}

fn accept_header(accept: &[&str]) -> HeaderValue {
    let list = if accept.is_empty() {
        DEFAULT_ACCEPT
    } else {
        accept
    };
    HeaderValue::from_str(&list.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("*/*"))
}

/// The `<…>; rel="next"` target of a `Link` header.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(LINK) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                if let Some(t) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                    return Some(t.to_owned());
                }
            }
        }
    }
    None
}

/// Reads a body up to `limit` bytes.
async fn read_limited(mut resp: Response, limit: usize, url: &Url) -> Result<Bytes> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(RemoteError::InvalidResponse {
            url: url.to_string(),
            reason: format!("body larger than {limit} bytes"),
        });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|source| RemoteError::Transport {
            url: url.to_string(),
            source,
        })?
    {
        if out.len() + chunk.len() > limit {
            return Err(RemoteError::InvalidResponse {
                url: url.to_string(),
                reason: format!("body larger than {limit} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8], url: &Url) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| RemoteError::InvalidResponse {
        url: url.to_string(),
        reason: format!("invalid JSON: {e}"),
    })
}

impl Client {
    /// `GET /v2/`, authenticating as the registry asks (what `berth login` verifies with).
    ///
    /// # Errors
    /// [`RemoteError::Unauthorized`] when the credentials are refused; transport and status
    /// errors.
    pub async fn ping(&self) -> Result<()> {
        let url = self.url("")?;
        let resp = self
            .get(Method::GET, &url, &Scope::None, HeaderMap::new())
            .await?;
        self.check(&Method::GET, &url, resp).await.map(drop)
    }

    /// `GET /v2/<repo>/manifests/<reference>` accepting `accept` (or [`DEFAULT_ACCEPT`] when
    /// empty). The bytes are verified against `reference` when it is a digest and against
    /// `Docker-Content-Digest` when the registry sends one.
    ///
    /// # Errors
    /// [`RemoteError::NotFound`] (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`),
    /// [`RemoteError::DigestMismatch`], auth, transport and status errors.
    pub async fn manifest(&self, repo: &str, reference: &str, accept: &[&str]) -> Result<Manifest> {
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, accept_header(accept));
        let resp = self
            .get(Method::GET, &url, &Scope::Pull(repo.to_owned()), headers)
            .await?;
        let resp = self.check(&Method::GET, &url, resp).await?;
        let announced = header_digest(resp.headers(), url.as_str())?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, &url).await?;
        let requested: Option<Digest> = reference.parse().ok().filter(|_| reference.contains(':'));
        let mut digest = None;
        for expected in requested.iter().chain(announced.iter()) {
            let actual = digest_of(expected.algorithm(), &bytes, url.as_str())?;
            if &actual != expected {
                return Err(RemoteError::DigestMismatch {
                    url: url.to_string(),
                    expected: expected.clone(),
                    actual,
                });
            }
            digest.get_or_insert(actual);
        }
        let digest = match digest {
            Some(d) => d,
            None => digest_of(&DigestAlgorithm::Sha256, &bytes, url.as_str())?,
        };
        let media_type = match content_type {
            Some(t)
                if !matches!(
                    t.as_str(),
                    "" | "application/json" | "text/plain" | "application/octet-stream"
                ) =>
            {
                t
            }
            _ => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: digest, media type and size, `None` on 404.
    /// When the registry sends no `Docker-Content-Digest` for a tag, the manifest is fetched to
    /// compute it.
    ///
    /// # Errors
    /// Auth, transport and status errors other than 404.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<(Digest, String, u64)>> {
        let url = self.url(&format!("{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, accept_header(accept));
        let resp = self
            .get(Method::HEAD, &url, &Scope::Pull(repo.to_owned()), headers)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check(&Method::HEAD, &url, resp).await?;
        let h = resp.headers();
        let announced = header_digest(h, url.as_str())?;
        let requested: Option<Digest> = reference.parse().ok().filter(|_| reference.contains(':'));
        let media_type = h
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let size = h
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(a), Some(r)) = (&announced, &requested) {
            if a.algorithm() == r.algorithm() && a != r {
                return Err(RemoteError::DigestMismatch {
                    url: url.to_string(),
                    expected: r.clone(),
                    actual: a.clone(),
                });
            }
        }
        match (announced.or(requested), media_type, size) {
            (Some(d), Some(t), Some(s)) if !t.is_empty() && t != "application/json" => {
                Ok(Some((d, t, s)))
            }
            _ => {
                let m = self.manifest(repo, reference, accept).await?;
                Ok(Some((m.digest, m.media_type, m.bytes.len() as u64)))
            }
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: the size, `None` when the registry does not have it.
    ///
    /// # Errors
    /// Auth, transport and status errors other than 404.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("{repo}/blobs/{digest}"))?;
        let resp = self
            .get(
                Method::HEAD,
                &url,
                &Scope::Pull(repo.to_owned()),
                HeaderMap::new(),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check(&Method::HEAD, &url, resp).await?;
        Ok(Some(
            resp.headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// `GET /v2/<repo>/blobs/<digest>`, from `offset` (with `Range: bytes=offset-`) when it is
    /// above 0. Redirects to storage hosts are followed without our `Authorization`. A registry
    /// that answers 200 to a range request restarts from 0: see [`BlobStream::start`]. So does
    /// one that refuses the range (416: the caller's partial file reaches or passes the blob's
    /// end) or answers 206 from elsewhere: the blob is asked for again whole, and the caller,
    /// seeing `start` 0, throws its partial file away instead of failing on it for ever.
    ///
    /// # Errors
    /// [`RemoteError::NotFound`] (`BLOB_UNKNOWN`), auth, transport and status errors.
    pub async fn blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<BlobStream> {
        let url = self.url(&format!("{repo}/blobs/{digest}"))?;
        match self.blob_from(&url, repo, offset).await? {
            Ranged::Stream(s) => Ok(s),
            Ranged::Refused { url: at, reason } if offset > 0 => {
                tracing::debug!(%at, %digest, offset, "{reason}; downloading the blob whole");
                match self.blob_from(&url, repo, 0).await? {
                    Ranged::Stream(s) => Ok(s),
                    Ranged::Refused { url, reason } => {
                        Err(RemoteError::InvalidResponse { url, reason })
                    }
                }
            }
            Ranged::Refused { url, reason } => Err(RemoteError::InvalidResponse { url, reason }),
        }
    }

    /// One blob request from `offset`; a refused or mismatched range is [`Ranged::Refused`].
    async fn blob_from(&self, url: &Url, repo: &str, offset: u64) -> Result<Ranged> {
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ASCII header"),
            );
        }
        let resp = self
            .get(Method::GET, url, &Scope::Pull(repo.to_owned()), headers)
            .await?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            return Ok(Ranged::Refused {
                url: resp.url().to_string(),
                reason: format!("416 for a range from {offset}"),
            });
        }
        let resp = self.check(&Method::GET, url, resp).await?;
        let final_url = resp.url().to_string();
        let (start, total) = if resp.status() == StatusCode::PARTIAL_CONTENT {
            let range = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match range {
                Some((s, total)) if s == offset => (s, total),
                _ => {
                    return Ok(Ranged::Refused {
                        url: final_url,
                        reason: format!("206 without a Content-Range starting at {offset}"),
                    })
                }
            }
        } else {
            (0, resp.content_length())
        };
        Ok(Ranged::Stream(BlobStream {
            start,
            total,
            url: final_url,
            inner: Box::pin(resp.bytes_stream()),
        }))
    }

    /// `GET /v2/<repo>/tags/list`, following `Link` pagination.
    ///
    /// # Errors
    /// [`RemoteError::NotFound`] (`NAME_UNKNOWN`), auth, transport and status errors.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let first = self.url(&format!("{repo}/tags/list"))?;
        let scope = Scope::Pull(repo.to_owned());
        self.paginate(first, &scope, |bytes, url| {
            Ok(json::<TagList>(bytes, url)?.tags.unwrap_or_default())
        })
        .await
    }

    /// `GET /v2/_catalog`, following `Link` pagination.
    ///
    /// # Errors
    /// Auth, transport and status errors (registries may not offer a catalog: 404).
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let first = self.url("_catalog")?;
        self.paginate(first, &Scope::Catalog, |bytes, url| {
            Ok(json::<Catalog>(bytes, url)?
                .repositories
                .unwrap_or_default())
        })
        .await
    }

    async fn paginate<F>(&self, first: Url, scope: &Scope, parse: F) -> Result<Vec<String>>
    where
        F: Fn(&[u8], &Url) -> Result<Vec<String>>,
    {
        let mut out = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let resp = self.get(Method::GET, &url, scope, HeaderMap::new()).await?;
            let resp = self.check(&Method::GET, &url, resp).await?;
            let next = next_link(resp.headers());
            let bytes = read_limited(resp, 64 << 20, &url).await?;
            out.extend(parse(&bytes, &url)?);
            seen.insert(url.to_string());
            match next {
                Some(n) => {
                    let n = self.join(&n)?;
                    if seen.contains(n.as_str()) {
                        break;
                    }
                    url = n;
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Docker's `GET /v1/search?q=TERM&n=LIMIT` (Docker Hub's index for Docker Hub). `None` when
    /// the registry has no such API (404, 405, 501), as CNCF distribution and berth's own.
    ///
    /// # Errors
    /// Auth, transport and other status errors.
    pub async fn search_v1(&self, term: &str, limit: usize) -> Result<Option<Vec<SearchResult>>> {
        let mut url =
            self.inner
                .index
                .join("/v1/search")
                .map_err(|e| RemoteError::InvalidResponse {
                    url: self.inner.index.to_string(),
                    reason: e.to_string(),
                })?;
        url.query_pairs_mut()
            .append_pair("q", term)
            .append_pair("n", &limit.to_string());
        let resp = self
            .get(Method::GET, &url, &Scope::None, HeaderMap::new())
            .await?;
        if matches!(resp.status().as_u16(), 404 | 405 | 501) {
            return Ok(None);
        }
        let resp = self.check(&Method::GET, &url, resp).await?;
        let bytes = read_limited(resp, 16 << 20, &url).await?;
        Ok(Some(json::<SearchResponse>(&bytes, &url)?.results))
    }
}

/// What a blob request from an offset gave.
enum Ranged {
    /// The bytes, from where [`BlobStream::start`] says.
    Stream(BlobStream),
    /// The range was refused (416) or answered from elsewhere (206 with another start).
    Refused {
        /// The URL that answered.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// `bytes START-END/TOTAL` -> (START, TOTAL) (`*` total is `None`).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((start.trim().parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=b&n=2>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/a/tags/list?last=b&n=2"));
        h.insert(LINK, HeaderValue::from_static("<http://x/p>; rel=\"prev\""));
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn digests_of_bytes() {
        let d = digest_of(&DigestAlgorithm::Sha256, b"", "u").unwrap();
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_of(&DigestAlgorithm::Sha512, b"x", "u")
            .unwrap()
            .to_string()
            .starts_with("sha512:"));
    }
}
