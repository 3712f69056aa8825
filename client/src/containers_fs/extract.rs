//! Extracting a tar stream into a container (`cp` into it) without a write ever landing
//! outside its root (CVE-2018-15664), even while the container swaps directories and symlinks.
//!
//! Each entry's parent directory is found (or made) with [`RootDir::mkdir_all`], which resolves
//! inside the root; the entry itself is then made relative to that parent's handle with the
//! `*at` calls: files with `O_CREAT | O_EXCL | O_NOFOLLOW`, modes set through a handle of what
//! was made (`fchmod`), never by name, and the last component is replaced, never followed.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd as _, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::resolve::{ResolveError, RootDir};

/// A tar stream could not be extracted into the container.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading the stream.
    #[error(transparent)]
    Read(#[from] io::Error),
    /// An entry's parent (or a hard link's target) cannot be resolved inside the root.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// An entry whose name climbs with `..`.
    #[error("refusing archive entry `{}`", .0.display())]
    Climbs(PathBuf),
    /// A symlink entry without a target.
    #[error("symlink without a target")]
    NoSymlinkTarget,
    /// A hard link entry without a target.
    #[error("hard link without a target")]
    NoLinkTarget,
    /// A hard link whose target climbs with `..`.
    #[error("refusing a hard link that climbs")]
    LinkClimbs,
    /// A hard link to the root itself.
    #[error("refusing a hard link to the root")]
    LinkToRoot,
    /// Making the entry in the container failed.
    #[error("cannot create `{}` in the container", path.display())]
    Create {
        /// The entry, as the container sees it.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A relative path from a tar entry name; `None` for one that climbs (`..`).
fn entry_rel(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(out)
}

/// Removes `name` in `dir` (never following it) unless it is a directory.
fn remove_non_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT | Errno::ISDIR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Makes `name` in `dir` a directory (replacing a non-directory) and sets its mode through a
/// handle of it.
fn make_dir(dir: BorrowedFd<'_>, name: &OsStr, mode: Mode) -> io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
        Ok(_) => {
            rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
            rustix::fs::mkdirat(dir, name, mode)?;
        }
        Err(Errno::NOENT) => rustix::fs::mkdirat(dir, name, mode)?,
        Err(e) => return Err(e.into()),
    }
    // Swapped for a symlink meanwhile? Then this fails instead of following it.
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fchmod(&fd, mode)?;
    Ok(())
}

/// Extracts the tar `input` into `dest` (a path inside the container, absolute in its view)
/// under `root`. Every entry's parent is resolved (and made, if missing) inside `root`, and
/// the entry is written relative to the parent's handle, its last component replaced, never
/// followed, so a symlink in the container, even one swapped in while this runs, cannot
/// redirect a write outside `root`. Entries that climb with `..` are refused.
///
/// # Errors
/// I/O, a hostile entry.
pub fn extract_in_root(root: &RootDir, dest: &Path, input: impl Read) -> Result<(), ExtractError> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = entry_rel(&raw).ok_or_else(|| ExtractError::Climbs(raw.clone()))?;
        let Some(file_name) = rel.file_name().map(ToOwned::to_owned) else {
            continue; // the archive's root `./`
        };
        let inside = dest.join(&rel);
        let parent = root.mkdir_all(&dest.join(rel.parent().unwrap_or(Path::new(""))))?;
        let parent = parent.as_fd();
        let mode = Mode::from_raw_mode(entry.header().mode().unwrap_or(0o644) & 0o7777);
        let fail = |source: io::Error| ExtractError::Create {
            path: inside.clone(),
            source,
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => make_dir(parent, &file_name, mode).map_err(fail)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_non_dir(parent, &file_name).map_err(fail)?;
                let fd = rustix::fs::openat(
                    parent,
                    &file_name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode,
                )
                .map_err(io::Error::from)
                .map_err(fail)?;
                let mut f = std::fs::File::from(fd);
                io::copy(&mut entry, &mut f).map_err(fail)?;
                // The umask may have narrowed the mode.
                rustix::fs::fchmod(&f, mode)
                    .map_err(io::Error::from)
                    .map_err(fail)?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.ok_or(ExtractError::NoSymlinkTarget)?;
                remove_non_dir(parent, &file_name).map_err(fail)?;
                rustix::fs::symlinkat(link.as_ref(), parent, &file_name)
                    .map_err(io::Error::from)
                    .map_err(fail)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name()?.ok_or(ExtractError::NoLinkTarget)?;
                let link = entry_rel(&link).ok_or(ExtractError::LinkClimbs)?;
                let (from_dir, from_name) = root.resolve_parent(&dest.join(link))?;
                let from_name = from_name.ok_or(ExtractError::LinkToRoot)?;
                remove_non_dir(parent, &file_name).map_err(fail)?;
                rustix::fs::linkat(&from_dir, &from_name, parent, &file_name, AtFlags::empty())
                    .map_err(io::Error::from)
                    .map_err(fail)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, data: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn extraction_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let host = tmp.path().join("host");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(&host).unwrap();
        fs_err::write(host.join("x"), "host").unwrap();
        std::os::unix::fs::symlink(&host, root.join("evil")).unwrap();
        std::os::unix::fs::symlink(host.join("x"), root.join("link")).unwrap();
        let r = RootDir::open(&root).unwrap();
        extract_in_root(&r, Path::new("/evil"), &one("x", "a")[..]).unwrap();
        extract_in_root(&r, Path::new("/"), &one("link", "b")[..]).unwrap();
        assert_eq!(fs_err::read_to_string(host.join("x")).unwrap(), "host");
        assert_eq!(
            fs_err::read_to_string(root.join(host.strip_prefix("/").unwrap()).join("x")).unwrap(),
            "a"
        );
        // The last component is replaced, not written through.
        assert_eq!(fs_err::read_to_string(root.join("link")).unwrap(), "b");
        assert!(!std::fs::symlink_metadata(root.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs_err::read_to_string(host.join("x")).unwrap(), "host");
    }

    #[test]
    fn entries_under_a_symlink_in_the_archive_stay_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let host = tmp.path().join("host");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(&host).unwrap();
        // A symlink to the host directory, then a file "through" it, then a hard link to a host
        // file by way of it: all must land inside the root.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "l", &host).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "l/planted", &b"p"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let r = RootDir::open(&root).unwrap();
        extract_in_root(&r, Path::new("/"), &bytes[..]).unwrap();
        assert!(!host.join("planted").exists());
        let inside = root.join(host.strip_prefix("/").unwrap()).join("planted");
        assert_eq!(fs_err::read_to_string(inside).unwrap(), "p");
    }

    #[test]
    fn directories_get_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o701);
        b.append_data(&mut h, "d/", io::empty()).unwrap();
        let bytes = b.into_inner().unwrap();
        extract_in_root(
            &RootDir::open(tmp.path()).unwrap(),
            Path::new("/x"),
            &bytes[..],
        )
        .unwrap();
        let m = std::fs::metadata(tmp.path().join("x/d")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
            0o701
        );
    }

    #[test]
    fn climbing_entries_are_refused() {
        assert!(entry_rel(Path::new("../x")).is_none());
        assert_eq!(entry_rel(Path::new("./a/b")), Some(PathBuf::from("a/b")));
    }
}
