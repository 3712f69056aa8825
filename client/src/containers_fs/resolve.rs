//! Resolving container paths from the host without ever leaving the container's root
//! (CVE-2018-15664: a container swapping a directory and a symlink while the host copies).
//!
//! [`RootDir`] holds an `O_PATH` handle of a root (the container's merged root, or its overlay
//! `upper/`); every lookup starts from that handle, never from a path string that the container
//! could redirect between a check and its use. Lookups use `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` (Linux 5.6+), so `..` and symlinks, absolute ones
//! included, resolve as they would inside the container. Where the kernel has no `openat2`
//! (`ENOSYS`), or keeps answering `EAGAIN` because renames race with a `..`, the same answer
//! comes from [`walk`]: one `openat(O_PATH | O_NOFOLLOW)` per component from the handle of the
//! one before, symlinks expanded here and `..` taken back to the handle of the parent, which can
//! never be above the root.
//!
//! This module only opens, creates directories and reads links; it calls nothing else in the
//! crate. What is done with the returned handles (reading, writing, walking a tree) belongs to
//! [`super::tree`] and [`super::extract`], which must keep working relative to them.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// A lookup inside the container's root failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{}` inside the container's root", path.display())]
pub struct ResolveError {
    /// The path, as the container sees it.
    pub path: PathBuf,
    /// What the kernel said.
    #[source]
    pub source: io::Error,
}

impl ResolveError {
    /// The kind of the underlying I/O error (`NotFound` for a missing path).
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// This module's result.
pub type Result<T> = std::result::Result<T, ResolveError>;

/// Symlinks followed in one lookup before giving up with `ELOOP`, as the kernel does.
const MAX_LINKS: usize = 40;

/// `openat2` answers `EAGAIN` when a rename raced with a `..` in the lookup; tries before
/// [`walk`] answers instead.
const EAGAIN_TRIES: usize = 64;

/// Set once `openat2` answered `ENOSYS`: this kernel (or a seccomp filter) lacks it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// An `O_PATH` handle of a root directory that container paths resolve inside.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Tests force the fallback walk even where `openat2` exists.
    walk_only: bool,
}

impl RootDir {
    /// Opens `path`, a host path Berth trusts (under its data root), as the root.
    ///
    /// # Errors
    /// `path` is missing or not a directory.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ResolveError {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self {
            fd,
            path: path.to_owned(),
            walk_only: false,
        })
    }

    /// The root's path on the host, for messages only: never resolve through it.
    #[must_use]
    pub fn host_path(&self) -> &Path {
        &self.path
    }

    /// The root's handle.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` handle of the container path `p`, every symlink in it (the last one too)
    /// followed inside the root.
    ///
    /// # Errors
    /// The path is missing, loops, or crosses a mount.
    pub fn resolve(&self, p: &Path) -> Result<OwnedFd> {
        self.lookup(p, OFlags::PATH).map_err(|source| ResolveError {
            path: p.to_owned(),
            source,
        })
    }

    /// [`Self::resolve`] for a directory.
    ///
    /// # Errors
    /// As [`Self::resolve`], or `ENOTDIR`.
    pub fn resolve_dir(&self, p: &Path) -> Result<OwnedFd> {
        self.lookup(p, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|source| ResolveError {
                path: p.to_owned(),
                source,
            })
    }

    /// The directory holding the container path `p`, resolved inside the root, and `p`'s last
    /// component, which is not followed (`None` when `p` is the root). `..` and `.` in `p` are
    /// applied lexically first, as `docker cp` does.
    ///
    /// # Errors
    /// The parent is missing or not a directory.
    pub fn resolve_parent(&self, p: &Path) -> Result<(OwnedFd, Option<OsString>)> {
        let rel = lexical(p);
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.resolve_dir(parent)?;
        Ok((fd, rel.file_name().map(OsStr::to_owned)))
    }

    /// Like `mkdir -p` inside the root: an `O_PATH` handle of the directory `p`, creating what is
    /// missing (also where a symlink points to a missing directory, which is then made inside
    /// the root).
    ///
    /// # Errors
    /// A component is not a directory, or creating one fails.
    pub fn mkdir_all(&self, p: &Path) -> Result<OwnedFd> {
        let err = |source| ResolveError {
            path: p.to_owned(),
            source,
        };
        match self.lookup(p, OFlags::PATH | OFlags::DIRECTORY) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let fd = walk(self.fd(), p, true).map_err(err)?;
                ensure_dir(&fd).map_err(err)?;
                Ok(fd)
            }
            other => other.map_err(err),
        }
    }

    /// The root, but every lookup uses [`walk`] (for tests of the fallback).
    #[cfg(test)]
    fn walking(mut self) -> Self {
        self.walk_only = true;
        self
    }

    fn lookup(&self, p: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let walked = |flags: OFlags| {
            let fd = walk(self.fd(), p, false)?;
            if flags.contains(OFlags::DIRECTORY) {
                ensure_dir(&fd)?;
            }
            Ok(fd)
        };
        if self.walk_only || NO_OPENAT2.load(Ordering::Relaxed) {
            return walked(flags);
        }
        let rel = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        for _ in 0..EAGAIN_TRIES {
            match rustix::fs::openat2(
                self.fd(),
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
            ) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    return walked(flags);
                }
                Err(e) => return Err(e.into()),
            }
        }
        walked(flags)
    }
}

/// `p` made relative, with `.` dropped and `..` applied lexically (never above the top).
#[must_use]
pub fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn ensure_dir(fd: &OwnedFd) -> io::Result<()> {
    let st = rustix::fs::fstat(fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        Ok(())
    } else {
        Err(rustix::io::Errno::NOTDIR.into())
    }
}

fn components(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// Opens `p` under `root` one component at a time, each an `openat(O_PATH | O_NOFOLLOW)` from
/// the handle of the one before, as `RESOLVE_IN_ROOT` would: a symlink (the last component's
/// too) is read and its target walked in its place, from the root when absolute; `..` returns
/// to the handle it came from and stays at the root there. With `create`, missing components
/// are made as directories (mode 0755 before the umask). Symlinks on procfs are refused, as
/// `RESOLVE_NO_MAGICLINKS` does. Returns an `O_PATH` handle.
///
/// # Errors
/// A missing component (without `create`), a non-directory in the middle, too many symlinks.
pub fn walk(root: BorrowedFd<'_>, p: &Path, create: bool) -> io::Result<OwnedFd> {
    let here = |dir: BorrowedFd<'_>| {
        rustix::fs::openat(
            dir,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let open_nofollow = |dir: &OwnedFd, name: &OsStr| {
        rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut todo: VecDeque<OsString> = components(p).collect();
    let mut parents: Vec<OwnedFd> = Vec::new();
    let mut cur = here(root)?;
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if let Some(up) = parents.pop() {
                cur = up;
            }
            continue;
        }
        let fd = match open_nofollow(&cur, &name) {
            Err(rustix::io::Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&cur, &name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_nofollow(&cur, &name)?
            }
            other => other?,
        };
        let st = rustix::fs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS
                    || rustix::fs::fstatfs(&fd)?.f_type == rustix::fs::PROC_SUPER_MAGIC
                {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = PathBuf::from(OsString::from_vec(
                    rustix::fs::readlinkat(&fd, "", Vec::new())?.into_bytes(),
                ));
                if target.is_absolute() {
                    parents.clear();
                    cur = here(root)?;
                }
                for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(c);
                }
            }
            FileType::Directory => parents.push(std::mem::replace(&mut cur, fd)),
            _ if todo.is_empty() => parents.push(std::mem::replace(&mut cur, fd)),
            _ => return Err(rustix::io::Errno::NOTDIR.into()),
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt as _};

    use super::*;

    /// A root holding `etc/passwd` ("inside"), `abs -> /etc`, `up -> ../../..`,
    /// `out -> <outside>` (a real host directory beside the root, holding `secret`),
    /// `loop -> loop` and `dangling -> /made/here`.
    fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        fs_err::create_dir_all(root.join("etc")).unwrap();
        fs_err::create_dir_all(root.join("a/b")).unwrap();
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(root.join("etc/passwd"), "inside").unwrap();
        fs_err::write(outside.join("secret"), "host").unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../..", root.join("a/b/up")).unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("/made/here", root.join("dangling")).unwrap();
        (t, root, outside)
    }

    fn same(fd: &OwnedFd, p: &Path) -> bool {
        let st = rustix::fs::fstat(fd).unwrap();
        let m = std::fs::symlink_metadata(p).unwrap();
        st.st_ino == m.ino() && st.st_dev == m.dev()
    }

    /// Both ways of resolving: `openat2` where the kernel has it, and the fallback walk.
    fn roots(root: &Path) -> [RootDir; 2] {
        [
            RootDir::open(root).unwrap(),
            RootDir::open(root).unwrap().walking(),
        ]
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let (_t, root, _) = fixture();
        for r in roots(&root) {
            let fd = r.resolve(Path::new("/abs/passwd")).unwrap();
            assert!(same(&fd, &root.join("etc/passwd")), "{r:?}");
        }
    }

    #[test]
    fn dot_dot_and_climbing_symlinks_stop_at_the_root() {
        let (_t, root, _) = fixture();
        for r in roots(&root) {
            let fd = r.resolve(Path::new("../../../etc/passwd")).unwrap();
            assert!(same(&fd, &root.join("etc/passwd")), "{r:?}");
            let fd = r.resolve(Path::new("/a/b/up/etc/passwd")).unwrap();
            assert!(same(&fd, &root.join("etc/passwd")), "{r:?}");
            let fd = r.resolve(Path::new("a/b/up")).unwrap();
            assert!(same(&fd, &root), "{r:?}");
        }
    }

    #[test]
    fn a_symlink_to_a_host_directory_does_not_reach_it() {
        let (_t, root, _) = fixture();
        for r in roots(&root) {
            let e = r.resolve(Path::new("/out/secret")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{r:?}");
            let e = r.resolve(Path::new("/abs/../../out/secret")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{r:?}");
        }
    }

    #[test]
    fn loops_fail() {
        let (_t, root, _) = fixture();
        for r in roots(&root) {
            let e = r.resolve(Path::new("/loop/x")).unwrap_err();
            let eloop = rustix::io::Errno::LOOP.raw_os_error();
            assert_eq!(e.source.raw_os_error(), Some(eloop), "{r:?}");
        }
    }

    #[test]
    fn parent_resolution_keeps_the_last_symlink() {
        let (_t, root, _) = fixture();
        for r in roots(&root) {
            let (dir, name) = r.resolve_parent(Path::new("/abs/../out")).unwrap();
            assert!(same(&dir, &root), "{r:?}");
            assert_eq!(name.as_deref(), Some(OsStr::new("out")));
            let (dir, name) = r.resolve_parent(Path::new("/")).unwrap();
            assert!(same(&dir, &root));
            assert_eq!(name, None);
        }
    }

    #[test]
    fn mkdir_all_creates_inside_the_root() {
        for walking in [false, true] {
            let (_t, root, outside) = fixture();
            let r = RootDir::open(&root).unwrap();
            let r = if walking { r.walking() } else { r };
            let fd = r.mkdir_all(Path::new("/dangling/deeper")).unwrap();
            assert!(same(&fd, &root.join("made/here/deeper")));
            let out = outside.strip_prefix("/").unwrap();
            let fd = r.mkdir_all(&Path::new("/out").join("new")).unwrap();
            assert!(same(&fd, &root.join(out).join("new")));
            assert!(!outside.join("new").exists());
            let e = r.mkdir_all(Path::new("/etc/passwd/x")).unwrap_err();
            let enotdir = rustix::io::Errno::NOTDIR.raw_os_error();
            assert_eq!(e.source.raw_os_error(), Some(enotdir));
        }
    }
}
