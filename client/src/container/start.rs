//! Starting a container: a monitor process (`berth container-monitor ID`) takes it and reports
//! on a pipe once the container's program runs. Used by `run -d`, `start`, `restart` and the
//! restore of containers whose monitor died.
//!
//! May call [`super::state`], [`super::stop`], [`super::wait`] and `berth_runtime` (the
//! detached spawn and its ready report, the installed binary).

use std::path::Path;

use berth_runtime::detach::{DetachError, ReadyError};
use berth_runtime::run::RunError;

use super::state::{self, State, StateError, Status};

/// A container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Finding or updating the container.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--rm` container that already exited.
    #[error(
        "Error response from daemon: container {0} is marked for removal and cannot be started"
    )]
    MarkedForRemoval(String),
    /// The installed `berth` binary cannot be found.
    #[error("cannot find the berth executable")]
    NoExecutable(#[source] std::io::Error),
    /// The monitor process could not be spawned.
    #[error("cannot start the container monitor")]
    Spawn(#[source] DetachError),
    /// The container's program could not be started (its exit code: 125, 126 or 127).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The monitor died before it said anything.
    #[error("the container monitor exited before starting the container")]
    MonitorGone,
    /// Starting `name` failed (`start`'s wording around the cause).
    #[error("Error response from daemon: failed to start container {name}: {cause}")]
    Failed {
        /// The container as the user named it.
        name: String,
        /// The cause, flattened as Docker prints it.
        cause: String,
    },
}

impl StartError {
    /// The runtime's error inside, which carries the exit code (`run`'s 125/126/127).
    #[must_use]
    pub fn run_error(&self) -> Option<&RunError> {
        match self {
            Self::Run(e) => Some(e),
            _ => None,
        }
    }
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, StartError>;

/// The pipe the monitor reports on.
pub use berth_runtime::detach::ReadyPipe;

/// Starts the monitor (`berth container-monitor ID`) detached ([`berth_runtime::detach::spawn`]:
/// its own session, reparented away from this process, stdin and stderr `/dev/null`); its word
/// comes on the returned pipe: `ok` once the container's program runs, `err CODE MESSAGE` when
/// it could not start. With `attach_wait` it waits for a client on its attach socket first.
///
/// # Errors
/// The binary cannot be found or spawned.
pub fn spawn_monitor(data_root: &Path, id: &str, attach_wait: bool) -> Result<ReadyPipe> {
    // The installed binary, also when this process runs from its sealed copy.
    let exe = berth_runtime::cloned_binary::original_exe().map_err(StartError::NoExecutable)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-root")
        .arg(data_root)
        .arg("container-monitor");
    if attach_wait {
        cmd.arg("--attach-wait");
    }
    cmd.arg(id).current_dir("/");
    berth_runtime::detach::spawn(cmd).map_err(StartError::Spawn)
}

/// Reads the monitor's word: `Ok` once the container runs.
///
/// # Errors
/// The container could not start ([`StartError::Run`]), or the monitor died first.
pub fn read_ready(pipe: &mut ReadyPipe) -> Result<()> {
    match pipe.wait_ready() {
        Ok(()) => Ok(()),
        Err(ReadyError::Run(e)) => Err(e.into()),
        Err(ReadyError::Gone) => Err(StartError::MonitorGone),
    }
}

/// Starts the container `id` under a monitor and returns once its program runs.
///
/// # Errors
/// As [`spawn_monitor`] and [`read_ready`].
pub fn start_detached(data_root: &Path, id: &str) -> Result<()> {
    let mut pipe = spawn_monitor(data_root, id, false)?;
    read_ready(&mut pipe)
}

/// Clears what the last run left in the state (the user's stop, the exit) so the monitor's
/// restart policy starts afresh.
///
/// # Errors
/// An exited `--rm` container; the state cannot be updated.
pub fn prepare(dir: &Path, state: &State) -> Result<()> {
    if state.auto_remove && state.status() == Status::Exited {
        return Err(StartError::MarkedForRemoval(state.id.clone()));
    }
    state::update(dir, |s| {
        s.stopped_by_user = false;
        s.restarting = false;
        s.paused = false;
        s.init = None;
        s.monitor = None;
    })?;
    Ok(())
}

/// `start NAME` without attaching: nothing when it already runs, else a new monitor runs it.
///
/// # Errors
/// No such container; it cannot be started ([`StartError::Failed`]).
pub fn start(data_root: &Path, name: &str) -> Result<()> {
    let (dir, state) = state::find(data_root, name)?;
    if state.status() == Status::Running {
        return Ok(());
    }
    prepare(&dir, &state)?;
    let mut pipe = spawn_monitor(data_root, &state.id, false)?;
    read_ready(&mut pipe).map_err(|e| StartError::Failed {
        name: name.to_owned(),
        cause: format!("{:#}", anyhow::Error::from(e)),
    })
}

/// `restart NAME`: stops it as `stop` does, waits for its old monitor to be gone, then starts
/// it again.
///
/// # Errors
/// No such container; it cannot be started.
pub fn restart(data_root: &Path, name: &str, opts: &super::stop::StopOptions) -> Result<()> {
    super::stop::stop(data_root, name, opts).map_err(|super::stop::StopError::State(e)| e)?;
    // The old monitor must be gone before a new one takes the container.
    let (_, state) = state::find(data_root, name)?;
    super::wait::wait_owner(&state, std::time::Duration::from_secs(10));
    start(data_root, name)
}
