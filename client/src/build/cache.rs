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
