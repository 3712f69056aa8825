//! `berth kill`: [`crate::container::kill`] with SIGKILL (or `-s SIGNAL`: `SIGHUP`, `HUP`, `1`)
//! for each running container; prints each name or ID as given.

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
        container::kill::kill(ctx.store.root(), name, sig)?;
        Ok(Some(name.to_owned()))
    })
}
