//! `-o type=tar|local`: the built image's root file system, flattened (whiteouts applied by the
//! overlay), as a tar stream or unpacked into a directory. The tree is walked by handles from
//! the root's with the export code (`containers_fs::append_tree_at`), as `berth export` does;
//! `type=oci|docker` need no code here (the archive code's `save` writes them). Calls
//! [`super::root`] (a scratch overlay of the image's layers) and the store.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;

use super::root::BuildRoot;
use super::{BuildError, Result};
use crate::containers_fs::{append_tree_at, RootDir};
use crate::store::{ImageRecord, Store};

/// Writes the root file system of `image` as a tar to `out`.
///
/// # Errors
/// A missing layer, the mount, I/O.
pub fn rootfs_tar(store: &Store, image: &ImageRecord, out: &mut dyn Write) -> Result<()> {
    let root = BuildRoot::mount(store, &image.layers)?;
    let path = root.rootfs();
    let dir = RootDir::open(&path)
        .map_err(|e| BuildError::setup("cannot open the image's root")(e.into()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, out));
    append_tree_at(&mut b, dir.fd(), OsStr::new("."), Path::new(""), false)
        .map_err(BuildError::io(&path))?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(BuildError::io(&path))?;
    Ok(())
}

/// Unpacks the root file system of `image` into the directory `dest` (created if missing;
/// files already there with the same names are replaced), owners, modes and mtimes kept.
///
/// # Errors
/// As [`rootfs_tar`]; a destination that cannot be written.
pub fn rootfs_dir(store: &Store, image: &ImageRecord, dest: &Path) -> Result<()> {
    fs_err::create_dir_all(dest).map_err(BuildError::io(dest))?;
    let (r, mut w) = std::io::pipe().map_err(BuildError::io(dest))?;
    let target = dest.to_owned();
    let unpacker = std::thread::spawn(move || -> std::io::Result<()> {
        let mut ar = tar::Archive::new(std::io::BufReader::new(r));
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        ar.unpack(&target)
    });
    let written = rootfs_tar(store, image, &mut w);
    drop(w);
    let unpacked = unpacker
        .join()
        .map_err(|_| BuildError::io(dest)(std::io::Error::other("the unpacker panicked")))?;
    // The unpacker's error first: when it stops, the walker only sees a broken pipe.
    unpacked.map_err(BuildError::io(dest))?;
    written
}
