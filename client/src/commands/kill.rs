//! `berth kill`: sends SIGKILL (or `-s SIGNAL`: `SIGHUP`, `HUP`, `1`) to each running
//! container's init; prints each name or ID as given.

use crate::cli::KillArgs;
use crate::container;
use crate::context::Ctx;

/// Signals the containers.
///
/// # Errors
/// A bad signal, or a container that is missing or not running (the others are signalled).
pub fn run(ctx: &Ctx, args: &KillArgs) -> anyhow::Result<()> {
    let sig = container::parse_signal(&args.signal)?;
    super::each(ctx, &args.containers, |name| {
        let (dir, state) = container::find(ctx.store.root(), name)?;
        if state.status().can_kill() {
            container::mark_stopped_by_user(&dir);
        }
        container::signal(&state, sig)?;
        if sig == nix::sys::signal::Signal::SIGKILL {
            // As Docker's daemon does for SIGKILL: return once the container has stopped and
            // its owner has torn it down, so `ps` says so and `start` can run it again.
            let _ = container::wait_exit(&dir, Some(std::time::Duration::from_secs(10)));
            container::wait_owner(&state, std::time::Duration::from_secs(10));
        }
        Ok(Some(name.to_owned()))
    })
}
