//! Waiting for a container to exit (`wait`), or for its owner process to finish.
//!
//! May call [`super::state`].

use std::path::Path;

use super::state::{find, load, State, StateError, Status};

/// A container could not be waited for.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// It was removed while waiting.
    #[error("Error response from daemon: No such container: {0}")]
    Removed(String),
}

/// `wait NAME`: blocks until the container stops; its exit code.
///
/// # Errors
/// No such container, or it was removed meanwhile.
pub fn wait(data_root: &Path, name: &str) -> Result<i32, WaitError> {
    let (dir, _) = find(data_root, name)?;
    let s = wait_exit(&dir, None).ok_or_else(|| WaitError::Removed(name.to_owned()))?;
    Ok(s.exit_code())
}

/// Polls until the container is no longer running or `timeout` passes; the last state read.
/// The poll interval starts at 1 ms and doubles up to 50 ms, so a container that stops at
/// once (the usual `stop`) is seen within a few milliseconds, not a whole 50 ms tick.
#[must_use]
pub fn wait_exit(dir: &Path, timeout: Option<std::time::Duration>) -> Option<State> {
    let start = std::time::Instant::now();
    let mut tick = std::time::Duration::from_millis(1);
    loop {
        let state = load(dir).ok()?;
        if state.status() != Status::Running {
            return Some(state);
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Some(state);
        }
        std::thread::sleep(tick);
        tick = (tick * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Polls until the owner process of the container is gone (it has recorded the exit and torn
/// down), at most `timeout`; every 1 ms at first, backing off to 20 ms.
pub fn wait_owner(state: &State, timeout: std::time::Duration) {
    let start = std::time::Instant::now();
    let mut tick = std::time::Duration::from_millis(1);
    while state.monitor.is_some_and(|m| m.alive()) && start.elapsed() < timeout {
        std::thread::sleep(tick);
        tick = (tick * 2).min(std::time::Duration::from_millis(20));
    }
}
