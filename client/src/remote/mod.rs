//! The registry protocol (`specs/oci-distribution/spec.md`, `specs/distribution/spec-api.md`):
//! one [`Client`] per registry endpoint, with token and Basic authentication, retries with
//! backoff, digest verification of manifests, resumable blob downloads and streamed uploads,
//! and Docker-compatible credentials ([`Credentials`]).
//!
//! Pulls try `daemon.json` mirrors first ([`pull_endpoints`]); the upstream's credentials are
//! never sent to a mirror, and a registry's credentials or tokens never leave for another host
//! (blob redirects to storage go without `Authorization`).
//!
//! This module may use `berth-config` and the crate's [`crate::Hint`]; commands call it, it calls
//! no command.

mod auth;
pub mod certs;
mod client;
pub mod credentials;
mod endpoint;
pub mod error;
mod fetch;
mod upload;

use std::pin::Pin;
use std::task::{Context, Poll};

use berth_config::DaemonConfig;
use bytes::Bytes;
use futures_util::Stream;
use oci_spec::image::Digest;

pub use self::auth::Scope;
#[doc(hidden)] // for the fuzz target (registry/fuzz)
pub use self::auth::{parse_challenges, Challenge};
pub use self::client::Client;
pub use self::credentials::Credentials;
pub use self::endpoint::{canonical_registry, endpoint_name, pull_endpoints, Endpoint};
pub use self::error::{RemoteError, Result};
pub use self::fetch::{SearchResult, DOCKER_CONTENT_DIGEST};
pub use self::upload::{CHUNK_SIZE, MONOLITHIC_MAX};

/// Docker Hub as written in references.
pub const DOCKER_HUB: &str = "docker.io";

/// The host Docker Hub's registry API is served from.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// Docker Hub's index (the v1 search API).
pub const DOCKER_HUB_INDEX: &str = "index.docker.io";

/// Manifest media types accepted when the caller gives none: OCI and Docker, single and multi
/// platform.
pub const DEFAULT_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Largest manifest we read (the OCI spec has registries accept at least 4 MiB).
pub const MAX_MANIFEST_SIZE: usize = 8 << 20;

/// Whether `host` names Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`).
#[must_use]
pub fn is_docker_hub(host: &str) -> bool {
    matches!(
        host.to_ascii_lowercase().as_str(),
        DOCKER_HUB | DOCKER_HUB_INDEX | DOCKER_HUB_REGISTRY
    )
}

/// Everything a [`Client`] needs from the environment.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `daemon.json`: mirrors, insecure registries, attempts.
    pub daemon: DaemonConfig,
    /// Loaded registry credentials.
    pub credentials: Credentials,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
}

impl RemoteOptions {
    /// Options with the user's credentials (see [`Credentials::load`]) and berth's user agent.
    ///
    /// # Errors
    /// A credentials file that exists but cannot be read or parsed.
    pub fn load(daemon: &DaemonConfig) -> Result<Self> {
        Ok(Self::new(daemon, Credentials::load()?))
    }

    /// Options with the given credentials.
    #[must_use]
    pub fn new(daemon: &DaemonConfig, credentials: Credentials) -> Self {
        Self {
            daemon: daemon.clone(),
            credentials,
            user_agent: user_agent(),
        }
    }
}

/// `berth/<version>`.
#[must_use]
pub fn user_agent() -> String {
    concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned()
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes (their digest is [`Manifest::digest`]).
    pub bytes: Bytes,
    /// `Content-Type`, or the document's `mediaType` when the registry sent a generic type.
    pub media_type: String,
    /// The digest of `bytes`, verified against the reference and `Docker-Content-Digest`.
    pub digest: Digest,
}

/// A blob download in progress. The bytes are not verified here: hash them as they arrive.
pub struct BlobStream {
    /// Offset of the first byte the stream yields: the requested offset, or 0 when the registry
    /// ignored the `Range` header (then the caller must start over).
    pub start: u64,
    /// Size of the whole blob when the registry said (`Content-Range` or `Content-Length`).
    pub total: Option<u64>,
    url: String,
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("start", &self.start)
            .field("total", &self.total)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    /// The next chunk; `None` at the end. An error means the connection broke: download again
    /// from the offset reached.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The URL being downloaded (after redirects).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(source))) => Poll::Ready(Some(Err(RemoteError::Transport {
                url: self.url.clone(),
                source,
            }))),
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(b))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
