//! The build cache, on by default.
//!
//! A step's key is the sha256 of: the parent state's image ID (its config digest, which pins
//! the parent's chain of diff IDs and its env, workdir, user, …), the normalised instruction
//! (Docker's `created_by` text, which for RUN carries the build arguments in scope, `|1 V=2`),
//! the values of build arguments the instruction expands, and for COPY/ADD the content hash of
//! its sources ([`super::context::Context::hash`]: paths, modes, owners, bytes, not mtimes).
//!
//! ```text
//! <data-root>/build-cache/
//!   entries/<key>.json   the resulting state: config document + layer records
//!   steps/<step>.json    per (parent, instruction): the inputs of the last build, to tell why
//!                        a step missed (its files changed, its build arguments changed)
//!   mounts/<id>/         RUN --mount=type=cache directories
//!   mounts/<id>.lock     flock held while a RUN uses the directory: shared for
//!                        `sharing=shared` (the default), exclusive for `locked` and `private`
//!   mounts/<id>-<n>/     `sharing=private` instances, made when `<id>` (and earlier
//!     (and .lock)        instances) are in use; reused by later private users
//! ```
//! An entry is used only when every layer it names is still unpacked and its blob still in the
//! store (an `rmi` or prune may have removed them). Calls only the file system and the store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::state::ImageState;
use crate::store::Store;

/// What goes into a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInputs {
    /// The parent state's image ID.
    pub parent: String,
    /// The normalised instruction.
    pub instruction: String,
    /// Build arguments (name=value) the instruction uses, sorted.
    pub args: Vec<String>,
    /// Content hash of COPY/ADD sources.
    pub files: Option<String>,
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.len().to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl KeyInputs {
    /// The cache key.
    #[must_use]
    pub fn key(&self) -> String {
        sha(&[
            "v1",
            &self.parent,
            &self.instruction,
            &self.args.join("\n"),
            self.files.as_deref().unwrap_or(""),
        ])
    }

    /// Key of (parent, instruction) alone, for the miss reason.
    #[must_use]
    pub fn step(&self) -> String {
        sha(&["step", &self.parent, &self.instruction])
    }
}

/// `RUN --mount=type=cache,sharing=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Concurrent builds use the same directory (BuildKit's default).
    #[default]
    Shared,
    /// A build waits until no other uses the directory.
    Locked,
    /// A build that finds the directory in use gets a directory of its own.
    Private,
}

impl Sharing {
    /// `shared`, `locked` or `private` (anything else, as the parser refuses it, is `shared`).
    #[must_use]
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("locked") => Self::Locked,
            Some("private") => Self::Private,
            _ => Self::Shared,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StepRecord {
    args: Vec<String>,
    files: Option<String>,
}

/// The cache directory of a data root.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// `<data-root>/build-cache`.
    #[must_use]
    pub fn new(data_root: &Path) -> Self {
        Self {
            dir: data_root.join("build-cache"),
        }
    }

    /// Where `RUN --mount=type=cache,id=ID` lives.
    #[must_use]
    pub fn mount_dir(&self, id: &str) -> PathBuf {
        self.dir.join("mounts").join(sha(&["mount", id]))
    }

    /// The directory for `RUN --mount=type=cache,id=ID,sharing=…`, locked for the caller until
    /// the returned lock drops. `shared` waits only for `locked` users, `locked` waits for every
    /// other user, `private` never waits: when the directory is busy it takes (or makes) an
    /// instance of its own. Returns whether the directory is new.
    ///
    /// # Errors
    /// The directory or its lock file cannot be created, or the lock fails.
    pub fn mount(
        &self,
        id: &str,
        sharing: Sharing,
    ) -> std::io::Result<(PathBuf, bool, nix::fcntl::Flock<std::fs::File>)> {
        use nix::fcntl::{Flock, FlockArg};
        let base = self.mount_dir(id);
        let parent = base.parent().expect("under mounts/").to_owned();
        fs_err::create_dir_all(&parent)?;
        let open_lock = |dir: &Path| -> std::io::Result<std::fs::File> {
            let mut name = dir.file_name().unwrap_or_default().to_owned();
            name.push(".lock");
            Ok(fs_err::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(parent.join(name))?
                .into_parts()
                .0)
        };
        let take = |dir: PathBuf, arg: FlockArg| -> std::io::Result<Option<_>> {
            match Flock::lock(open_lock(&dir)?, arg) {
                Ok(l) => {
                    let new = !dir.exists();
                    fs_err::create_dir_all(&dir)?;
                    Ok(Some((dir, new, l)))
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
                Err((_, e)) => Err(std::io::Error::from(e)),
            }
        };
        let blocking = |arg| {
            take(base.clone(), arg)?
                .ok_or_else(|| std::io::Error::other("a blocking flock returned EWOULDBLOCK"))
        };
        match sharing {
            Sharing::Shared => blocking(FlockArg::LockShared),
            Sharing::Locked => blocking(FlockArg::LockExclusive),
            Sharing::Private => {
                for n in 0.. {
                    let dir = if n == 0 {
                        base.clone()
                    } else {
                        let mut name = base.file_name().unwrap_or_default().to_owned();
                        name.push(format!("-{n}"));
                        parent.join(name)
                    };
                    if let Some(got) = take(dir, FlockArg::LockExclusiveNonblock)? {
                        return Ok(got);
                    }
                }
                unreachable!("the loop only ends by returning")
            }
        }
    }

    /// The state stored under `inputs`, if it is still whole.
    #[must_use]
    pub fn get(&self, store: &Store, inputs: &KeyInputs) -> Option<ImageState> {
        let path = self
            .dir
            .join("entries")
            .join(format!("{}.json", inputs.key()));
        let state: ImageState = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let whole = state.layers.iter().all(|l| {
            let (Ok(diff), Ok(blob)) = (
                l.diff_id.parse::<oci_spec::image::Digest>(),
                l.digest.parse::<oci_spec::image::Digest>(),
            ) else {
                return false;
            };
            store.layer_size(&diff).is_some() && store.has_blob(&blob)
        });
        whole.then_some(state)
    }

    /// Why `inputs` has no entry: a human sentence.
    #[must_use]
    pub fn miss_reason(&self, inputs: &KeyInputs) -> String {
        let path = self
            .dir
            .join("steps")
            .join(format!("{}.json", inputs.step()));
        let Some(prev) = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok())
        else {
            return "not built before with this parent".into();
        };
        if prev.files != inputs.files {
            "the files it copies changed".into()
        } else if prev.args != inputs.args {
            let changed: Vec<&str> = inputs
                .args
                .iter()
                .filter(|a| !prev.args.contains(a))
                .chain(prev.args.iter().filter(|a| !inputs.args.contains(a)))
                .filter_map(|a| a.split('=').next())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            format!("build argument changed: {}", changed.join(", "))
        } else {
            "its result is gone from the store".into()
        }
    }

    /// Stores `state` under `inputs` (best effort: a full disk only costs a later miss).
    pub fn put(&self, inputs: &KeyInputs, state: &ImageState) {
        let write = |sub: &str, name: String, bytes: Vec<u8>| {
            let dir = self.dir.join(sub);
            let _ = std::fs::create_dir_all(&dir);
            let tmp = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, dir.join(name));
            }
        };
        if let Ok(b) = serde_json::to_vec(state) {
            write("entries", format!("{}.json", inputs.key()), b);
        }
        let rec = StepRecord {
            args: inputs.args.clone(),
            files: inputs.files.clone(),
        };
        if let Ok(b) = serde_json::to_vec(&rec) {
            write("steps", format!("{}.json", inputs.step()), b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            parent: "sha256:p".into(),
            instruction: "/bin/sh -c make".into(),
            args: vec!["A=1".into()],
            files: Some("f".into()),
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs().key();
        let mut i = inputs();
        i.parent = "sha256:q".into();
        assert_ne!(i.key(), base);
        let mut i = inputs();
        i.instruction = "/bin/sh -c make all".into();
        assert_ne!(i.key(), base);
        let mut i = inputs();
        i.args = vec!["A=2".into()];
        assert_ne!(i.key(), base);
        assert_eq!(i.step(), inputs().step());
        let mut i = inputs();
        i.files = None;
        assert_ne!(i.key(), base);
        assert_eq!(inputs().key(), base);
    }

    #[test]
    fn cache_mounts_share_lock_or_split() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let (a, new, shared) = cache.mount("x", Sharing::Shared).unwrap();
        assert!(new);
        let (b, new, _shared2) = cache.mount("x", Sharing::Shared).unwrap();
        assert_eq!((&a, new), (&b, false), "shared users share");
        // A private user finds the directory busy and gets an instance of its own, twice.
        let (p1, new, _l1) = cache.mount("x", Sharing::Private).unwrap();
        assert!(new && p1 != a);
        let (p2, _, _l2) = cache.mount("x", Sharing::Private).unwrap();
        assert!(p2 != a && p2 != p1);
        // A locked user waits for the shared ones.
        let (tx, rx) = std::sync::mpsc::channel();
        let c2 = cache.clone();
        let waiter = std::thread::spawn(move || {
            let (d, _, _l) = c2.mount("x", Sharing::Locked).unwrap();
            tx.send(d).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "locked must wait for shared users");
        drop(shared);
        drop(_shared2);
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(),
            a
        );
        waiter.join().unwrap();
    }

    #[test]
    fn entries_round_trip_and_explain_misses() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("root")).unwrap();
        let cache = Cache::new(store.root());
        let state = ImageState::scratch();
        assert!(cache.get(&store, &inputs()).is_none());
        assert_eq!(
            cache.miss_reason(&inputs()),
            "not built before with this parent"
        );
        cache.put(&inputs(), &state);
        assert_eq!(cache.get(&store, &inputs()), Some(state));
        let mut changed = inputs();
        changed.files = Some("g".into());
        assert_eq!(cache.miss_reason(&changed), "the files it copies changed");
        let mut changed = inputs();
        changed.args = vec!["A=2".into()];
        assert_eq!(cache.miss_reason(&changed), "build argument changed: A");
    }
}
