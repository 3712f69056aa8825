//! `berth commit`: [`crate::container::commit`] makes a container's changes a new image;
//! prints `sha256:<image id>`.

use crate::cli::CommitArgs;
use crate::container::commit::{self, CommitError, CommitOptions};
use crate::context::Ctx;

/// Runs `commit`.
///
/// # Errors
/// No such container or image, invalid reference or `--change`, I/O.
pub fn run(ctx: &Ctx, args: &CommitArgs) -> anyhow::Result<()> {
    let opts = CommitOptions {
        container: args.container.clone(),
        reference: args.reference.clone(),
        author: args.author.clone(),
        message: args.message.clone(),
        changes: args.change.clone(),
    };
    let id = commit::commit(&ctx.store, &opts).map_err(CommitError::into_anyhow)?;
    ctx.printer.data(&id);
    Ok(())
}
