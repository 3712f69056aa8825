//! Where a container's cgroups are: `/berth/<id>` below each hierarchy, the `cgroupsPath` its
//! spec gets at `create`, and the manager that reaches them on this host (for `pause`,
//! `update`, `top`, `stats` and the teardown).
//!
//! May call `berth_runtime::cgroups`.

use berth_runtime::cgroups::{self, CgroupError, Layout};

/// The container's `linux.cgroupsPath`.
#[must_use]
pub fn path(id: &str) -> String {
    format!("/berth/{id}")
}

/// The container's cgroups in `layout`.
///
/// # Errors
/// An invalid ID (never one Berth made).
pub fn manager_in(layout: &Layout, id: &str) -> Result<cgroups::Manager, CgroupError> {
    cgroups::Manager::new(layout, &path(id))
}

/// The container's cgroups on this host.
///
/// # Errors
/// The host's cgroup mounts cannot be read.
pub fn manager(id: &str) -> Result<cgroups::Manager, CgroupError> {
    manager_in(&cgroups::detect_host()?, id)
}
