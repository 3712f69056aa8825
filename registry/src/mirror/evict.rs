//! Space for upstream content: `[cache] max_bytes` with least-recently-used eviction by
//! reference, and `max_age_secs`.
//!
//! The unit of eviction is a cached manifest seen through one repository (`repo`, digest). Each
//! unit knows the digests it references (config, layers, child manifests, itself). Evicting a
//! unit removes its revision and the cached tags pointing at it, then deletes only those of its
//! blobs that no remaining unit references: a blob shared with another cached image stays. Blobs
//! no manifest references (fetched by digest alone) are evicted by their own last use. Local
//! (pushed) content lives outside `_mirror/` and is never looked at. The image used most
//! recently is never evicted, so a pull in progress keeps its blobs even when one image is
//! larger than the cap. Last use is kept in memory and written to the revision link's
//! modification time at most every ten minutes, which is where a restart reads it from.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_config::registry_mirror::CacheConfig;
use oci_spec::image::Digest;

use super::Mirror;
use crate::service::{paths, Registry};
use crate::storage::StorageError;

struct Unit {
    last: SystemTime,
    /// When `last` was last written to the revision link's modification time.
    persisted: SystemTime,
    refs: Vec<String>,
}

/// How stale the on-disk last use (the revision link's mtime, read at start) may get.
const PERSIST_EVERY: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Inner {
    total: u64,
    blobs: HashMap<String, (u64, SystemTime)>,
    units: HashMap<(String, String), Unit>,
}

/// See the module docs.
pub struct Lru {
    cfg: CacheConfig,
    inner: Mutex<Inner>,
}

/// Digests a manifest or index references, itself excluded.
#[must_use]
pub fn references(_media_type: &str, bytes: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let digest_of = |d: &serde_json::Value| {
        d.get("digest")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if let Some(c) = v.get("config").and_then(digest_of) {
        out.push(c);
    }
    for key in ["layers", "manifests", "blobs"] {
        if let Some(list) = v.get(key).and_then(serde_json::Value::as_array) {
            out.extend(list.iter().filter_map(digest_of));
        }
    }
    out
}

impl Lru {
    /// Reads what the cache store holds.
    ///
    /// # Errors
    /// Storage failures.
    pub fn load(store: &Registry, cfg: CacheConfig) -> Result<Self, StorageError> {
        let mut inner = Inner::default();
        let list = |p: &str| store.list_or_empty(p).unwrap_or_default();
        for alg in list("blobs") {
            for hh in list(&format!("blobs/{alg}")) {
                for hex in list(&format!("blobs/{alg}/{hh}")) {
                    let path = format!("blobs/{alg}/{hh}/{hex}/data");
                    if let Ok(info) = store.driver.stat(&path) {
                        inner.total += info.size;
                        inner
                            .blobs
                            .insert(format!("{alg}:{hex}"), (info.size, info.modified));
                    }
                }
            }
        }
        let mut repos = Vec::new();
        walk(store, "repositories", "", &mut repos);
        for repo in repos {
            let dir = format!("repositories/{repo}/_manifests/revisions");
            for alg in list(&dir) {
                for hex in list(&format!("{dir}/{alg}")) {
                    let digest = format!("{alg}:{hex}");
                    let Ok(d) = digest.parse::<Digest>() else {
                        continue;
                    };
                    let Ok(info) = store.driver.stat(&paths::revision_link(&repo, &d)) else {
                        continue;
                    };
                    let bytes = store.driver.get(&paths::blob_data(&d)).unwrap_or_default();
                    let mut refs = references("", &bytes);
                    refs.push(digest.clone());
                    inner.units.insert(
                        (repo.clone(), digest),
                        Unit {
                            last: info.modified,
                            persisted: info.modified,
                            refs,
                        },
                    );
                }
            }
        }
        Ok(Self {
            cfg,
            inner: Mutex::new(inner),
        })
    }

    /// Bytes of upstream content held.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.inner.lock().expect("lru lock").total
    }

    /// Records a use; true when the caller should also persist it ([`persist_use`]).
    pub(crate) fn touch_manifest(&self, repo: &str, digest: &Digest) -> bool {
        let mut inner = self.inner.lock().expect("lru lock");
        let now = SystemTime::now();
        if let Some(u) = inner.units.get_mut(&(repo.to_owned(), digest.to_string())) {
            u.last = now;
            if now.duration_since(u.persisted).unwrap_or_default() > PERSIST_EVERY {
                u.persisted = now;
                return true;
            }
        }
        false
    }

    pub(crate) fn touch_blob(&self, digest: &str) {
        let mut inner = self.inner.lock().expect("lru lock");
        if let Some(b) = inner.blobs.get_mut(digest) {
            b.1 = SystemTime::now();
        }
    }

    pub(crate) fn add_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        mut refs: Vec<String>,
    ) {
        let key = digest.to_string();
        refs.push(key.clone());
        let mut inner = self.inner.lock().expect("lru lock");
        let now = SystemTime::now();
        if !inner.blobs.contains_key(&key) {
            inner.total += size;
            inner.blobs.insert(key.clone(), (size, now));
        }
        inner.units.insert(
            (repo.to_owned(), key),
            Unit {
                last: now,
                persisted: now,
                refs,
            },
        );
    }

    pub(crate) fn add_blob(&self, digest: &str, size: u64) {
        let mut inner = self.inner.lock().expect("lru lock");
        if inner
            .blobs
            .insert(digest.to_owned(), (size, SystemTime::now()))
            .is_none()
        {
            inner.total += size;
        }
    }

    /// Evicts until the cache fits `max_bytes` and nothing is older than `max_age_secs`.
    pub(crate) fn enforce(&self, mirror: &Mirror) {
        if self.cfg.max_bytes.is_none() && self.cfg.max_age_secs.is_none() {
            return;
        }
        let max_age = self.cfg.max_age_secs.map(Duration::from_secs);
        let now = SystemTime::now();
        let old =
            |t: SystemTime| max_age.is_some_and(|a| now.duration_since(t).unwrap_or_default() > a);
        let mut inner = self.inner.lock().expect("lru lock");
        loop {
            let over = self.cfg.max_bytes.is_some_and(|m| inner.total > m);
            let referenced: HashSet<&String> =
                inner.units.values().flat_map(|u| u.refs.iter()).collect();
            let newest = inner.units.values().map(|u| u.last).max();
            let unit = inner
                .units
                .iter()
                .filter(|(_, u)| Some(u.last) != newest || old(u.last))
                .min_by_key(|(_, u)| u.last)
                .map(|(k, u)| (k.clone(), u.last));
            let orphan = inner
                .blobs
                .iter()
                .filter(|(d, _)| !referenced.contains(d))
                .min_by_key(|(_, (_, t))| *t)
                .map(|(d, (_, t))| (d.clone(), *t));
            drop(referenced);
            let pick_unit = match (&unit, &orphan) {
                (Some((_, ut)), Some((_, bt))) => {
                    if over {
                        ut < bt
                    } else {
                        old(*ut) && (!old(*bt) || ut < bt)
                    }
                }
                (Some(_), None) => true,
                (None, _) => false,
            };
            if pick_unit {
                let ((repo, digest), last) = unit.expect("checked");
                if !over && !old(last) {
                    break;
                }
                let u = inner
                    .units
                    .remove(&(repo.clone(), digest.clone()))
                    .expect("present");
                remove_unit(mirror, &repo, &digest);
                let still: HashSet<String> = inner
                    .units
                    .values()
                    .flat_map(|u| u.refs.iter().cloned())
                    .collect();
                for r in u.refs.iter().filter(|r| !still.contains(*r)) {
                    if let Some((size, _)) = inner.blobs.remove(r) {
                        inner.total -= size;
                        remove_blob(mirror, r);
                    }
                }
                tracing::info!(repo, digest, total = inner.total, "evicted cached image");
            } else if let Some((d, t)) = orphan {
                if !over && !old(t) {
                    break;
                }
                if let Some((size, _)) = inner.blobs.remove(&d) {
                    inner.total -= size;
                    remove_blob(mirror, &d);
                    tracing::info!(digest = d, total = inner.total, "evicted cached blob");
                }
            } else {
                break;
            }
        }
    }
}

/// Rewrites a revision link so its modification time records the last use across restarts.
pub(crate) fn persist_use(mirror: &Mirror, repo: &str, digest: &Digest) {
    let link = paths::revision_link(repo, digest);
    if let Ok(bytes) = mirror.store.driver.get(&link) {
        let _ = mirror.store.driver.put(&link, &bytes);
    }
}

fn remove_unit(mirror: &Mirror, repo: &str, digest: &str) {
    let store = &mirror.store;
    let Ok(d) = digest.parse::<Digest>() else {
        return;
    };
    for tag in store
        .list_or_empty(&paths::tags_dir(repo))
        .unwrap_or_default()
    {
        if let Ok(target) = store.driver.get(&paths::tag_link(repo, &tag)) {
            if target.trim_ascii() == digest.as_bytes() {
                let _ = store.driver.delete(&paths::tag_dir(repo, &tag));
            }
        }
    }
    let _ = store.driver.delete(&paths::revision_dir(repo, &d));
    store.manifests.invalidate(repo);
}

fn remove_blob(mirror: &Mirror, digest: &str) {
    let Ok(d) = digest.parse::<Digest>() else {
        return;
    };
    let data = paths::blob_data(&d);
    let dir = data.trim_end_matches("/data");
    match mirror.store.driver.delete(dir) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => tracing::warn!(digest, error = %e, "cannot evict cached blob"),
    }
}

fn walk(store: &Registry, dir: &str, prefix: &str, out: &mut Vec<String>) {
    let children = store.list_or_empty(dir).unwrap_or_default();
    if children.iter().any(|c| c == "_manifests") {
        out.push(prefix.to_owned());
    }
    for child in children.iter().filter(|c| !c.starts_with('_')) {
        let name = if prefix.is_empty() {
            child.clone()
        } else {
            format!("{prefix}/{child}")
        };
        walk(store, &format!("{dir}/{child}"), &name, out);
    }
}

/// With `max_age_secs`, checks ages every minute (or sooner for short ages).
pub(crate) fn spawn_age_sweeper(mirror: &Arc<Mirror>) {
    let Some(age) = mirror.lru.cfg.max_age_secs else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(mirror);
    let every = Duration::from_secs((age / 4).clamp(1, 60));
    rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(m) = weak.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || m.lru.enforce(&m)).await;
        }
    });
}
