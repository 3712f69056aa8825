//! Scratch root file systems for build steps: `<data-root>/tmp/build-<id>/` holding an overlay
//! of an image state's layers (`rootfs/`) over a fresh, empty `upper/`. Whatever a step writes
//! lands in `upper/`, which becomes the step's layer. Unmounted and removed on drop, so a
//! failed step leaves no mount and no directory. Calls `berth_runtime::rootfs::mount_overlay`.

use std::path::{Path, PathBuf};

use berth_runtime::rootfs::mount_overlay;
use berth_runtime::syscall::{LinuxSyscall, MntFlags, Syscall as _};

use super::{BuildError, Result};
use crate::store::{LayerRecord, Store};

/// A mounted scratch root.
#[derive(Debug)]
pub struct BuildRoot {
    dir: PathBuf,
    mounted: bool,
}

impl BuildRoot {
    /// Mounts `layers` (base first) with an empty upper dir. `scratch`-based states have no
    /// layers: an empty directory stands in as the lower one.
    ///
    /// # Errors
    /// A missing layer, or the mount fails.
    pub fn mount(store: &Store, layers: &[LayerRecord]) -> Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = store.root().join("tmp").join(format!("build-{id}"));
        let mut root = Self {
            dir: dir.clone(),
            mounted: false,
        };
        for sub in ["rootfs", "upper", "work", "empty"] {
            fs_err::create_dir_all(dir.join(sub)).map_err(BuildError::io(dir.join(sub)))?;
        }
        let mut lowers: Vec<PathBuf> = Vec::new();
        for l in layers.iter().rev() {
            let diff: oci_spec::image::Digest = l
                .diff_id
                .parse()
                .map_err(|e| BuildError::setup("a layer's diff ID")(anyhow::Error::new(e)))?;
            lowers.push(store.layer_path(&diff).join("fs"));
        }
        if lowers.is_empty() {
            lowers.push(dir.join("empty"));
        }
        mount_overlay(
            &LinuxSyscall,
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &dir.join("rootfs"),
        )
        .map_err(|e| {
            BuildError::setup("cannot mount the build step's root file system")(e.into())
        })?;
        root.mounted = true;
        Ok(root)
    }

    /// The merged root.
    #[must_use]
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The upper dir: the step's changes.
    #[must_use]
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// The scratch directory (a bundle for RUN: `config.json`, `/etc` files).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Unmounts the overlay (the upper dir stays until drop).
    ///
    /// # Errors
    /// The unmount fails.
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            LinuxSyscall
                .umount2(&self.rootfs(), MntFlags::MNT_DETACH)
                .map_err(|e| BuildError::setup("cannot unmount a build root")(e.into()))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for BuildRoot {
    fn drop(&mut self) {
        if self.unmount().is_ok() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
