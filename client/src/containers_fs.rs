//! A container's file system from the host side, for `export`, `commit` and `cp`: its merged
//! root ([`MergedRoot`]: the running container's mount, or a private temporary overlay mount
//! undone on drop), tar streams of a tree ([`append_tree`], optionally turning overlay whiteouts
//! into OCI `.wh.` entries), and a tar extractor that resolves every path inside the container's
//! root ([`extract_in_root`]) so container symlinks never reach host files (CVE-2018-15664).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::rootfs::{mount_overlay, secure_join};
use berth_runtime::syscall::{LinuxSyscall, MntFlags, MsFlags, Syscall as _};

use crate::containers::{self, Lock, State, Status};
use crate::store::Store;

/// The overlay lower directories of the container's image, top layer first.
///
/// # Errors
/// The image is gone from the store.
pub fn lowers(store: &Store, state: &State) -> anyhow::Result<Vec<PathBuf>> {
    let image = store
        .image(&state.image)
        .with_context(|| format!("the image of container {} is gone", state.name))?;
    image
        .layers
        .iter()
        .rev()
        .map(|l| Ok(store.layer_path(&l.diff_id.parse()?).join("fs")))
        .collect()
}

/// Mounts the container's root file system at `<dir>/rootfs` unless it is mounted already
/// (a container started again after it exited).
///
/// # Errors
/// Missing layers, or the mount fails.
pub fn ensure_rootfs(store: &Store, dir: &Path, state: &State) -> anyhow::Result<()> {
    if containers::rootfs_ready(dir) {
        return Ok(());
    }
    mount_overlay(
        &LinuxSyscall,
        &lowers(store, state)?,
        &dir.join("upper"),
        &dir.join("work"),
        &dir.join("rootfs"),
    )
    .context("cannot mount the container's root file system")
}

/// The container's merged root file system, usable while this value lives. Holds the
/// container's lock, so it is not removed or restarted meanwhile.
pub struct MergedRoot {
    path: PathBuf,
    temporary: bool,
    _lock: Lock,
}

impl MergedRoot {
    /// The running container's mounted `rootfs/`, or else a private overlay mount of its layers
    /// and `upper/` at a temporary mount point under the store's `tmp/`.
    ///
    /// # Errors
    /// Missing image layers, or the mount fails.
    pub fn open(store: &Store, dir: &Path, state: &State) -> anyhow::Result<Self> {
        let lock = Lock::take(dir)?;
        let state = containers::load(dir).unwrap_or_else(|_| state.clone());
        let copied = containers::rootfs_copied(dir);
        if copied || (state.status() == Status::Running && containers::rootfs_mounted(dir)) {
            return Ok(Self {
                path: dir.join("rootfs"),
                temporary: false,
                _lock: lock,
            });
        }
        let lowers = lowers(store, &state)?;
        let path = store
            .root()
            .join("tmp")
            .join(format!("mnt-{}", uuid::Uuid::new_v4().simple()));
        fs_err::create_dir_all(&path)?;
        if let Err(e) = mount_overlay(
            &LinuxSyscall,
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &path,
        ) {
            let _ = fs_err::remove_dir(&path);
            return Err(e).context("cannot mount the container's root file system");
        }
        let root = Self {
            path,
            temporary: true,
            _lock: lock,
        };
        // Keep the mount out of other mount namespaces.
        LinuxSyscall
            .mount(None, &root.path, None, MsFlags::MS_PRIVATE, None)
            .context("cannot make the mount private")?;
        Ok(root)
    }

    /// The root's path on the host.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MergedRoot {
    fn drop(&mut self) {
        if self.temporary
            && LinuxSyscall
                .umount2(&self.path, MntFlags::MNT_DETACH)
                .is_ok()
        {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

fn empty_file(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h
}

/// Appends `path` (not following a symlink there) as `name`, recursively, children in name
/// order. With `whiteouts`, an overlay whiteout (a 0:0 character device) becomes an empty
/// `.wh.<name>` file and an opaque directory gets a `.wh..wh..opq` entry, as OCI layers want.
///
/// # Errors
/// I/O.
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    whiteouts: bool,
) -> io::Result<()> {
    append_tree_linked(b, path, name, whiteouts, &mut HashMap::new())
}

/// [`append_tree`], remembering the first name of each multiply-linked file (by device and
/// inode) so later names become hard-link entries, as `tar` does.
fn append_tree_linked<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    whiteouts: bool,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
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
        if whiteouts && is_opaque(path) {
            let oname = name.join(".wh..wh..opq");
            let mut h = empty_file(mtime);
            b.append_data(&mut h, &oname, io::empty())?;
        }
        let mut children: Vec<OsString> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        children.sort();
        for c in children {
            append_tree_linked(b, &path.join(&c), &name.join(&c), whiteouts, links)?;
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
        let f = File::open(path)?;
        b.append_data(&mut h, name, f)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        b.append_link(&mut h, name, target)
    } else {
        // Devices and FIFOs: the header carries everything.
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())
    }
}

/// `p` made relative, with `.` dropped and `..` applied lexically (never above the top); for
/// container paths, which [`secure_join`] then resolves.
#[must_use]
pub fn normal(p: &Path) -> PathBuf {
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

/// Removes what is at `p` (not following a symlink) unless it is a directory.
fn remove_non_dir(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(p),
        _ => Ok(()),
    }
}

/// Extracts the tar `input` into `dest` (a path inside the container, absolute in its view)
/// under `root`. Every entry's parent is resolved with [`secure_join`] against `root`, and the
/// last component is replaced, never followed, so a symlink in the container cannot redirect a
/// write outside `root`. Entries that climb with `..` are refused.
///
/// # Errors
/// I/O, a hostile entry.
pub fn extract_in_root(root: &Path, dest: &Path, input: impl Read) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = entry_rel(&raw)
            .with_context(|| format!("refusing archive entry `{}`", raw.display()))?;
        let Some(file_name) = rel.file_name().map(ToOwned::to_owned) else {
            continue; // the archive's root `./`
        };
        let parent = secure_join(root, &dest.join(rel.parent().unwrap_or(Path::new(""))))?;
        fs_err::create_dir_all(&parent)?;
        let target = parent.join(&file_name);
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    remove_non_dir(&target)?;
                    fs_err::create_dir(&target)?;
                }
                std::fs::set_permissions(
                    &target,
                    std::os::unix::fs::PermissionsExt::from_mode(mode),
                )?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_non_dir(&target)?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(&target)
                    .with_context(|| format!("cannot create `{}`", target.display()))?;
                io::copy(&mut entry, &mut f)?;
                // The umask may have narrowed the mode.
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.context("symlink without a target")?;
                remove_non_dir(&target)?;
                std::os::unix::fs::symlink(&link, &target)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name()?.context("hard link without a target")?;
                let link = entry_rel(&link).context("refusing a hard link that climbs")?;
                let from = secure_join(root, &dest.join(link))?;
                remove_non_dir(&target)?;
                fs_err::hard_link(&from, &target)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `produce` on a thread writing into a pipe and `consume` on the read end.
///
/// # Errors
/// Either side's error.
pub fn piped(
    produce: impl FnOnce(&mut dyn Write) -> anyhow::Result<()> + Send + 'static,
    consume: impl FnOnce(&mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (mut r, mut w) = io::pipe()?;
    let t = std::thread::spawn(move || produce(&mut w));
    let consumed = consume(&mut r);
    drop(r);
    let produced = t
        .join()
        .map_err(|_| anyhow::anyhow!("the tar writer panicked"))?;
    consumed.and(produced)
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
        let one = |name: &str, data: &str| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data.as_bytes()).unwrap();
            b.into_inner().unwrap()
        };
        extract_in_root(&root, Path::new("/evil"), &one("x", "a")[..]).unwrap();
        extract_in_root(&root, Path::new("/"), &one("link", "b")[..]).unwrap();
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
    fn climbing_entries_are_refused() {
        assert!(entry_rel(Path::new("../x")).is_none());
        assert_eq!(entry_rel(Path::new("./a/b")), Some(PathBuf::from("a/b")));
    }
}
