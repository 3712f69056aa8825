//! `berth kill`: sends SIGKILL (or `-s SIGNAL`: `SIGHUP`, `HUP`, `1`) to each running
//! container's init; prints each name or ID as given.

use crate::cli::KillArgs;
use crate::containers;
use crate::context::Ctx;

/// Signals the containers.
///
/// # Errors
/// A bad signal, or a container that is missing or not running (the others are signalled).
pub fn run(ctx: &Ctx, args: &KillArgs) -> anyhow::Result<()> {
    let sig = containers::parse_signal(&args.signal)?;
    let mut errors = Vec::new();
    for name in &args.containers {
        let result = containers::find(ctx.store.root(), name).and_then(|(dir, state)| {
            if state.status().can_kill() {
                containers::mark_stopped_by_user(&dir);
            }
            containers::signal(&state, sig)
        });
        match result {
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
