//! The interlock between the sweeper and writers that reference blobs.
//!
//! Every request that makes a blob referenced (a manifest PUT, an upload's final link, a
//! cross-repository mount, a blob HEAD/GET that a client may follow with a manifest PUT) runs
//! its check-then-write inside [`Gate::reference`]: a shared lock, and, while a GC is running,
//! the digests are added to the run's *touched* set. The sweeper deletes each candidate under
//! the exclusive lock and only after checking the touched set. So for any one blob either
//!
//! - the writer went first: the digest is in the touched set and the sweeper skips it, or
//! - the sweeper went first: the blob and its links are gone, the writer's existence check
//!   fails (HEAD 404, `MANIFEST_BLOB_UNKNOWN`, an upload renames its own data in), and the client
//!   uploads again, which is what a client does with any missing blob.
//!
//! Writers in other processes (none in a normal deployment: `berth-registry gc` asks a running
//! server to do the work) are covered by the grace period alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use oci_spec::image::Digest;

/// Entries of the recent-reference record; past it, entries older than [`RECENT_KEEP`] go,
/// then the oldest half. About 2 MiB.
const RECENT_MAX: usize = 16_384;
/// How long a reference counts as recent.
pub(crate) const RECENT_KEEP: Duration = Duration::from_secs(3600);

/// See the module doc.
#[derive(Default)]
pub struct Gate {
    lock: RwLock<()>,
    touched: Mutex<Option<HashSet<String>>>,
    /// Digests referenced recently, GC or not: a client that HEADs a blob before a GC starts
    /// and PUTs its manifest after the sweep must still find it. Bounded (see [`RECENT_MAX`]).
    recent: Mutex<HashMap<String, Instant>>,
    /// `name:tag` → when its pull was last recorded (see `retention::record_pull`).
    pub(crate) pulls: Mutex<HashMap<String, Instant>>,
    /// The secret `berth-registry gc` must send to `POST /_berth/gc` (written to the serving
    /// lock file, which only users who can read the data directory can see).
    pub(crate) admin_token: std::sync::OnceLock<String>,
    /// One GC at a time in this process.
    pub(crate) running: tokio::sync::Mutex<()>,
}

impl Gate {
    /// Runs `f` (an existence check and the write that references `digests`) so that no sweep
    /// of those digests interleaves with it.
    pub fn reference<'a, R>(
        &self,
        digests: impl IntoIterator<Item = &'a Digest>,
        f: impl FnOnce() -> R,
    ) -> R {
        let _shared = self
            .lock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        {
            let mut t = self
                .touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut recent = self
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            for d in digests {
                let d = d.to_string();
                if let Some(set) = t.as_mut() {
                    set.insert(d.clone());
                }
                recent.insert(d, now);
            }
            if recent.len() > RECENT_MAX {
                recent.retain(|_, at| now.duration_since(*at) < RECENT_KEEP);
                if recent.len() > RECENT_MAX / 2 {
                    let mut ages: Vec<Instant> = recent.values().copied().collect();
                    ages.sort_unstable();
                    let cut = ages[ages.len() / 2];
                    recent.retain(|_, at| *at > cut);
                }
            }
        }
        f()
    }

    /// Starts recording touched digests (before the mark phase reads anything).
    pub(crate) fn begin(&self) {
        *self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(HashSet::new());
    }

    /// Stops recording.
    pub(crate) fn end(&self) {
        *self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Runs `f` exclusively if `digest` was not touched since [`Gate::begin`] nor referenced
    /// within `grace` (at most [`RECENT_KEEP`]); returns `None` when it was (the blob is in use
    /// again and must stay).
    pub(crate) fn sweep<R>(
        &self,
        digest: &str,
        grace: Duration,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        let _exclusive = self
            .lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let touched = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| s.contains(digest));
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest)
            .is_some_and(|at| at.elapsed() < RECENT_KEEP.min(grace));
        if touched || recent {
            None
        } else {
            Some(f())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_digests_are_not_swept() {
        let g = Gate::default();
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let zero = Duration::ZERO;
        g.begin();
        assert_eq!(g.sweep(d.as_ref(), zero, || 1), Some(1));
        g.reference([&d], || ());
        assert_eq!(g.sweep(d.as_ref(), zero, || 1), None);
        g.end();
        assert_eq!(g.sweep(d.as_ref(), zero, || 1), Some(1));
        // Outside a run, a recent reference still protects within the grace period.
        assert_eq!(g.sweep(d.as_ref(), Duration::from_secs(60), || 1), None);
    }
}
