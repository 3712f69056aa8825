//! `rm`: removes a container that is not running (`force`: SIGKILL first), with what it left on
//! the host (mount, cgroups, address) and, with `volumes`, its anonymous volumes.
//!
//! May call [`super::state`], [`super::lock`], [`super::restart`], [`super::signal`],
//! [`super::wait`], [`super::rootfs`] and [`crate::volumes`].

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::lock::{Lock, LockError};
use super::state::{self, StateError, Status};

/// A container could not be removed (Docker's messages).
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// It runs and `force` was not given.
    #[error(
        "Error response from daemon: cannot remove container \"/{0}\": container is running: \
         stop the container before removing or force remove"
    )]
    Running(String),
    /// It still runs after SIGKILL.
    #[error("Error response from daemon: cannot remove container \"/{0}\": could not kill")]
    CouldNotKill(String),
    /// Its root file system could not be unmounted.
    #[error(
        "Error response from daemon: cannot remove container \"/{0}\": its root file system is still mounted"
    )]
    StillMounted(String),
    /// Its directory is gone while we waited for it.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Removing its directory.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What `rm` removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// `-f`: kill a running container first.
    pub force: bool,
    /// `-v`: its anonymous volumes too (named ones stay, as with Docker).
    pub volumes: bool,
}

/// Removes the container `name`.
///
/// # Errors
/// Docker's messages for a missing or running container; I/O.
pub fn remove(data_root: &Path, name: &str, opts: RemoveOptions) -> Result<(), RemoveError> {
    let (dir, state) = state::find(data_root, name)?;
    if !state.status().can_remove() {
        if !opts.force {
            return Err(RemoveError::Running(state.name));
        }
        super::restart::mark_stopped_by_user(&dir);
        let _ = super::signal::signal(&dir, &state, Signal::SIGKILL);
        let _ = super::wait::wait_exit(&dir, Some(Duration::from_secs(30)));
    }
    // Let the owner finish its teardown (a `--rm` monitor removes the directory itself).
    super::wait::wait_owner(&state, Duration::from_secs(10));
    if !dir.exists() {
        if opts.volumes {
            let _ = crate::container::volume_users::remove_anonymous(data_root, &state.volumes);
        }
        return Ok(());
    }
    let _lock = Lock::take(&dir)?;
    if state::load(&dir).is_ok_and(|s| s.status() == Status::Running) {
        return Err(RemoveError::CouldNotKill(state.name));
    }
    super::rootfs::teardown(&dir, &state.id);
    if super::rootfs::rootfs_mounted(&dir) {
        return Err(RemoveError::StillMounted(state.name));
    }
    fs_err::remove_dir_all(&dir)?;
    if opts.volumes {
        let _ = crate::container::volume_users::remove_anonymous(data_root, &state.volumes);
    }
    Ok(())
}
