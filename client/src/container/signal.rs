//! Signals: Docker's names for them, and sending one to a container's init.
//!
//! May call [`super::state`] and [`crate::procfs`].

use super::state::{State, Status};

/// A signal could not be parsed or sent.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Not a signal name or number.
    #[error("Invalid signal: {0}")]
    Invalid(String),
    /// The container's init does not run.
    #[error(
        "Error response from daemon: cannot kill container: {short}: container {id} is not running"
    )]
    NotRunning {
        /// Short ID.
        short: String,
        /// Full ID.
        id: String,
    },
    /// The kernel refused.
    #[error("cannot send {signal} to the container")]
    Send {
        /// The signal.
        signal: nix::sys::signal::Signal,
        /// Why.
        #[source]
        source: nix::errno::Errno,
    },
}

/// Parses a signal as Docker does: `SIGHUP`, `HUP`, `hup` or `1`.
///
/// # Errors
/// Docker's `Invalid signal: …`.
pub fn parse_signal(v: &str) -> Result<nix::sys::signal::Signal, SignalError> {
    use std::str::FromStr as _;
    if let Ok(n) = v.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| SignalError::Invalid(v.to_owned()));
    }
    let upper = v.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| SignalError::Invalid(v.to_owned()))
}

/// Sends `sig` to the container's init when it still runs; a paused container is thawed
/// first, so the signal is acted on (`stop`, `kill` and `rm -f` of a paused container work, as
/// in Docker).
///
/// # Errors
/// The container is not running, or the kernel refused.
pub fn signal(
    dir: &std::path::Path,
    state: &State,
    sig: nix::sys::signal::Signal,
) -> Result<(), SignalError> {
    let init = state
        .init
        .filter(|i| state.status() == Status::Running && i.alive())
        .ok_or_else(|| SignalError::NotRunning {
            short: state.short_id().to_owned(),
            id: state.id.clone(),
        })?;
    if state.is_paused() {
        super::pause::thaw_for_signal(dir, &state.id);
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), sig).map_err(|source| {
        SignalError::Send {
            signal: sig,
            source,
        }
    })?;
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        use nix::sys::signal::Signal;
        for v in ["SIGHUP", "HUP", "hup", "1"] {
            assert_eq!(parse_signal(v).unwrap(), Signal::SIGHUP);
        }
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
