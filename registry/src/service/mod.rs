//! Registry logic: blobs, upload sessions, manifests, tags and referrers.
//!
//! Takes byte streams and plain values, never axum types; calls only `crate::storage`. Errors are
//! [`ServiceError`], which `crate::api::error` maps onto the distribution-spec error table.
//!
//! Every write follows the same rule: content first (temp file, fsync, rename), the link that
//! makes it visible last. A crash at any point leaves either the old state or the new one.

pub mod blob;
pub mod cache;
pub mod chunk;
pub mod manifest;
pub mod paths;
pub mod slots;
pub mod tag;
pub mod upload;

use std::sync::Arc;

use berth_config::RegistryConfig;
use oci_spec::image::Digest;

use crate::storage::{StorageDriver, StorageError};

/// Result type of the service layer.
pub type Result<T> = std::result::Result<T, ServiceError>;

/// Everything the service layer can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The blob is not linked into the repository.
    #[error("{digest} is not in repository `{name}`")]
    BlobUnknown {
        /// Repository.
        name: String,
        /// Requested digest.
        digest: String,
    },
    /// No such upload session (or it belongs to another repository).
    #[error("upload session {session} is unknown; start a new upload with POST")]
    UploadUnknown {
        /// Session id.
        session: String,
    },
    /// A chunk did not start where the session ends, or its range disagrees with its length.
    #[error("{reason}")]
    RangeInvalid {
        /// What was wrong.
        reason: String,
        /// Bytes the session holds now.
        size: u64,
    },
    /// The client-supplied length does not match the bytes received.
    #[error("{reason}")]
    SizeInvalid {
        /// What was wrong.
        reason: String,
    },
    /// The uploaded content does not hash to the given digest, or a digest is malformed.
    #[error("{reason}")]
    DigestInvalid {
        /// What was wrong.
        reason: String,
    },
    /// The request body sent nothing for the body timeout.
    #[error("upload stalled: no data for {secs} s after {received} bytes; resume from the session's `Range`")]
    BodyTimeout {
        /// Bytes received before the stall.
        received: u64,
        /// The timeout.
        secs: u64,
    },
    /// Every slot for this kind of request is taken; the client should retry shortly.
    #[error("too many {what} in progress (limit {limit}); retry shortly")]
    Busy {
        /// `uploads` or `downloads`.
        what: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The request body ended early or could not be read.
    #[error("upload interrupted after {received} bytes")]
    BodyInterrupted {
        /// Bytes received before the failure.
        received: u64,
        /// What the transport reported.
        #[source]
        source: axum::Error,
    },
    /// The manifest is malformed or of an unsupported type.
    #[error("{reason}")]
    ManifestInvalid {
        /// What was wrong and what to do.
        reason: String,
    },
    /// The manifest exceeds the configured size limit.
    #[error("manifest is larger than the {limit}-byte limit")]
    ManifestTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A descriptor in the manifest points at content the repository does not have.
    #[error("{digest} is not in repository `{name}`; push it first")]
    ManifestBlobUnknown {
        /// Repository.
        name: String,
        /// Missing digest.
        digest: Digest,
    },
    /// No such manifest or tag.
    #[error("`{reference}` is not in repository `{name}`")]
    ManifestUnknown {
        /// Repository.
        name: String,
        /// Tag or digest asked for.
        reference: String,
    },
    /// The stored manifest's type is not acceptable to the client.
    #[error(
        "manifest {digest} is of type {media_type}, which the request's Accept header excludes"
    )]
    ManifestNotAcceptable {
        /// Digest of the stored manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// The repository does not exist.
    #[error("no repository `{name}`")]
    NameUnknown {
        /// Repository.
        name: String,
    },
    /// A tag does not match the spec's tag grammar.
    #[error("invalid tag `{tag}`: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    TagInvalid {
        /// The tag.
        tag: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Shared state of one registry instance.
pub struct Registry {
    pub(crate) driver: Arc<dyn StorageDriver>,
    pub(crate) config: RegistryConfig,
    pub(crate) uploads: upload::Sessions,
    /// The pull-through mirror (issue 10), set by `crate::app` when upstreams are configured.
    pub(crate) mirror: std::sync::OnceLock<Arc<crate::mirror::Mirror>>,
    pub(crate) manifests: cache::ContentCache,
    pub(crate) small_blobs: cache::ContentCache,
    pub(crate) slots: slots::Slots,
    /// Interlock with the GC sweeper (see `crate::gc::gate`).
    pub(crate) gc_gate: Arc<crate::gc::gate::Gate>,
    /// Notification outboxes, set by `crate::operate::instrument` when endpoints are configured.
    pub(crate) notifier: std::sync::OnceLock<Arc<crate::notify::Notifier>>,
}

impl Registry {
    /// A registry over `driver` configured by `config`.
    #[must_use]
    pub fn new(driver: Arc<dyn StorageDriver>, config: RegistryConfig) -> Self {
        let slots = slots::Slots::new(&config.limits);
        Self::with_slots(driver, config, slots)
    }

    /// A registry drawing on `slots` (shared with another registry over the same limits).
    #[must_use]
    pub fn with_slots(
        driver: Arc<dyn StorageDriver>,
        config: RegistryConfig,
        slots: slots::Slots,
    ) -> Self {
        Self {
            driver,
            slots,
            config,
            uploads: upload::Sessions::default(),
            mirror: std::sync::OnceLock::new(),
            manifests: cache::ContentCache::default(),
            small_blobs: cache::ContentCache::default(),
            gc_gate: Arc::default(),
            notifier: std::sync::OnceLock::new(),
        }
    }

    /// The GC interlock: writers that reference blobs go through it.
    #[must_use]
    pub fn gc_gate(&self) -> &crate::gc::gate::Gate {
        &self.gc_gate
    }

    /// Upload and download slots (see [`slots`]).
    #[must_use]
    pub fn slots(&self) -> &slots::Slots {
        &self.slots
    }

    /// The pull-through mirror, when upstreams are configured.
    #[must_use]
    pub fn mirror(&self) -> Option<&Arc<crate::mirror::Mirror>> {
        self.mirror.get()
    }

    /// The configuration this registry runs with.
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// True when `path` exists.
    pub(crate) fn exists(&self, path: &str) -> Result<bool> {
        match self.driver.stat(path) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists a directory, treating a missing one as empty.
    pub(crate) fn list_or_empty(&self, path: &str) -> Result<Vec<String>> {
        match self.driver.list(path) {
            Ok(v) => Ok(v),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}
