//! A step's upper dir becomes a layer, never by walking the whole root: the commit code's
//! walker (`containers_fs::append_tree_at`, overlay whiteouts → OCI `.wh.` entries, entries in
//! name order) writes a tar of `upper/`, which is normalised for reproducible bytes (atime and
//! ctime dropped, mtimes clamped to `SOURCE_DATE_EPOCH` when set), then stored with the archive
//! code (`write_layer`: gzip blob + diff ID) and unpacked into the layer store.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::{BuildError, Result};
use crate::archive::import::write_layer;
use crate::archive::NewBlobs;
use crate::containers_fs::append_tree_at;
use crate::store::{LayerRecord, Store};

/// True when `upper` has no entries (the step changed nothing).
///
/// # Errors
/// I/O.
pub fn is_empty(upper: &Path) -> Result<bool> {
    Ok(fs_err::read_dir(upper)
        .map_err(BuildError::io(upper))?
        .next()
        .is_none())
}

/// Re-writes a tar stream with normalised headers.
fn normalise(input: impl Read, out: impl Write, epoch: Option<i64>) -> std::io::Result<()> {
    let mut ar = tar::Archive::new(input);
    let mut b = tar::Builder::new(out);
    let clamp = epoch.and_then(|e| u64::try_from(e).ok());
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let link = entry.link_name()?.map(std::borrow::Cow::into_owned);
        let old = entry.header().clone();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(old.entry_type());
        h.set_mode(old.mode().unwrap_or(0o644));
        h.set_uid(old.uid().unwrap_or(0));
        h.set_gid(old.gid().unwrap_or(0));
        let mtime = old.mtime().unwrap_or(0);
        h.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
        h.set_size(old.size()?);
        if let (Ok(Some(major)), Ok(Some(minor))) = (old.device_major(), old.device_minor()) {
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        match (old.entry_type(), link) {
            (tar::EntryType::Symlink | tar::EntryType::Link, Some(target)) => {
                h.set_size(0);
                b.append_link(&mut h, &path, &target)?;
            }
            _ => {
                let size = old.size()?;
                b.append_data(&mut h, &path, (&mut entry).take(size))?;
            }
        }
    }
    b.into_inner()?.flush()
}

/// The layer of `upper` (whiteouts included), stored and unpacked; `None` when it is empty.
///
/// # Errors
/// I/O, or the store refuses the layer.
pub fn from_upper(
    store: &Store,
    upper: &Path,
    epoch: Option<i64>,
) -> Result<Option<(LayerRecord, String)>> {
    if is_empty(upper)? {
        return Ok(None);
    }
    let dir = rustix::fs::open(
        upper,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| BuildError::io(upper)(e.into()))?;
    let (raw_r, raw_w) = std::io::pipe().map_err(BuildError::io(upper))?;
    let walker = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = tar::Builder::new(std::io::BufWriter::new(raw_w));
        append_tree_at(
            &mut b,
            rustix::fd::AsFd::as_fd(&dir),
            OsStr::new("."),
            Path::new(""),
            true,
        )?;
        b.into_inner()?.flush()
    });
    let (norm_r, norm_w) = std::io::pipe().map_err(BuildError::io(upper))?;
    let normaliser = std::thread::spawn(move || {
        normalise(
            std::io::BufReader::new(raw_r),
            std::io::BufWriter::new(norm_w),
            epoch,
        )
    });
    // Blobs stay after the build even when no image references them: cache entries do.
    let mut new = NewBlobs::new(store);
    let written = write_layer(store, &mut new, norm_r);
    std::mem::forget(new);
    let walked = walker
        .join()
        .map_err(|_| BuildError::io(upper)(std::io::Error::other("the layer walker panicked")))?;
    let normalised = normaliser
        .join()
        .map_err(|_| BuildError::io(upper)(std::io::Error::other("the normaliser panicked")))?;
    walked.map_err(BuildError::io(upper))?;
    normalised.map_err(BuildError::io(upper))?;
    let (layer, diff_id) = written?;
    let blob: oci_spec::image::Digest = layer.digest.parse().expect("stored digest");
    store.unpack_layer(
        &store.blob_path(&blob),
        &layer.media_type,
        &diff_id.parse().expect("computed digest"),
    )?;
    Ok(Some((layer, diff_id)))
}
