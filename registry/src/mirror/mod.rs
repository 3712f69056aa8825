//! Pull-through mirror (issue 10): one registry address that serves pushed repositories from
//! local storage and everything else from upstream registries, caching what it fetched.
//!
//! The mirror wraps the same services as local content (STYLE §8): its cache is a second
//! [`Registry`] whose driver is rooted at `<data_dir>/_mirror`, so manifests are stored and
//! served by the same code (byte-for-byte, with their media type) and blobs stream with the same
//! download path. Only the way content *arrives* differs: [`manifest`] fetches and verifies
//! manifests (tag revalidation, stale-if-error, negative cache), [`fill`] streams blobs from the
//! upstream into a temporary file that every concurrent client reads while it grows, and
//! [`evict`] keeps the cache under `[cache] max_bytes` / `max_age_secs`.
//!
//! Layout (inside the data directory, beside the local `blobs/` and `repositories/`, which the
//! mirror never writes; garbage collection of local content never sees it):
//!
//! ```text
//! _mirror/
//! ├── blobs/<alg>/<hh>/<hex>/data                              verified upstream content
//! ├── repositories/<registry>/<name>/_manifests/revisions/…    manifests seen through <name>
//! ├── repositories/<registry>/<name>/_manifests/tags/<t>/…     tag -> digest as last seen upstream
//! └── _fills/<alg>-<hex>-<uuid>                                blobs being downloaded
//! ```
//!
//! Routing (see [`Mirror::route`]): a name with a local repository is always local; otherwise
//! `?ns=<registry>` (containerd), a `/v2/<registry-host>/<repo>/…` prefix (Podman, CRI-O) or the
//! default upstream (Docker's `registry-mirrors`) picks the upstream. May call `crate::service`
//! and `crate::storage`; `crate::api::mirror` calls it.

pub mod evict;
pub mod fill;
mod fill_io;
pub mod manifest;
pub mod upstream;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_config::RegistryConfig;

use self::upstream::{Upstream, UpstreamError};
use crate::service::{paths, Registry, ServiceError};
use crate::storage::fs::FsDriver;
use crate::storage::StorageError;

/// Result type of the mirror.
pub type Result<T> = std::result::Result<T, MirrorError>;

/// What the mirror can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The upstream answered, or failed, in a way the client must hear about.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The cache store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A recent attempt failed the same way; the upstream is not asked again yet.
    #[error("{what} (remembered for {secs} s; the upstream is not asked again before then)")]
    Negative {
        /// The remembered failure.
        what: String,
        /// Seconds a miss is remembered.
        secs: u64,
        /// True when the upstream said "not found" (else: unreachable).
        not_found: bool,
    },
}

impl From<StorageError> for MirrorError {
    fn from(e: StorageError) -> Self {
        Self::Service(e.into())
    }
}

/// Where a mirrored request goes.
#[derive(Clone)]
pub struct Target {
    /// The upstream registry.
    pub upstream: Arc<Upstream>,
    /// Repository name on the upstream (`library/alpine`).
    pub remote: String,
    /// Repository name in the cache store (`docker.io/library/alpine`).
    pub repo: String,
}

/// `(cache repository, tag or digest)`.
pub(crate) type RepoRef = (String, String);

/// The mirror: upstreams, the cache store, blob fills in flight, caches of recent answers.
pub struct Mirror {
    pub(crate) upstreams: Vec<Arc<Upstream>>,
    /// The cache store: a registry on `<data_dir>/_mirror`.
    pub(crate) store: Registry,
    pub(crate) fills: fill::Fills,
    /// When each cached tag was last confirmed upstream.
    pub(crate) checked: Mutex<HashMap<(String, String), Instant>>,
    /// Recent misses: `(repo, reference)` -> (when, what, not-found).
    pub(crate) negative: Mutex<HashMap<RepoRef, (Instant, String, bool)>>,
    pub(crate) lru: evict::Lru,
    /// Manifest fetches in progress, one lock per `(repo, reference)`.
    pub(crate) inflight: Mutex<HashMap<RepoRef, Arc<tokio::sync::Mutex<()>>>>,
    /// Local repositories already reported as shadowing cached upstream content.
    shadowed: Mutex<HashSet<String>>,
    /// Names recently found to have no local repository: name -> (when, push generation).
    remote_names: Mutex<HashMap<String, (Instant, u64)>>,
    /// Bumped before and after every manifest push, so a name pushed since it was remembered as
    /// remote is looked up again at once.
    push_generation: AtomicU64,
    /// The last readiness probe of the upstreams, reused for [`READINESS_TTL`].
    readiness: tokio::sync::Mutex<Option<(Instant, Vec<Readiness>)>>,
}

/// How long a name found to have no local repository is routed without looking again. Pushes
/// invalidate it at once ([`Mirror::pushed`]); this bounds only other changes (a repository
/// directory appearing or going by other means).
pub const REMOTE_NAME_TTL: Duration = Duration::from_secs(1);

/// How long one probe of the upstreams answers `/readyz` (so that unauthenticated health
/// checks cannot turn into a flood of upstream requests).
pub const READINESS_TTL: Duration = Duration::from_secs(10);

/// Whether one upstream answered its probe.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    /// The `[[mirror]] registry`.
    pub registry: String,
    /// `None` when it answered; else why not.
    pub error: Option<String>,
}

/// Why the mirror could not start.
#[derive(Debug, thiserror::Error)]
pub enum MirrorSetupError {
    /// `_mirror` could not be created or read.
    #[error("cannot use the mirror cache directory")]
    Storage(#[from] StorageError),
    /// An upstream's password file or HTTP client could not be set up.
    #[error("cannot set up upstream `{registry}`: {reason}")]
    Upstream {
        /// The `[[mirror]] registry`.
        registry: String,
        /// What failed.
        reason: String,
    },
}

impl Mirror {
    /// The mirror of `config.mirrors`, or `None` when there are none.
    ///
    /// # Errors
    /// When the cache directory or an upstream's password file is unusable.
    pub fn from_config(
        config: &RegistryConfig,
        slots: crate::service::slots::Slots,
    ) -> std::result::Result<Option<Arc<Self>>, MirrorSetupError> {
        if config.mirrors.is_empty() {
            return Ok(None);
        }
        let driver = FsDriver::new(config.data_dir.join("_mirror"))?;
        let fill_dir = driver.root().join("_fills");
        let mut store_config = config.clone();
        store_config.mirrors.clear();
        store_config.sparse_manifests = true;
        let store = Registry::with_slots(Arc::new(driver), store_config, slots);
        let upstreams = config
            .mirrors
            .iter()
            .map(|m| Upstream::new(m).map(Arc::new))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let lru = evict::Lru::load(&store, config.cache)?;
        let mirror = Arc::new(Self {
            upstreams,
            store,
            fills: fill::Fills::new(
                fill_dir,
                config
                    .cache
                    .max_concurrent_fills
                    .unwrap_or(berth_config::registry_mirror::DEFAULT_MAX_CONCURRENT_FILLS),
            )?,
            checked: Mutex::default(),
            negative: Mutex::default(),
            lru,
            inflight: Mutex::default(),
            shadowed: Mutex::default(),
            remote_names: Mutex::default(),
            push_generation: AtomicU64::new(0),
            readiness: tokio::sync::Mutex::default(),
        });
        for u in &mirror.upstreams {
            tracing::info!(registry = %u.registry, url = %u.url, default = u.default, "mirroring upstream");
        }
        evict::spawn_age_sweeper(&mirror);
        Ok(Some(mirror))
    }

    /// Decides whether `name` (as in the request path) is mirrored, and from where.
    /// `None`: serve it locally.
    pub fn route(&self, local: &Registry, name: &str, ns: Option<&str>) -> Option<Target> {
        if !self.known_remote(name) {
            let generation = self.push_generation.load(Ordering::Acquire);
            if local.exists(&paths::manifests_dir(name)).unwrap_or(true) {
                return None;
            }
            self.remember_remote(name, generation);
        }
        let (upstream, remote) = if let Some(ns) = ns.filter(|n| !n.is_empty()) {
            let ns = normalize_registry(ns);
            (self.upstreams.iter().find(|u| u.registry == ns)?, name)
        } else if let Some((u, rest)) = name.split_once('/').and_then(|(host, rest)| {
            self.upstreams
                .iter()
                .find(|u| u.registry == normalize_registry(host))
                .map(|u| (u, rest))
        }) {
            (u, rest)
        } else {
            (self.upstreams.iter().find(|u| u.default)?, name)
        };
        let remote = if upstream.registry == "docker.io" && !remote.contains('/') {
            format!("library/{remote}")
        } else {
            remote.to_owned()
        };
        Some(Target {
            upstream: upstream.clone(),
            repo: format!("{}/{remote}", upstream.registry),
            remote,
        })
    }

    /// True when `name` was found to have no local repository within [`REMOTE_NAME_TTL`] and
    /// no manifest was pushed since.
    fn known_remote(&self, name: &str) -> bool {
        let generation = self.push_generation.load(Ordering::Acquire);
        self.remote_names
            .lock()
            .expect("lock")
            .get(name)
            .is_some_and(|(at, g)| *g == generation && at.elapsed() < REMOTE_NAME_TTL)
    }

    fn remember_remote(&self, name: &str, generation: u64) {
        let mut names = self.remote_names.lock().expect("lock");
        if names.len() >= 10_000 {
            names.retain(|_, (at, _)| at.elapsed() < REMOTE_NAME_TTL);
            if names.len() >= 10_000 {
                names.clear();
            }
        }
        names.insert(name.to_owned(), (Instant::now(), generation));
    }

    /// A manifest push finished (successfully or not): names remembered as remote are looked up
    /// again.
    pub fn pushed(&self) {
        self.push_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Logs once per name that a push to `name` makes a local repository shadowing content
    /// cached from an upstream under the same name.
    pub fn note_push(&self, local: &Registry, name: &str) {
        self.pushed();
        if local.exists(&paths::manifests_dir(name)).unwrap_or(true) {
            return;
        }
        let Some(t) = self.route(local, name, None) else {
            return;
        };
        if !self
            .store
            .exists(&paths::manifests_dir(&t.repo))
            .unwrap_or(false)
        {
            return;
        }
        if self.shadowed.lock().expect("lock").insert(name.to_owned()) {
            tracing::warn!(
                name,
                upstream = %t.upstream.registry,
                "push creates a local repository `{name}` that shadows the copy cached from {}; pulls of `{name}` now come from local storage only",
                t.upstream.registry
            );
        }
    }

    /// Probes every upstream (`GET /v2/`, any HTTP answer counts, 3 s each, all at once), or
    /// returns the last probe if it is younger than [`READINESS_TTL`].
    pub async fn readiness(&self) -> Vec<Readiness> {
        let mut last = self.readiness.lock().await;
        if let Some((at, r)) = &*last {
            if at.elapsed() < READINESS_TTL {
                return r.clone();
            }
        }
        let probes = self.upstreams.iter().map(|u| async move {
            Readiness {
                registry: u.registry.clone(),
                error: u.probe(Duration::from_secs(3)).await.err(),
            }
        });
        let r = futures_util::future::join_all(probes).await;
        *last = Some((Instant::now(), r.clone()));
        r
    }

    /// Blob fills in progress.
    #[must_use]
    pub fn fills_in_progress(&self) -> usize {
        self.fills.in_flight()
    }

    /// Bytes of upstream content in the cache.
    #[must_use]
    pub fn cached_bytes(&self) -> u64 {
        self.lru.total_bytes()
    }

    /// How long a miss is remembered for `t`'s upstream.
    pub(crate) fn negative_ttl(t: &Target) -> Duration {
        Duration::from_secs(t.upstream.tag_recheck.as_secs().clamp(1, 60))
    }
}

/// `index.docker.io` and friends are `docker.io`.
#[must_use]
pub fn normalize_registry(r: &str) -> String {
    let r = r.to_ascii_lowercase();
    match r.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => r,
    }
}
