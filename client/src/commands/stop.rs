//! `berth stop`: SIGTERM (or `-s`) to each container's init, SIGKILL after `-t` seconds
//! (default 10, `-1` waits forever); prints each name or ID as given.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::StopArgs;
use crate::container::{self, Status};
use crate::context::Ctx;

/// Stops the containers.
///
/// # Errors
/// Any container that could not be found or stopped (the others are still stopped).
pub fn run(ctx: &Ctx, args: &StopArgs) -> anyhow::Result<()> {
    let (sig, timeout) = signal_and_timeout(args.signal.as_deref(), args.timeout)?;
    super::each(ctx, &args.containers, |name| {
        stop(ctx, name, sig, timeout).map(|()| Some(name.to_owned()))
    })
}

/// `-s` (default SIGTERM) and `-t` seconds (`-1`: wait forever) of `stop` and `restart`.
///
/// # Errors
/// Docker's `Invalid signal: …`.
pub(crate) fn signal_and_timeout(
    signal: Option<&str>,
    timeout: i64,
) -> anyhow::Result<(Signal, Option<Duration>)> {
    let sig = signal.map_or(Ok(Signal::SIGTERM), container::parse_signal)?;
    Ok((sig, u64::try_from(timeout).ok().map(Duration::from_secs)))
}

pub(crate) fn stop(
    ctx: &Ctx,
    name: &str,
    sig: Signal,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let (dir, state) = container::find(ctx.store.root(), name)?;
    if state.status() != Status::Running {
        return Ok(());
    }
    container::mark_stopped_by_user(&dir);
    // It may exit between the check and the signal: fine.
    let _ = container::signal(&state, sig);
    let now = container::wait_exit(&dir, timeout);
    if let Some(s) = now.filter(|s| s.status() == Status::Running) {
        let _ = container::signal(&s, Signal::SIGKILL);
        let _ = container::wait_exit(&dir, None);
    }
    Ok(())
}
