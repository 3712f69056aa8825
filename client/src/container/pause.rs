//! `pause` and `unpause`: every process of a running container frozen, or thawed again, by its
//! cgroup freezer (v1's `freezer` controller, v2's `cgroup.freeze`), as Docker pauses them.
//! The state records it (`State.Paused`, `Up … (Paused)` in `ps`); a signal thaws the container
//! first ([`super::signal`]), and `exec` refuses a paused one.
//!
//! May call [`super::state`], [`super::lock`], [`super::cgroup`] and `berth_runtime::cgroups`.

use std::path::Path;

use berth_runtime::cgroups::CgroupError;

use super::lock::Lock;
use super::state::{self, StateError, Status};

/// A container could not be paused or unpaused (Docker's messages).
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// No such container, or its state cannot be written.
    #[error(transparent)]
    State(#[from] StateError),
    /// It does not run.
    #[error("Error response from daemon: Container {0} is not running")]
    NotRunning(String),
    /// `pause` of a paused container.
    #[error("Error response from daemon: Container {0} is already paused")]
    AlreadyPaused(String),
    /// `unpause` of one that is not.
    #[error("Error response from daemon: Container {0} is not paused")]
    NotPaused(String),
    /// The freezer could not be reached or did not finish.
    #[error("Error response from daemon: Cannot freeze or thaw container {container}")]
    Freezer {
        /// The container's ID.
        container: String,
        /// Why.
        #[source]
        source: CgroupError,
    },
}

/// Freezes (`frozen`) or thaws container `name`.
///
/// # Errors
/// See [`PauseError`].
pub fn set_paused(data_root: &Path, name: &str, frozen: bool) -> Result<(), PauseError> {
    let (dir, _) = state::find(data_root, name)?;
    let lock = Lock::take(&dir).map_err(StateError::from)?;
    let mut st = state::load(&dir)?;
    if st.status() != Status::Running || st.restarting {
        return Err(PauseError::NotRunning(st.id));
    }
    match (st.paused, frozen) {
        (true, true) => return Err(PauseError::AlreadyPaused(st.id)),
        (false, false) => return Err(PauseError::NotPaused(st.id)),
        _ => {}
    }
    super::cgroup::manager(&st.id)
        .and_then(|m| m.freeze(frozen))
        .map_err(|source| PauseError::Freezer {
            container: st.id.clone(),
            source,
        })?;
    st.paused = frozen;
    state::save(&dir, &st, &lock)?;
    Ok(())
}

/// Thaws a paused container about to be signalled; best effort (the signal is sent anyway).
pub(super) fn thaw_for_signal(dir: &Path, id: &str) {
    if super::cgroup::manager(id)
        .and_then(|m| m.freeze(false))
        .is_ok()
    {
        let _ = state::update(dir, |s| s.paused = false);
    }
}
