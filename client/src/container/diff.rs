//! `diff`: what changed in a container's file system against its image, as Docker's `A`
//! (added), `C` (changed) and `D` (deleted) lines, read from the container's overlay upper
//! directory: a whiteout is a deletion, a path one of the image's layers has is a change, any
//! other an addition. The upper directory is walked by handles, never following a link the
//! container made, and the layers are looked into one component at a time without following
//! links either, so no host path outside them is ever reached. What Berth itself puts there
//! for every container (the mount points `/dev`, `/proc`, `/sys`, and the `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf` it bind-mounts) is left out, as Docker keeps those in an
//! init layer its `diff` never shows.
//!
//! May call [`super::state`], [`super::rootfs`], [`crate::containers_fs`] (the layers) and
//! [`crate::store`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::state::{self, StateError};
use crate::store::Store;

/// The changes cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// Its root file system is a copy of the image, with no record of what changed.
    #[error("berth cannot list the changes of container {0}: its root file system was copied, not mounted (the data root refused overlayfs)")]
    Copied(String),
    /// The image's layers are gone.
    #[error(transparent)]
    Layers(#[from] crate::containers_fs::MountError),
    /// Reading the upper directory or a layer failed.
    #[error("cannot read the changes of container {container}")]
    Io {
        /// The container's name.
        container: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `A`: not in the image.
    Added,
    /// `C`: in the image, and changed (for a directory: something in it changed).
    Changed,
    /// `D`: in the image, and deleted.
    Deleted,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Added => "A",
            Self::Changed => "C",
            Self::Deleted => "D",
        })
    }
}

/// One changed path, absolute inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: Kind,
    /// Where.
    pub path: PathBuf,
}

/// Paths Berth makes in every container's upper directory; the first three with what is below.
const OWN: [&str; 6] = [
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

/// Leaves out [`OWN`] paths, and a changed directory that was only changed by them.
fn without_own(all: Vec<Change>) -> Vec<Change> {
    let own = |p: &Path| OWN.iter().any(|o| p.starts_with(o));
    let (left_out, kept): (Vec<Change>, Vec<Change>) = all.into_iter().partition(|c| own(&c.path));
    let only_ours = |c: &Change| {
        c.kind == Kind::Changed
            && left_out.iter().any(|o| o.path.starts_with(&c.path))
            && !kept
                .iter()
                .any(|k| k.path != c.path && k.path.starts_with(&c.path))
    };
    kept.iter().filter(|c| !only_ours(c)).cloned().collect()
}

/// The changes of container `name`, sorted by path (Docker's order).
///
/// # Errors
/// No such container; a copied root file system; missing layers; I/O.
pub fn diff(store: &Store, name: &str) -> Result<Vec<Change>, DiffError> {
    let (dir, st) = state::find(store.root(), name)?;
    if super::rootfs::rootfs_copied(&dir) {
        return Err(DiffError::Copied(st.name));
    }
    let io = |source| DiffError::Io {
        container: st.name.clone(),
        source,
    };
    let layers = crate::containers_fs::lowers(store, &st)?
        .iter()
        .map(|l| open_dir(l).map_err(io))
        .collect::<Result<Vec<_>, _>>()?;
    let upper = dir.join("upper");
    let mut out = Vec::new();
    if upper.exists() {
        let root = open_dir(&upper).map_err(io)?;
        walk(root.as_fd(), Path::new("/"), &layers, &mut out).map_err(io)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(without_own(out))
}

fn open_dir(p: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Records the entries of the upper directory `dir` (at `at` in the container), recursively.
fn walk(
    dir: BorrowedFd<'_>,
    at: &Path,
    layers: &[OwnedFd],
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    let listing = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names: Vec<OsString> = Vec::new();
    for entry in rustix::fs::Dir::new(listing)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_owned());
        }
    }
    for name in names {
        let path = at.join(&name);
        let fd = rustix::fs::openat(
            dir,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // `File` only for std's `Metadata` (fstat works on `O_PATH`); never read through it.
        let handle = File::from(fd);
        let meta = handle.metadata()?;
        let kind = if crate::containers_fs::tree::is_whiteout(&meta) {
            Kind::Deleted
        } else if layers.iter().any(|l| in_layer(l.as_fd(), &path)) {
            Kind::Changed
        } else {
            Kind::Added
        };
        out.push(Change {
            kind,
            path: path.clone(),
        });
        if meta.is_dir() {
            walk(handle.as_fd(), &path, layers, out)?;
        }
    }
    Ok(())
}

/// Whether the layer whose root is `root` has `path`, looked up one component at a time
/// without following a link anywhere (a link in the middle means it does not).
fn in_layer(root: BorrowedFd<'_>, path: &Path) -> bool {
    let mut cur: Option<OwnedFd> = None;
    for c in path.components().skip(1) {
        let dir = cur.as_ref().map_or(root, std::os::fd::AsFd::as_fd);
        match rustix::fs::openat(
            dir,
            c.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => cur = Some(fd),
            Err(_) => return false,
        }
    }
    cur.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_entries_become_changes() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        for d in ["etc", "usr/bin", "old"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("old/gone"), "x").unwrap();
        // A link in a layer is not followed: `/link/x` is not in the image.
        std::os::unix::fs::symlink("/etc", lower.join("link")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        std::fs::create_dir_all(upper.join("link")).unwrap();
        std::fs::write(upper.join("link/x"), "x").unwrap();
        // A symlink the container made to a host directory is recorded, not walked.
        std::os::unix::fs::symlink("/usr", upper.join("escape")).unwrap();
        let layers = vec![open_dir(&lower).unwrap()];
        let root = open_dir(&upper).unwrap();
        let mut out = Vec::new();
        walk(root.as_fd(), Path::new("/"), &layers, &mut out).unwrap();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        let lines: Vec<String> = out
            .iter()
            .map(|c| format!("{} {}", c.kind, c.path.display()))
            .collect();
        let change = |kind, p: &str| Change {
            kind,
            path: PathBuf::from(p),
        };
        // Berth's own mount points and files, and `/etc` changed only by them, are not shown.
        let own = without_own(vec![
            change(Kind::Added, "/dev"),
            change(Kind::Changed, "/etc"),
            change(Kind::Added, "/etc/hosts"),
            change(Kind::Changed, "/usr"),
            change(Kind::Added, "/usr/x"),
        ]);
        assert_eq!(
            own,
            [change(Kind::Changed, "/usr"), change(Kind::Added, "/usr/x")]
        );
        assert_eq!(
            lines,
            [
                "A /escape",
                "C /etc",
                "A /etc/new",
                "C /etc/passwd",
                "C /link",
                "A /link/x",
            ]
        );
    }
}
