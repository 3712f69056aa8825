//! Online garbage collection: mark, then sweep with a grace period, with a dry-run report.
//!
//! Owns deleting blob content. Calls `crate::service` (the registry's storage and its manifest
//! and tag operations) only; handlers reach it through [`run`] and [`Registry::gc_gate`].
//!
//! 1. **Begin**: the [`gate::Gate`] starts recording every digest that writers reference.
//! 2. **Mark** ([`mark`]): every repository, every manifest revision (tagged or not: untagged
//!    manifests are kept unless a `[[retention]]` rule removed them first), and what each
//!    reaches: config, layers, index children. Referrers are revisions too, so a kept manifest's
//!    referrers stay; retention never removes a manifest whose subject is kept.
//! 3. **Sweep**: a blob is deleted when it is unmarked, its content and every layer link to it
//!    are older than `[gc] grace_secs`, and the gate says no request referenced it during the run
//!    (or within the grace period). Each deletion runs under the gate's exclusive lock: layer
//!    links first, content last, so a crash leaves at worst content without links, which the
//!    next run deletes. Manifests and tags are never deleted here; every tag pulls after a
//!    `kill -9` at any point.
//!
//! Unfinished upload sessions are purged by age as before (`[uploads] max_age_secs`).

pub mod gate;
pub(crate) mod mark;
pub mod retention;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::service::{Registry, ServiceError};
use crate::storage::StorageError;

/// Result type of this module.
pub type Result<T> = std::result::Result<T, GcError>;

/// Why a GC run stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Storage failed.
    #[error("storage failed during garbage collection")]
    Storage(#[from] StorageError),
    /// A service operation (retention's tag and manifest deletes) failed.
    #[error("registry operation failed during garbage collection")]
    Service(#[from] ServiceError),
    /// A stored manifest cannot be parsed, so what it references is unknown; nothing is swept.
    #[error("manifest {digest} in `{repository}` cannot be parsed ({reason}); fix or delete it, nothing was swept")]
    Unreadable {
        /// Repository.
        repository: String,
        /// Manifest digest.
        digest: String,
        /// Parser message.
        reason: String,
    },
    /// The blocking task failed.
    #[error("garbage collection task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Report only; delete nothing.
    pub dry_run: bool,
    /// Keep unreferenced blobs younger than this.
    pub grace: Duration,
    /// Apply `[[retention]]` first.
    pub retention: bool,
}

/// One blob that was (or, in a dry run, would be) deleted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SweptBlob {
    /// Digest.
    pub digest: String,
    /// Bytes of content.
    pub size: u64,
    /// Repositories that had a link to it.
    pub repositories: Vec<String>,
}

/// What a run did or would do.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GcReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Start, seconds since the epoch.
    pub started_unix: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Repositories seen.
    pub repositories: usize,
    /// Manifest revisions marked.
    pub manifests_marked: usize,
    /// Blobs kept because something references them.
    pub blobs_marked: usize,
    /// Unreferenced blobs kept because they are younger than the grace period or in use.
    pub blobs_young: usize,
    /// Bytes of all blobs left after the run.
    pub bytes_kept: u64,
    /// What retention removed (or would remove).
    pub retention: retention::RetentionReport,
    /// Blobs deleted (or to delete).
    pub blobs: Vec<SweptBlob>,
    /// Their total size.
    pub bytes_freed: u64,
    /// Bytes freed per repository that linked them (a blob shared by two counts in both).
    pub per_repository: BTreeMap<String, u64>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs one GC (retention first when asked) on the blocking pool; one run at a time per
/// process. Updates the GC metrics.
///
/// # Errors
/// Storage failures, an unreadable manifest.
pub async fn run(registry: Arc<Registry>, opts: GcOptions) -> Result<GcReport> {
    let _one = registry.gc_gate().running.lock().await;
    let started = Instant::now();
    let r = registry.clone();
    let result = tokio::task::spawn_blocking(move || run_paced(&r, opts, true)).await?;
    crate::metrics::global().gc_finished(&result, started.elapsed(), opts.dry_run);
    result
}

/// [`run`] without the async wrapper (for the offline command and tests).
///
/// # Errors
/// As [`run`].
pub fn run_blocking(reg: &Registry, opts: GcOptions) -> Result<GcReport> {
    run_paced(reg, opts, false)
}

/// Keeps a run inside a serving process to about half a core: after each 10 ms of work it
/// sleeps as long, so requests served meanwhile keep their latency (two-core hosts).
pub(crate) struct Pacer {
    on: bool,
    since: Instant,
}

impl Pacer {
    pub(crate) fn tick(&mut self) {
        if !self.on {
            return;
        }
        let busy = self.since.elapsed();
        if busy >= Duration::from_millis(10) {
            std::thread::sleep(busy);
            self.since = Instant::now();
        }
    }
}

fn run_paced(reg: &Registry, opts: GcOptions, pace: bool) -> Result<GcReport> {
    let mut pacer = Pacer {
        on: pace,
        since: Instant::now(),
    };
    let started = Instant::now();
    let mut report = GcReport {
        dry_run: opts.dry_run,
        started_unix: unix(SystemTime::now()),
        ..GcReport::default()
    };
    if opts.retention && !reg.config().ops.retention.is_empty() {
        report.retention = retention::apply(reg, opts.dry_run)?;
    }
    let gate = reg.gc_gate();
    gate.begin();
    let result = mark_and_sweep(reg, opts, &mut report, &mut pacer);
    gate.end();
    result?;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

fn mark_and_sweep(
    reg: &Registry,
    opts: GcOptions,
    report: &mut GcReport,
    pacer: &mut Pacer,
) -> Result<()> {
    let now = SystemTime::now();
    // A dry run marks as if retention had removed what it would remove, so its report lists
    // what a real run deletes.
    let skip: std::collections::HashSet<(String, String)> = if opts.dry_run {
        report
            .retention
            .manifests
            .iter()
            .map(|m| (m.repository.clone(), m.digest.clone()))
            .collect()
    } else {
        std::collections::HashSet::new()
    };
    let marked = mark::mark(reg, &skip, pacer)?;
    report.repositories = marked.repositories.len();
    report.manifests_marked = marked.manifests;
    let gate = reg.gc_gate();
    for alg in reg.list_or_empty("blobs")? {
        for prefix in reg.list_or_empty(&format!("blobs/{alg}"))? {
            for hex in reg.list_or_empty(&format!("blobs/{alg}/{prefix}"))? {
                pacer.tick();
                let digest = format!("{alg}:{hex}");
                let dir = format!("blobs/{alg}/{prefix}/{hex}");
                let (size, written) = match reg.driver.stat(&format!("{dir}/data")) {
                    Ok(i) => (i.size, i.modified),
                    // Content never arrived (crash before the rename): the directory's age.
                    Err(e) if e.is_not_found() => match reg.driver.stat(&dir) {
                        Ok(i) => (0, i.modified),
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                };
                if marked.live.contains(&digest) {
                    report.blobs_marked += 1;
                    report.bytes_kept += size;
                    continue;
                }
                let linked = marked.unmarked_links.get(&digest);
                let newest = linked.map_or(written, |(at, _)| (*at).max(written));
                let young = now.duration_since(newest).unwrap_or_default() < opts.grace;
                if young {
                    report.blobs_young += 1;
                    report.bytes_kept += size;
                    continue;
                }
                let repos: Vec<String> = linked
                    .map(|(_, r)| {
                        r.iter()
                            .filter_map(|i| marked.repositories.get(*i as usize).cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                let swept = if opts.dry_run {
                    gate.sweep(&digest, opts.grace, || ()).is_some()
                } else {
                    match gate.sweep(&digest, opts.grace, || {
                        delete_blob(reg, &alg, &hex, &dir, &repos)
                    }) {
                        Some(r) => {
                            r?;
                            true
                        }
                        None => false,
                    }
                };
                if !swept {
                    report.blobs_young += 1;
                    report.bytes_kept += size;
                    continue;
                }
                report.bytes_freed += size;
                for r in &repos {
                    *report.per_repository.entry(r.clone()).or_default() += size;
                }
                report.blobs.push(SweptBlob {
                    digest,
                    size,
                    repositories: repos,
                });
            }
        }
    }
    Ok(())
}

/// Links first, content last (see the module doc); runs under the gate's exclusive lock.
fn delete_blob(
    reg: &Registry,
    alg: &str,
    hex: &str,
    dir: &str,
    repos: &[String],
) -> std::result::Result<(), StorageError> {
    let ignore_missing = |r: crate::storage::Result<()>| match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    };
    for name in repos {
        reg.small_blobs.invalidate(name);
        ignore_missing(reg.driver.delete(&format!(
            "{}/_layers/{alg}/{hex}",
            crate::service::paths::repo(name)
        )))?;
    }
    ignore_missing(reg.driver.delete(dir))
}

/// The offline command's lock: a server holds `_gc/serving` shared (with its address inside);
/// `berth-registry gc` takes it exclusively or, when a server holds it, asks that server.
pub mod serving {
    use std::path::Path;

    /// The lock file, relative to the data directory.
    pub const LOCK: &str = "_gc/serving";

    /// Held for the life of the server.
    pub struct ServingLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

    fn open(data_dir: &Path) -> std::io::Result<std::fs::File> {
        let path = data_dir.join(LOCK);
        fs_err::create_dir_all(path.parent().expect("has a parent"))?;
        #[allow(clippy::disallowed_types)]
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
    }

    /// Takes the shared lock and records where the server answers `POST /_berth/gc` and the
    /// token it wants there.
    ///
    /// # Errors
    /// When the file cannot be opened or an offline GC holds it.
    pub fn hold(data_dir: &Path, ops_url: &str, token: &str) -> std::io::Result<ServingLock> {
        let f = open(data_dir)?;
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock).map_err(
            |(_, e)| {
                std::io::Error::other(format!(
                    "`berth-registry gc` is running on this directory ({e})"
                ))
            },
        )?;
        fs_err::write(data_dir.join(LOCK), format!("{ops_url}\n{token}\n"))?;
        Ok(ServingLock(lock))
    }

    /// What `berth-registry gc` found.
    pub enum Offline {
        /// No server: run here, holding this lock.
        Exclusive(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>),
        /// A server serves the directory: its ops URL and token.
        Served(String, String),
    }

    /// Takes the exclusive lock, or reports the serving server's URL.
    ///
    /// # Errors
    /// When the lock file cannot be opened.
    pub fn offline(data_dir: &Path) -> std::io::Result<Offline> {
        let f = open(data_dir)?;
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Offline::Exclusive(l)),
            Err(_) => {
                let text = fs_err::read_to_string(data_dir.join(LOCK))?;
                let mut lines = text.lines();
                let url = lines.next().unwrap_or_default().trim().to_owned();
                let token = lines.next().unwrap_or_default().trim().to_owned();
                Ok(Offline::Served(url, token))
            }
        }
    }
}
