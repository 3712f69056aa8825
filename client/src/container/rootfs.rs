//! The container's root file system on the host (`<dir>/rootfs`): whether it is an overlay
//! mount or a copy, and whether it is ready, and [`teardown`] of what a container leaves on the
//! host.
//!
//! May call [`crate::procfs`], `berth_runtime` (unmount, cgroups) and [`crate::network`] (to
//! release the container's address).

use std::path::Path;

/// Removes what a container left on the host: its root file system mount, its cgroups and its
/// bridge address. Best effort; safe when they are already gone.
pub fn teardown(dir: &Path, id: &str) {
    use berth_runtime::cgroups::CgroupManager as _;
    use berth_runtime::syscall::{MntFlags, Syscall as _};
    let rootfs = dir.join("rootfs");
    if crate::procfs::is_mount_point(&rootfs) {
        let _ = berth_runtime::syscall::LinuxSyscall.umount2(&rootfs, MntFlags::MNT_DETACH);
    }
    if let Ok(m) = super::cgroup::manager(id) {
        let _ = m.remove();
    }
    crate::network::release(id);
}

/// Marker file: the container's root file system is a plain copy of its layers (overlayfs could
/// not be mounted on the data root).
pub const ROOTFS_COPY_MARKER: &str = "rootfs.copy";

/// Whether the container's root file system is a copy rather than an overlay mount.
#[must_use]
pub fn rootfs_copied(dir: &Path) -> bool {
    dir.join(ROOTFS_COPY_MARKER).exists()
}

/// Whether the root file system is ready to run: mounted, or a copy.
#[must_use]
pub fn rootfs_ready(dir: &Path) -> bool {
    rootfs_copied(dir) || rootfs_mounted(dir)
}

/// Whether `<dir>/rootfs` is still a mount point.
#[must_use]
pub fn rootfs_mounted(dir: &Path) -> bool {
    crate::procfs::is_mount_point(&dir.join("rootfs"))
}
