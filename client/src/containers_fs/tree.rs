//! Tar streams of a file tree for `export`, `commit` and `cp`, read through handles so a
//! container renaming things meanwhile cannot point the walk at host files (CVE-2018-15664).
//!
//! Each entry is opened as `openat(parent, name, O_PATH | O_NOFOLLOW)` from its parent's
//! handle, and everything about it comes from that handle: its metadata (`fstat`), a symlink's
//! target (`readlinkat(fd, "")`), a directory's children (a directory handle opened from it
//! with `"."`), and a regular file's content (reopened through `/proc/self/fd`, so the file read
//! is the one that was checked, never a device or FIFO swapped in by name). A directory swapped
//! for a symlink is therefore archived as that symlink, never followed. Callers get their
//! starting handle from [`super::resolve`].

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// An overlayfs whiteout: a character device 0/0 in an upper directory marks a deletion.
pub(crate) fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(dir, "trusted.overlay.opaque", &mut buf[..]),
        Ok(1) if buf[0] == b'y'
    )
}

fn empty_file(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h
}

/// Appends the host path `path` (not following a symlink there) as `name`, recursively; see
/// [`append_tree_at`].
///
/// # Errors
/// I/O.
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    whiteouts: bool,
) -> io::Result<()> {
    let (dir, last) = match (path.parent(), path.file_name()) {
        (Some(parent), Some(last)) => (
            if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            },
            last,
        ),
        _ => (path, OsStr::new(".")),
    };
    let dir = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    append_tree_at(b, dir.as_fd(), last, name, whiteouts)
}

/// Appends the entry `last` of the directory handle `dir` (`"."`: the directory itself), not
/// following a symlink there, as `name`, recursively, children in name order, each opened from
/// its parent's handle. With `whiteouts`, an overlay whiteout (a 0:0 character device) becomes
/// an empty `.wh.<name>` file and an opaque directory gets a `.wh..wh..opq` entry, as OCI
/// layers want. The first name of each multiply-linked file is remembered (by device and
/// inode), so later names become hard-link entries, as `tar` does.
///
/// # Errors
/// I/O.
pub fn append_tree_at<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    last: &OsStr,
    name: &Path,
    whiteouts: bool,
) -> io::Result<()> {
    append_entry(b, dir, last, name, whiteouts, &mut HashMap::new())
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    last: &OsStr,
    name: &Path,
    whiteouts: bool,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        last,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // `File` only to get std's `Metadata` (fstat works on `O_PATH`); never read through it.
    let handle = File::from(fd);
    let meta = handle.metadata()?;
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    if whiteouts && is_whiteout(&meta) {
        let mut wh = OsString::from(".wh.");
        wh.push(name.file_name().unwrap_or_default());
        let wname = name.with_file_name(wh);
        let mut h = empty_file(mtime);
        return b.append_data(&mut h, &wname, io::empty());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let ft = meta.file_type();
    if ft.is_dir() {
        if !name.as_os_str().is_empty() {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        }
        // `"."` of the handle is the directory that was checked, whatever its name is now.
        let listing = rustix::fs::openat(
            &handle,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if whiteouts && is_opaque(listing.as_fd()) {
            let oname = name.join(".wh..wh..opq");
            let mut h = empty_file(mtime);
            b.append_data(&mut h, &oname, io::empty())?;
        }
        let mut children = Vec::new();
        for entry in rustix::fs::Dir::new(listing)? {
            let entry = entry?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                children.push(OsStr::from_bytes(n).to_owned());
            }
        }
        children.sort();
        for c in children {
            append_entry(b, handle.as_fd(), &c, &name.join(&c), whiteouts, links)?;
        }
        Ok(())
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            match links.entry((meta.dev(), meta.ino())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    return b.append_link(&mut h, name, first.get());
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(name.to_owned());
                }
            }
        }
        let f = reopen(&handle, &meta, dir, last)?;
        b.append_data(&mut h, name, f)
    } else if ft.is_symlink() {
        let target = rustix::fs::readlinkat(&handle, "", Vec::new())?;
        b.append_link(&mut h, name, OsStr::from_bytes(target.as_bytes()))
    } else {
        // Devices and FIFOs: the header carries everything.
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())
    }
}

/// A readable handle of the regular file behind the `O_PATH` handle `file`: through
/// `/proc/self/fd`, which reopens that very inode. Without procfs, `last` is opened again from
/// `dir` without following symlinks or blocking, and must be the same file.
fn reopen(
    file: &File,
    meta: &std::fs::Metadata,
    dir: BorrowedFd<'_>,
    last: &OsStr,
) -> io::Result<File> {
    let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
    let f = match rustix::fs::open(
        proc.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => File::from(rustix::fs::openat(
            dir,
            last,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?),
        Err(e) => return Err(e.into()),
    };
    let now = f.metadata()?;
    if now.dev() != meta.dev() || now.ino() != meta.ino() || !now.is_file() {
        return Err(io::Error::other(format!(
            "`{}` changed while it was being archived",
            Path::new(last).display()
        )));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn hard_links_stay_hard_links() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a"), "data").unwrap();
        std::fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        std::fs::write(t.path().join("c"), "other").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        append_tree(&mut b, t.path(), Path::new(""), false).unwrap();
        let bytes = b.into_inner().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, tar::EntryType, Option<String>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("a".to_owned(), tar::EntryType::Regular, None),
                ("b".to_owned(), tar::EntryType::Link, Some("a".to_owned())),
                ("c".to_owned(), tar::EntryType::Regular, None),
            ]
        );
    }

    #[test]
    fn symlinks_are_archived_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(outside.join("secret"), "host").unwrap();
        fs_err::create_dir_all(t.path().join("root/d")).unwrap();
        fs_err::write(t.path().join("root/d/f"), "inside").unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("root/l")).unwrap();
        let root = rustix::fs::open(
            t.path().join("root").as_path(),
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        append_tree_at(&mut b, root.as_fd(), OsStr::new("."), Path::new(""), false).unwrap();
        let bytes = b.into_inner().unwrap();
        assert_eq!(names(&bytes), ["d", "d/f", "l"]);
        // The symlink as the starting entry is archived as itself too.
        let mut b = tar::Builder::new(Vec::new());
        append_tree_at(&mut b, root.as_fd(), OsStr::new("l"), Path::new("l"), false).unwrap();
        let bytes = b.into_inner().unwrap();
        assert_eq!(names(&bytes), ["l"]);
    }

    #[test]
    fn whiteouts_become_wh_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path();
        fs_err::create_dir_all(up.join("etc/opaque")).unwrap();
        fs_err::write(up.join("hello"), "hi").unwrap();
        fs_err::write(up.join("etc/opaque/keep"), "k").unwrap();
        let dev = nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        );
        let opq = xattr::set(up.join("etc/opaque"), "trusted.overlay.opaque", b"y");
        if dev.is_err() || opq.is_err() {
            // Needs root (mknod, trusted.* xattrs); nothing to check without it.
            return;
        }
        let mut b = tar::Builder::new(Vec::new());
        append_tree(&mut b, up, Path::new(""), true).unwrap();
        let bytes = b.into_inner().unwrap();
        let n = names(&bytes);
        assert!(n.contains(&"etc/.wh.gone".to_owned()), "{n:?}");
        assert!(!n.contains(&"etc/gone".to_owned()), "{n:?}");
        assert!(n.contains(&"etc/opaque/.wh..wh..opq".to_owned()), "{n:?}");
        assert!(n.contains(&"etc/opaque/keep".to_owned()), "{n:?}");
        assert!(n.contains(&"hello".to_owned()), "{n:?}");

        // Without conversion the device stays a device.
        let mut b = tar::Builder::new(Vec::new());
        append_tree(&mut b, up, Path::new(""), false).unwrap();
        let n = names(&b.into_inner().unwrap());
        assert!(n.contains(&"etc/gone".to_owned()), "{n:?}");
        assert!(!n.iter().any(|x| x.contains(".wh.")), "{n:?}");
    }
}
