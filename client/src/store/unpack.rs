//! Unpacking layer tarballs into overlayfs-ready directories, treating every entry as hostile.
//!
//! Rules (each refusal aborts the layer, and the scratch directory is removed, so nothing of it
//! becomes visible):
//! - absolute paths and `..` components are refused (path traversal);
//! - no entry is written through a symlink: every parent component must be a real directory
//!   (symlink escape, the class of CVE-2018-15664 / CVE-2019-14271);
//! - hard links must name a path inside the layer that already exists and is reached without
//!   symlinks (hard-link escape);
//! - OCI whiteouts become overlayfs whiteouts: `.wh.<name>` → a 0:0 character device `<name>`,
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory;
//! - the uncompressed stream is hashed while unpacking and must equal the config's diff ID.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::{io, Result, Store, StoreError};

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// From the layer's media type, falling back to the first bytes of the blob.
    #[must_use]
    pub fn detect(media_type: &str, head: &[u8]) -> Self {
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Self::Zstd
        } else if media_type.ends_with("gzip") || head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer unpacked into scratch space and verified against its diff ID, not yet visible.
/// [`PendingLayer::publish`] moves it into the layer store; dropping it removes the scratch.
pub struct PendingLayer {
    store: Store,
    scratch: Option<PathBuf>,
    diff_id: Digest,
    size: u64,
}

impl PendingLayer {
    /// Makes the layer visible under its diff ID; returns its unpacked size. When another
    /// process published the same layer first, theirs is kept (same content).
    ///
    /// # Errors
    /// I/O failures.
    pub fn publish(mut self) -> Result<u64> {
        let scratch = self.scratch.take().expect("not yet published");
        let target = self.store.layer_path(&self.diff_id);
        match fs::rename(&scratch, &target) {
            Ok(()) => {}
            Err(_) if self.store.layer_size(&self.diff_id).is_some() => {
                let _ = fs::remove_dir_all(&scratch);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&scratch);
                return Err(StoreError::Io {
                    path: target,
                    source: e,
                });
            }
        }
        if let Some(parent) = target.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io(parent))?;
        }
        Ok(self.size)
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if let Some(s) = self.scratch.take() {
            let _ = fs::remove_dir_all(s);
        }
    }
}

impl Store {
    /// Unpacks the layer blob at `blob` into the layer store, verifying `diff_id`; returns the
    /// unpacked size. A layer already present is not unpacked again.
    ///
    /// # Errors
    /// `UnsafeEntry` for hostile entries, `DigestMismatch` when the tar is not `diff_id`, I/O.
    pub fn unpack_layer(&self, blob: &Path, media_type: &str, diff_id: &Digest) -> Result<u64> {
        if let Some(size) = self.layer_size(diff_id) {
            return Ok(size);
        }
        let file = File::open(blob).map_err(io(blob))?;
        self.unpack_reader(Box::new(file), media_type, diff_id)?
            .publish()
    }

    /// Unpacks a layer from any byte source (compressed as `media_type` says, or as its first
    /// bytes show) into scratch space, verifying `diff_id`. Used to unpack while downloading:
    /// the caller publishes only once the compressed blob's digest has been verified too.
    ///
    /// # Errors
    /// As [`Store::unpack_layer`].
    pub fn unpack_reader(
        &self,
        source: Box<dyn Read + Send>,
        media_type: &str,
        diff_id: &Digest,
    ) -> Result<PendingLayer> {
        let scratch = self
            .root
            .join("tmp")
            .join(format!("unpack-{}", uuid::Uuid::new_v4()));
        let mut pending = PendingLayer {
            store: self.clone(),
            scratch: Some(scratch.clone()),
            diff_id: diff_id.clone(),
            size: 0,
        };
        pending.size = self.unpack_into(source, media_type, diff_id, &scratch)?;
        Ok(pending)
    }

    fn unpack_into(
        &self,
        source: Box<dyn Read + Send>,
        media_type: &str,
        diff_id: &Digest,
        scratch: &Path,
    ) -> Result<u64> {
        let blob = scratch;
        let fs_root = scratch.join("fs");
        fs::create_dir_all(&fs_root).map_err(io(&fs_root))?;
        let mut file = BufReader::with_capacity(1 << 20, source);
        let head = {
            use std::io::BufRead;
            file.fill_buf()
                .map_err(io(blob))?
                .get(..4)
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        };
        let decoded: Box<dyn Read> = match Compression::detect(media_type, &head) {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(io(blob))?)
            }
        };
        let mut reader = HashingReader {
            inner: decoded,
            hasher: Sha256::new(),
        };
        let mut size = 0u64;
        {
            let mut archive = tar::Archive::new(&mut reader);
            for entry in archive.entries().map_err(io(blob))? {
                let entry = entry.map_err(io(blob))?;
                size += extract_entry(entry, &fs_root)?;
            }
        }
        // Hash the end-of-archive padding the tar reader did not consume.
        io::copy(&mut reader, &mut io::sink()).map_err(io(blob))?;
        let actual = format!("sha256:{}", hex::encode(reader.hasher.finalize()));
        if actual != diff_id.as_ref() {
            return Err(StoreError::DigestMismatch {
                expected: diff_id.to_string(),
                actual,
            });
        }
        Store::write_atomic(&scratch.join("size"), size.to_string().as_bytes())?;
        Ok(size)
    }
}

/// The entry's path as clean relative components, or a refusal.
fn clean_path(raw: &Path, entry: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(unsafe_entry(entry, "`..` in path (path traversal)"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(entry, "absolute path"));
            }
        }
    }
    Ok(out)
}

fn unsafe_entry(entry: &str, reason: &str) -> StoreError {
    StoreError::UnsafeEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Creates missing directories of `rel` under `root`, refusing to pass through anything that is
/// not a real directory (a symlink in particular). Returns the absolute directory.
fn safe_dir(root: &Path, rel: &Path, entry: &str) -> Result<PathBuf> {
    let mut cur = root.to_owned();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(unsafe_entry(
                    entry,
                    "a parent directory is a symlink (symlink escape)",
                ));
            }
            Ok(_) => return Err(unsafe_entry(entry, "a parent path is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(io(&cur))?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).map_err(io(&cur))?;
            }
            Err(e) => {
                return Err(StoreError::Io {
                    path: cur,
                    source: e,
                })
            }
        }
    }
    Ok(cur)
}

/// Removes whatever sits at `path` (not following symlinks), unless it is a directory and
/// `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io(path)),
        Ok(_) => fs::remove_file(path).map_err(io(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

fn chown(path: &Path, uid: u64, gid: u64) {
    let (Ok(u), Ok(g)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return;
    };
    // Without privileges the files stay ours; that is what rootless unpacking can do.
    let _ = fchownat(
        None,
        path,
        Some(Uid::from_raw(u)),
        Some(Gid::from_raw(g)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    );
}

fn extract_entry<R: Read>(mut entry: tar::Entry<'_, R>, root: &Path) -> Result<u64> {
    let raw = entry.path().map_err(io(root))?.into_owned();
    let shown = raw.display().to_string();
    let rel = clean_path(&raw, &shown)?;
    let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0); // the layer root itself ("./")
    };
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent = safe_dir(root, parent_rel, &shown)?;
    let header = entry.header().clone();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));

    if name == ".wh..wh..opq" {
        xattr_set_opaque(&parent, &shown)?;
        return Ok(0);
    }
    if let Some(hidden) = name.strip_prefix(".wh.") {
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
            return Err(unsafe_entry(&shown, "malformed whiteout"));
        }
        let target = parent.join(hidden);
        clear(&target, false)?;
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| StoreError::Io {
            path: target.clone(),
            source: e.into(),
        })?;
        return Ok(0);
    }

    let dest = parent.join(&name);
    let kind = header.entry_type();
    clear(&dest, kind.is_dir())?;
    match kind {
        tar::EntryType::Directory => {
            if !dest.exists() {
                fs::create_dir(&dest).map_err(io(&dest))?;
            }
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(io(&dest))?;
            chown(&dest, uid, gid);
            Ok(0)
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)
                .map_err(io(&dest))?;
            let n = io::copy(&mut entry, &mut f).map_err(io(&dest))?;
            // The layer's modification time, as Docker keeps it (directories and links keep
            // the unpack time: later entries would change a directory's anyway).
            if let Ok(t) = header.mtime() {
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                f.set_modified(when).map_err(io(&dest))?;
            }
            drop(f);
            chown(&dest, uid, gid);
            // After chown, which clears set-id bits.
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(io(&dest))?;
            Ok(n)
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(io(&dest))?
                .ok_or_else(|| unsafe_entry(&shown, "symlink without target"))?;
            // Not followed here; the runtime resolves links inside the container's root.
            symlink(&target, &dest).map_err(io(&dest))?;
            chown(&dest, uid, gid);
            Ok(0)
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(io(&dest))?
                .ok_or_else(|| unsafe_entry(&shown, "hard link without target"))?;
            let target_rel = clean_path(&target, &shown)
                .map_err(|_| unsafe_entry(&shown, "hard link target outside the layer"))?;
            let target_dir =
                safe_dir(root, target_rel.parent().unwrap_or(Path::new("")), &shown)
                    .map_err(|_| unsafe_entry(&shown, "hard link target outside the layer"))?;
            let source = target_dir.join(
                target_rel
                    .file_name()
                    .ok_or_else(|| unsafe_entry(&shown, "hard link to the layer root"))?,
            );
            match fs::symlink_metadata(&source) {
                Ok(m) if !m.is_dir() => {}
                _ => {
                    return Err(unsafe_entry(
                        &shown,
                        "hard link target is missing or a directory",
                    ))
                }
            }
            // link(2) does not follow a symlink at `source`: the link is to the symlink itself.
            fs::hard_link(&source, &dest).map_err(io(&dest))?;
            Ok(0)
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let (sflag, dev) = match kind {
                tar::EntryType::Char => (SFlag::S_IFCHR, dev(&header)),
                tar::EntryType::Block => (SFlag::S_IFBLK, dev(&header)),
                _ => (SFlag::S_IFIFO, 0),
            };
            let perm = Mode::from_bits_truncate(mode);
            if let Err(e) = mknod(&dest, sflag, perm, dev) {
                tracing::warn!(entry = %shown, error = %e, "cannot create device node; skipped");
                return Ok(0);
            }
            chown(&dest, uid, gid);
            Ok(0)
        }
        // PAX/GNU extension headers are consumed by the tar reader; anything else is ignored.
        _ => Ok(0),
    }
}

fn dev(h: &tar::Header) -> u64 {
    let major = u64::from(h.device_major().ok().flatten().unwrap_or(0));
    let minor = u64::from(h.device_minor().ok().flatten().unwrap_or(0));
    nix::sys::stat::makedev(major, minor)
}

/// Marks `dir` opaque for overlayfs (`trusted.overlay.opaque=y`): lower layers' entries are
/// hidden below it. nix has no `setxattr` wrapper, hence the `xattr` crate.
fn xattr_set_opaque(dir: &Path, shown: &str) -> Result<()> {
    xattr::set(dir, "trusted.overlay.opaque", b"y").map_err(|e| StoreError::UnsafeEntry {
        entry: shown.to_owned(),
        reason: format!("cannot mark directory opaque: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    /// Entry kinds for hand-made (possibly hostile) tarballs.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
    }

    /// Builds a tar, writing names raw so hostile paths survive (the builder would refuse them).
    fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let mut h = tar::Header::new_old();
            let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match e {
                E::Dir(n) => (n, tar::EntryType::Directory, b"", None),
                E::File(n, d) => (n, tar::EntryType::Regular, d, None),
                E::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", Some(t)),
                E::Hardlink(n, t) => (n, tar::EntryType::Link, b"", Some(t)),
            };
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_mode(if matches!(e, E::Dir(_)) { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn diff_id(tar: &[u8]) -> Digest {
        format!("sha256:{}", hex::encode(Sha256::digest(tar)))
            .parse()
            .unwrap()
    }

    fn setup(tar: &[u8], gzip: bool) -> (tempfile::TempDir, Store, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let blob = dir.path().join("layer");
        let bytes = if gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            gz.finish().unwrap()
        } else {
            tar.to_vec()
        };
        fs::write(&blob, bytes).unwrap();
        (dir, store, blob)
    }

    #[test]
    fn unpacks_files_links_and_whiteouts() {
        let tar = tar_of(&[
            E::Dir("etc/"),
            E::File("etc/hostname", b"box\n"),
            E::Symlink("etc/link", "/etc/hostname"),
            E::Hardlink("etc/hard", "etc/hostname"),
            E::File("etc/.wh.removed", b""),
            E::Dir("opt/"),
            E::File("opt/.wh..wh..opq", b""),
        ]);
        let (_d, store, blob) = setup(&tar, true);
        let id = diff_id(&tar);
        let size = store
            .unpack_layer(&blob, "application/vnd.oci.image.layer.v1.tar+gzip", &id)
            .unwrap();
        assert_eq!(size, 4);
        let fs_root = store.layer_path(&id).join("fs");
        assert_eq!(fs::read(fs_root.join("etc/hostname")).unwrap(), b"box\n");
        assert_eq!(
            fs::read_link(fs_root.join("etc/link")).unwrap(),
            Path::new("/etc/hostname")
        );
        let a = fs::metadata(fs_root.join("etc/hostname")).unwrap();
        assert_eq!(a.mtime(), 0, "a file keeps the layer's modification time");
        assert_eq!(
            a.ino(),
            fs::metadata(fs_root.join("etc/hard")).unwrap().ino()
        );
        let wh = fs::symlink_metadata(fs_root.join("etc/removed")).unwrap();
        assert!(
            wh.file_type().is_char_device() && wh.rdev() == 0,
            "whiteout is a 0:0 char device"
        );
        assert!(!fs_root.join("etc/.wh.removed").exists());
        assert_eq!(
            xattr::get(fs_root.join("opt"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(store.layer_size(&id), Some(4));
        // Unpacking again is a no-op.
        assert_eq!(store.unpack_layer(&blob, "", &id).unwrap(), 4);
    }

    #[test]
    fn zstd_layers_unpack() {
        let tar = tar_of(&[E::File("z", b"zstd!")]);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let blob = dir.path().join("layer");
        fs::write(&blob, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        let id = diff_id(&tar);
        store
            .unpack_layer(&blob, "application/vnd.oci.image.layer.v1.tar+zstd", &id)
            .unwrap();
        assert_eq!(
            fs::read(store.layer_path(&id).join("fs/z")).unwrap(),
            b"zstd!"
        );
    }

    fn assert_refused(entries: &[E<'_>], expected: &str) {
        let tar = tar_of(entries);
        let (dir, store, blob) = setup(&tar, false);
        let id = diff_id(&tar);
        let err = store
            .unpack_layer(&blob, "application/vnd.oci.image.layer.v1.tar", &id)
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(store.layer_size(&id).is_none(), "nothing published");
        assert!(!store.layer_path(&id).exists());
        assert_eq!(
            fs::read_dir(store.root().join("tmp")).unwrap().count(),
            0,
            "scratch removed"
        );
        // Nothing landed next to the store (where `..` or a symlink would have pointed).
        let outside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            outside.len(),
            2,
            "only `root` and `layer` exist: {outside:?}"
        );
    }

    #[test]
    fn refuses_path_traversal() {
        assert_refused(&[E::File("../../evil", b"x")], "path traversal");
        assert_refused(&[E::File("a/../../evil", b"x")], "path traversal");
    }

    #[test]
    fn refuses_absolute_paths() {
        assert_refused(&[E::File("/evil", b"x")], "absolute path");
    }

    #[test]
    fn refuses_writing_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_str().unwrap().to_owned();
        assert_refused(
            &[E::Symlink("escape", &target), E::File("escape/evil", b"x")],
            "symlink escape",
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written through the link"
        );
        assert_refused(
            &[E::Symlink("up", ".."), E::File("up/evil", b"x")],
            "symlink escape",
        );
    }

    #[test]
    fn refuses_hard_link_escapes() {
        assert_refused(&[E::Hardlink("passwd", "/etc/passwd")], "outside the layer");
        assert_refused(
            &[E::Hardlink("passwd", "../../../../etc/passwd")],
            "outside the layer",
        );
        assert_refused(
            &[
                E::Symlink("etc", "/etc"),
                E::Hardlink("passwd", "etc/passwd"),
            ],
            "outside the layer",
        );
        assert_refused(&[E::Hardlink("dangling", "missing")], "missing");
    }

    #[test]
    fn diff_id_mismatch_stores_nothing() {
        let tar = tar_of(&[E::File("f", b"data")]);
        let (_d, store, blob) = setup(&tar, true);
        let wrong = diff_id(b"something else");
        let err = store
            .unpack_layer(&blob, "application/vnd.oci.image.layer.v1.tar+gzip", &wrong)
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!store.layer_path(&wrong).exists());
    }
}
