//! `berth stop`: SIGTERM (or `-s`) to each container's init, SIGKILL after `-t` seconds
//! (default 10, `-1` waits forever); prints each name or ID as given.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::StopArgs;
use crate::containers::{self, Status};
use crate::context::Ctx;

/// Stops the containers.
///
/// # Errors
/// Any container that could not be found or stopped (the others are still stopped).
pub fn run(ctx: &Ctx, args: &StopArgs) -> anyhow::Result<()> {
    let sig = args
        .signal
        .as_deref()
        .map_or(Ok(Signal::SIGTERM), containers::parse_signal)?;
    let timeout = u64::try_from(args.timeout).ok().map(Duration::from_secs);
    let mut errors = Vec::new();
    for name in &args.containers {
        match stop(ctx, name, sig, timeout) {
            Ok(()) => ctx.printer.data(name),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

pub(crate) fn stop(
    ctx: &Ctx,
    name: &str,
    sig: Signal,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let (dir, state) = containers::find(ctx.store.root(), name)?;
    if state.status() != Status::Running {
        return Ok(());
    }
    containers::mark_stopped_by_user(&dir);
    // It may exit between the check and the signal: fine.
    let _ = containers::signal(&state, sig);
    let now = containers::wait_exit(&dir, timeout);
    if let Some(s) = now.filter(|s| s.status() == Status::Running) {
        let _ = containers::signal(&s, Signal::SIGKILL);
        let _ = containers::wait_exit(&dir, None);
    }
    Ok(())
}
