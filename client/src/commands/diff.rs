//! `berth diff CONTAINER`: [`crate::container::diff`]'s changes, one `A|C|D PATH` line each, as
//! Docker prints them.

use crate::cli::DiffArgs;
use crate::context::Ctx;

/// Prints the container's changes.
///
/// # Errors
/// No such container; a copied root file system; missing layers; I/O.
pub fn run(ctx: &Ctx, args: &DiffArgs) -> anyhow::Result<()> {
    for c in crate::container::diff::diff(&ctx.store, &args.container)? {
        ctx.printer
            .data(&format!("{} {}", c.kind, c.path.display()));
    }
    Ok(())
}
