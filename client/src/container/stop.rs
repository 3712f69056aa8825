//! `stop`: the stop signal (SIGTERM, or `-s`) to the container's init, SIGKILL when it still
//! runs after the timeout; the user's stop is recorded first so the restart policy leaves it
//! stopped.
//!
//! May call [`super::state`], [`super::restart`], [`super::signal`] and [`super::wait`].

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::signal::{self, SignalError};
use super::state::{self, StateError, Status};

/// A container could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// Sent first.
    pub signal: Signal,
    /// How long to wait before SIGKILL (`None`: forever).
    pub timeout: Option<Duration>,
}

impl StopOptions {
    /// `-s` (default SIGTERM) and `-t` seconds (negative: wait forever) of `stop` and `restart`.
    ///
    /// # Errors
    /// Docker's `Invalid signal: …`.
    pub fn parse(signal: Option<&str>, timeout: i64) -> Result<Self, SignalError> {
        Ok(Self {
            signal: signal.map_or(Ok(Signal::SIGTERM), signal::parse_signal)?,
            timeout: u64::try_from(timeout).ok().map(Duration::from_secs),
        })
    }
}

/// Stops the container `name`; nothing when it does not run.
///
/// # Errors
/// No such container.
pub fn stop(data_root: &Path, name: &str, opts: &StopOptions) -> Result<(), StopError> {
    let (dir, state) = state::find(data_root, name)?;
    if state.status() != Status::Running {
        return Ok(());
    }
    super::restart::mark_stopped_by_user(&dir);
    // It may exit between the check and the signal: fine.
    let _ = signal::signal(&state, opts.signal);
    let now = super::wait::wait_exit(&dir, opts.timeout);
    if let Some(s) = now.filter(|s| s.status() == Status::Running) {
        let _ = signal::signal(&s, Signal::SIGKILL);
        let _ = super::wait::wait_exit(&dir, None);
    }
    Ok(())
}
