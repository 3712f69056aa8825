//! `berth pause|unpause CONTAINER...`: [`crate::container::pause`] for each container, whose
//! name is printed as Docker prints it.

use crate::cli::PauseArgs;
use crate::context::Ctx;

/// Pauses (`frozen`) or unpauses each container; the first failure ends with its message.
///
/// # Errors
/// No such container, not running, already (or not) paused, no freezer.
pub fn run(ctx: &Ctx, args: &PauseArgs, frozen: bool) -> anyhow::Result<()> {
    for name in &args.containers {
        crate::container::pause::set_paused(ctx.store.root(), name, frozen)?;
        ctx.printer.data(name);
    }
    Ok(())
}
