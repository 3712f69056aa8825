//! Running a [`Created`] container in this process (`berth run` without `-d`, `-i` or `-t`):
//! this process owns it, holds its address, serves its published ports, forwards signals to it
//! (Docker's `--sig-proxy`), relays its output through pipes and into its log (as Docker logs a
//! foreground container; not with `--rm`, whose log goes with it), and records its exit (or
//! removes it with `--rm`).
//!
//! May call [`super::state`], [`super::lock`], [`super::logs`], [`super::log_config`],
//! [`crate::network`], [`crate::relay`], [`crate::sigproxy`], [`crate::reaper`],
//! [`crate::volumes`] and `berth_runtime::run`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use berth_runtime::run::RunError;

use super::create::Created;
use super::lock::{Lock, LockError};
use super::state::{self, StateError, Status};
use crate::procfs::ProcessId;

/// A container could not be run, or its end recorded.
#[derive(Debug, thiserror::Error)]
pub enum ForegroundError {
    /// The container's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Writing `state.json`.
    #[error(transparent)]
    State(#[from] StateError),
    /// The output relay could not be set up.
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    /// The container's log cannot be opened.
    #[error("cannot open the container's log `{path}`")]
    Log {
        /// The log file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The container could not be run (its exit code: 125, 126 or 127).
    #[error(transparent)]
    Run(#[from] RunError),
}

impl ForegroundError {
    /// The runtime's error inside, which carries the exit code.
    #[must_use]
    pub fn run_error(&self) -> Option<&RunError> {
        match self {
            Self::Run(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs the container to its end; its exit code.
///
/// # Errors
/// It could not be run (the exit is recorded first), or its state cannot be written.
pub fn run(created: Created) -> Result<i32, ForegroundError> {
    let Created {
        guard,
        data_root,
        mut state,
        spec,
        names_lock,
    } = created;
    let dir = guard.path().to_owned();
    let id = state.id.clone();
    let auto_remove = state.auto_remove;
    let sinks = log_sinks(&dir, &state)?;
    let volume_names = state.volumes.clone();
    state.status = Status::Running;
    state.started_at = Some(crate::timestamp::now_rfc3339());
    state.monitor = ProcessId::of(nix::unistd::getpid().as_raw());
    // This process owns the container: it holds its address and serves its published ports.
    let network = crate::network::attach(
        &dir,
        &id,
        &state.name,
        state.network.as_mut(),
        Some(crate::container::connected_networks(&dir)),
    );
    {
        let lock = Lock::take(&dir)?;
        state::save(&dir, &state, &lock)?;
    }
    crate::reaper::done_creating(&dir);
    drop(names_lock);

    // Docker's --sig-proxy: Ctrl-C and friends go to the container, and berth stays to clean up.
    let init = Arc::new(AtomicI32::new(0));
    let proxy = crate::sigproxy::forward(crate::sigproxy::Target::Pid(init.clone()));
    // Pipes, never our own descriptors: the container gets no handle on our terminal.
    let (stdio, relay) = crate::relay::start(false, sinks)?;
    let result = match network {
        Ok(net) => {
            let mut prestart = |pid| net.as_ref().map_or(Ok(()), |a| (a.prestart())(pid));
            berth_runtime::run::run_full(&dir, &spec, stdio, &mut prestart, &mut |pid| {
                init.store(pid, Ordering::SeqCst);
                // So `stop`, `kill`, `rm -f`, `top` and `inspect` can reach it.
                let _ = state::update(&dir, |s| s.init = ProcessId::of(pid));
            })
        }
        Err(e) => Err(RunError::Prestart(format!("{e:#}").into())),
    };
    relay.finish();
    if let Some(p) = proxy {
        p.abort();
    }
    crate::network::release(&id);
    let (exit_code, oom_killed) = match &result {
        Ok(exit) => (exit.code, exit.oom_killed),
        Err(e) => (e.exit_code(), false),
    };
    if auto_remove {
        // Docker's `--rm` takes the anonymous volumes along once the container is gone.
        drop(guard);
        if !dir.exists() {
            let _ = crate::container::volume_users::remove_anonymous(&data_root, &volume_names);
        }
    } else {
        state::update(&dir, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(exit_code);
            s.oom_killed = oom_killed;
            s.finished_at = Some(crate::timestamp::now_rfc3339());
            if let Some(n) = s.network.as_mut() {
                n.forget();
            }
        })?;
    }
    Ok(result?.code)
}

/// The foreground container's stdout and stderr as log entries, unless nobody could read them
/// (`--rm`, `--log-driver none`).
fn log_sinks(
    dir: &std::path::Path,
    state: &super::state::State,
) -> Result<Option<[Box<dyn crate::relay::Sink>; 2]>, ForegroundError> {
    if state.auto_remove || !state.log_config.readable() {
        return Ok(None);
    }
    let path = super::logs::log_path(dir, &state.id);
    let writer = super::log_config::LogWriter::open(&path, &state.log_config)
        .map_err(|source| ForegroundError::Log { path, source })?;
    let log = Arc::new(std::sync::Mutex::new(writer));
    Ok(Some([
        Box::new(super::logs::LineLogger::new("stdout", Arc::clone(&log))),
        Box::new(super::logs::LineLogger::new("stderr", log)),
    ]))
}
