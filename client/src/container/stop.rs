//! `stop`: the stop signal to the container's init, SIGKILL when it still runs after the
//! timeout; the user's stop is recorded first so the restart policy leaves it stopped.
//!
//! The signal is `-s`, else the container's `--stop-signal` (which defaults to the image's
//! `STOPSIGNAL`), else SIGTERM; the timeout is `-t`, else the container's `--stop-timeout`,
//! else 10 seconds, as the Docker daemon does.
//!
//! May call [`super::state`], [`super::config`], [`super::restart`], [`super::signal`] and
//! [`super::wait`].

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::config::{load_create_config, CreateConfig};
use super::signal::{self, SignalError};
use super::state::{self, StateError, Status};

/// A container could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Seconds `stop` waits when neither `-t` nor `--stop-timeout` says (Docker's default).
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// How to stop; `None` leaves the choice to the container's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StopOptions {
    /// Sent first (`-s`).
    pub signal: Option<Signal>,
    /// Seconds to wait before SIGKILL (`-t`; negative: forever).
    pub timeout: Option<i64>,
}

impl StopOptions {
    /// `-s` and `-t` of `stop` and `restart`.
    ///
    /// # Errors
    /// Docker's `Invalid signal: …`.
    pub fn parse(signal: Option<&str>, timeout: Option<i64>) -> Result<Self, SignalError> {
        Ok(Self {
            signal: signal.map(signal::parse_signal).transpose()?,
            timeout,
        })
    }

    /// The signal and the wait for the container whose `create.json` is `config`.
    #[must_use]
    pub fn resolve(&self, config: &CreateConfig) -> (Signal, Option<Duration>) {
        let signal = self.signal.unwrap_or_else(|| {
            config
                .stop_signal
                .as_deref()
                .and_then(|s| signal::parse_signal(s).ok())
                .unwrap_or(Signal::SIGTERM)
        });
        let timeout = self
            .timeout
            .or(config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        (signal, u64::try_from(timeout).ok().map(Duration::from_secs))
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
    let (sig, timeout) = opts.resolve(&load_create_config(&dir, &state));
    super::restart::mark_stopped_by_user(&dir);
    // It may exit between the check and the signal: fine.
    let _ = signal::signal(&dir, &state, sig);
    let now = super::wait::wait_exit(&dir, timeout);
    if let Some(s) = now.filter(|s| s.status() == Status::Running) {
        let _ = signal::signal(&dir, &s, Signal::SIGKILL);
        let _ = super::wait::wait_exit(&dir, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_then_container_settings_then_docker_defaults() {
        let mut config = CreateConfig::default();
        let none = StopOptions::default();
        assert_eq!(
            none.resolve(&config),
            (Signal::SIGTERM, Some(Duration::from_secs(10)))
        );
        config.stop_signal = Some("SIGUSR1".into());
        config.stop_timeout = Some(-1);
        assert_eq!(none.resolve(&config), (Signal::SIGUSR1, None));
        let flags = StopOptions::parse(Some("HUP"), Some(3)).unwrap();
        assert_eq!(
            flags.resolve(&config),
            (Signal::SIGHUP, Some(Duration::from_secs(3)))
        );
        assert!(StopOptions::parse(Some("NOPE"), None).is_err());
    }
}
