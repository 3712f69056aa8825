//! `berth export`: [`crate::container::export`]'s tar stream of a container's file system, on
//! STDOUT (never a terminal) or into `-o FILE`.

use std::io::IsTerminal as _;

use crate::archive::ArchiveError;
use crate::cli::ExportArgs;
use crate::container::export::{self, ExportOptions};
use crate::context::Ctx;

/// Runs `export`.
///
/// # Errors
/// No such container, STDOUT is a terminal, mount or I/O failures.
pub fn run(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::Terminal.into_anyhow());
    }
    let opts = ExportOptions {
        container: args.container.clone(),
        output: args.output.clone(),
    };
    export::export(&ctx.store, &opts, &mut std::io::stdout().lock())?;
    Ok(())
}
