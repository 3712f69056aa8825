//! The root file system as a plain copy of the image's layers, for hosts where overlayfs cannot
//! be mounted on the data root (an overlayfs data root, as inside another container, or a file
//! system overlayfs refuses as upper). Layers are applied bottom to top with the same meaning
//! as the overlay: a whiteout (0:0 character device) deletes the path below it, an opaque
//! directory (`trusted.overlay.opaque=y`) hides what lower layers had in it. Ownership, modes,
//! symlinks and device nodes are kept; each layer's hard links become separate files.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{Gid, Uid};

/// Copies `lowers` (top layer first, as overlayfs takes them) into the empty directory `target`.
///
/// # Errors
/// Any I/O failure; `target` is then left partly filled for the caller to remove.
pub fn copy_layers(lowers: &[std::path::PathBuf], target: &Path) -> io::Result<()> {
    for layer in lowers.iter().rev() {
        apply_dir(layer, target)?;
    }
    Ok(())
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque")
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn own(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    nix::unistd::fchownat(
        None,
        path,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Applies the layer directory `src` onto `dst` (both directories).
fn apply_dir(src: &Path, dst: &Path) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let (from, to) = (src.join(&name), dst.join(&name));
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if is_whiteout(&meta) {
            remove_any(&to)?;
            continue;
        }
        if ft.is_dir() {
            let existing = fs::symlink_metadata(&to).ok();
            match existing {
                Some(m) if m.is_dir() => {
                    if is_opaque(&from) {
                        remove_any(&to)?;
                        fs::create_dir(&to)?;
                    }
                }
                Some(_) => {
                    remove_any(&to)?;
                    fs::create_dir(&to)?;
                }
                None => fs::create_dir(&to)?,
            }
            own(&to, &meta)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            apply_dir(&from, &to)?;
            continue;
        }
        remove_any(&to)?;
        if ft.is_file() {
            fs::copy(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else {
                // Sockets: nothing to carry over.
                continue;
            };
            let rdev = meta.rdev();
            mknod(
                &to,
                kind,
                Mode::from_bits_truncate(meta.mode() & 0o7777),
                makedev(nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)),
            )?;
        }
        own(&to, &meta)?;
        if !ft.is_symlink() {
            // After chown, which clears set-id bits.
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_like_overlayfs() {
        let t = tempfile::tempdir().unwrap();
        let (low, up, out) = (
            t.path().join("low"),
            t.path().join("up"),
            t.path().join("out"),
        );
        for d in [&low, &up, &out] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(low.join("etc/conf.d")).unwrap();
        fs::write(low.join("etc/conf.d/a"), "a").unwrap();
        fs::write(low.join("etc/keep"), "keep").unwrap();
        fs::write(low.join("gone"), "x").unwrap();
        fs::set_permissions(low.join("etc/keep"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("etc/keep", low.join("link")).unwrap();
        // Upper: deletes `gone`, replaces conf.d (opaque), overrides keep? no: adds a file.
        mknod(
            &up.join("gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .unwrap();
        fs::create_dir_all(up.join("etc/conf.d")).unwrap();
        xattr::set(up.join("etc/conf.d"), "trusted.overlay.opaque", b"y").unwrap();
        fs::write(up.join("etc/conf.d/b"), "b").unwrap();
        fs::write(up.join("new"), "new").unwrap();
        copy_layers(&[up.clone(), low.clone()], &out).unwrap();
        let mut seen = Vec::new();
        for e in walk(&out) {
            seen.push(e.strip_prefix(&out).unwrap().display().to_string());
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "etc",
                "etc/conf.d",
                "etc/conf.d/b",
                "etc/keep",
                "link",
                "new"
            ]
        );
        assert_eq!(
            fs::metadata(out.join("etc/keep")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::read_link(out.join("link")).unwrap(),
            Path::new("etc/keep")
        );
    }

    fn walk(d: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(walk(&p));
            }
        }
        out
    }
}
