//! `kill`: a signal to a running container's init, recorded as the user's stop. For SIGKILL it
//! returns once the container has stopped and its owner has torn it down, as Docker's daemon
//! does, so `ps` says so and `start` can run it again.
//!
//! May call [`super::state`], [`super::restart`], [`super::signal`] and [`super::wait`].

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::signal::{self, SignalError};
use super::state::{self, StateError};

/// A container could not be signalled.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// It does not run, or the kernel refused.
    #[error(transparent)]
    Signal(#[from] SignalError),
}

/// Sends `sig` to the container `name`.
///
/// # Errors
/// No such container, not running, or the kernel refused.
pub fn kill(data_root: &Path, name: &str, sig: Signal) -> Result<(), KillError> {
    let (dir, state) = state::find(data_root, name)?;
    if state.status().can_kill() {
        super::restart::mark_stopped_by_user(&dir);
    }
    signal::signal(&dir, &state, sig)?;
    if sig == Signal::SIGKILL {
        let _ = super::wait::wait_exit(&dir, Some(Duration::from_secs(10)));
        super::wait::wait_owner(&state, Duration::from_secs(10));
    }
    Ok(())
}
