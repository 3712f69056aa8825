//! `berth stop`: [`crate::container::stop`] for each container (SIGTERM or `-s`, SIGKILL after
//! `-t` seconds, default 10, `-1` waits forever); prints each name or ID as given.

use crate::cli::StopArgs;
use crate::container::stop::{self, StopOptions};
use crate::context::Ctx;

/// Stops the containers.
///
/// # Errors
/// Any container that could not be found or stopped (the others are still stopped).
pub fn run(ctx: &Ctx, args: &StopArgs) -> anyhow::Result<()> {
    let opts = StopOptions::parse(args.signal.as_deref(), args.timeout)?;
    super::each(ctx, &args.containers, |name| {
        stop::stop(ctx.store.root(), name, &opts)?;
        Ok(Some(name.to_owned()))
    })
}
