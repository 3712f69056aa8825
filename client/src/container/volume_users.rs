//! Which containers use a volume (their `state.json`'s `Volumes`), asked by `volume rm`,
//! `volume prune`, `system df` and the removal of a container's anonymous volumes, so
//! [`crate::volumes`] never lists containers itself.
//!
//! May call [`super::state`] and [`crate::volumes`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::state;

/// Volume name → IDs of the containers (running or not) that use it.
#[must_use]
pub fn users(data_root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, state) in state::list(data_root) {
        for v in state.volumes {
            out.entry(v).or_default().insert(state.id.clone());
        }
    }
    out
}

/// Removes the volume `name` if no container uses it (asked afresh); the bytes it held.
///
/// # Errors
/// As [`crate::volumes::remove`]: in use, no such volume, the file system.
pub fn remove_volume(data_root: &Path, name: &str) -> anyhow::Result<u64> {
    crate::volumes::remove(data_root, name, &users(data_root))
}

/// Removes the container's anonymous volumes (`rm -v`, `--rm`) that no other container uses;
/// the names removed.
#[must_use]
pub fn remove_anonymous(data_root: &Path, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        if crate::volumes::get(data_root, name).is_ok_and(|v| v.anonymous())
            && remove_volume(data_root, name).is_ok()
        {
            out.push(name.clone());
        }
    }
    out
}
