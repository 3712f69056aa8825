//! `berth rm`: [`crate::container::rm`] for each container (`-f`: SIGKILL first, `-v`: its
//! anonymous volumes too); prints each name or ID as given.

use crate::cli::RmArgs;
use crate::container::rm::{self, RemoveOptions};
use crate::context::Ctx;

/// Removes the containers.
///
/// # Errors
/// A container that is missing or running without `-f` (the others are removed).
pub fn run(ctx: &Ctx, args: &RmArgs) -> anyhow::Result<()> {
    let opts = RemoveOptions {
        force: args.force,
        volumes: args.volumes,
    };
    super::each(ctx, &args.containers, |name| {
        rm::remove(ctx.store.root(), name, opts)?;
        Ok(Some(name.to_owned()))
    })
}
