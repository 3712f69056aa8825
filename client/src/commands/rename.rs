//! `berth rename CONTAINER NEW_NAME` (also `container rename`): [`crate::container::rename`].

use crate::cli::RenameArgs;
use crate::container;
use crate::context::Ctx;

/// Renames the container.
///
/// # Errors
/// Docker's messages: an empty or invalid name, the same name, a name in use, no such
/// container.
pub fn run(ctx: &Ctx, args: &RenameArgs) -> anyhow::Result<()> {
    container::rename::rename(ctx.store.root(), &args.container, &args.new_name)?;
    Ok(())
}
