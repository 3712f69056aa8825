//! `berth container-monitor ID` (internal): runs [`crate::container::monitor`].

use crate::cli::MonitorArgs;
use crate::context::Ctx;

/// Runs the monitor until the container exits.
///
/// # Errors
/// The container directory or spec is unreadable.
pub fn run(ctx: &Ctx, args: &MonitorArgs) -> anyhow::Result<()> {
    crate::container::monitor::run(&ctx.store, &args.id, args.attach_wait)
}
