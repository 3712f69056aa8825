//! Attaching to a container: to one that runs ([`attach_running`]), or to one a new monitor
//! starts for us ([`start_attached`]), until it exits or the user detaches.
//!
//! May call [`super::start`], [`super::wait`], [`crate::attach`] (the wire protocol and the
//! terminal) and [`crate::sigproxy`].

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use berth_runtime::run::EXIT_RUNTIME;

use super::start::{self, StartError};
use crate::attach::{Ended, Options};

/// Attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Starting the container under a monitor.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Connecting to the monitor's attach socket.
    #[error(transparent)]
    Connect(#[from] crate::attach::ConnectError),
    /// Saying hello to the monitor.
    #[error(transparent)]
    Hello(std::io::Error),
    /// Relaying our streams (writing our own output).
    #[error(transparent)]
    Relay(std::io::Error),
}

impl AttachError {
    /// The runtime's error inside, which carries the exit code (`run`'s 125/126/127).
    #[must_use]
    pub fn run_error(&self) -> Option<&berth_runtime::run::RunError> {
        match self {
            Self::Start(e) => e.run_error(),
            _ => None,
        }
    }
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, AttachError>;

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys; the container still runs.
    Detached,
}

/// Attaches to the container in `dir`, which runs (its monitor listens).
///
/// # Errors
/// No monitor listens; the session failed.
pub fn attach_running(dir: &Path, opts: &Options, sig_proxy: bool) -> Result<Attached> {
    let mut stream = crate::attach::connect(dir)?;
    crate::attach::hello(&mut stream, opts).map_err(AttachError::Hello)?;
    let proxy = sig_proxy
        .then(|| crate::sigproxy::forward(crate::sigproxy::Target::Container(dir.to_owned())))
        .flatten();
    let ended = finish(dir, stream, opts);
    if let Some(p) = proxy {
        p.abort();
    }
    ended
}

/// Starts the container `id` under a monitor that waits for us, attaches our stdio and returns
/// how it ended.
///
/// # Errors
/// The container could not start; the session failed.
pub fn start_attached(dir: &Path, data_root: &Path, id: &str, opts: &Options) -> Result<Attached> {
    let mut pipe = start::spawn_monitor(data_root, id, true)?;
    let mut stream = crate::attach::connect_retry(dir, Duration::from_secs(10))?;
    crate::attach::hello(&mut stream, opts).map_err(AttachError::Hello)?;
    start::read_ready(&mut pipe)?;
    // Without a terminal, signals go to the container (with one, keys are bytes for its pty).
    let proxy = if opts.tty {
        None
    } else {
        crate::sigproxy::forward(crate::sigproxy::Target::Container(dir.to_owned()))
    };
    let ended = finish(dir, stream, opts);
    if let Some(p) = proxy {
        p.abort();
    }
    ended
}

/// Runs an attachment to its end: the exit code from the monitor, or else from the state.
fn finish(dir: &Path, stream: UnixStream, opts: &Options) -> Result<Attached> {
    Ok(
        match crate::attach::attach(stream, opts).map_err(AttachError::Relay)? {
            Ended::Exited(code) => Attached::Exited(code),
            Ended::Detached => Attached::Detached,
            Ended::Closed => Attached::Exited(
                super::wait::wait_exit(dir, None)
                    .and_then(|s| s.exit_code)
                    .unwrap_or(EXIT_RUNTIME),
            ),
        },
    )
}
