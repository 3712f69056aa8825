//! `berth cp`: copies between a container and the host, `CONTAINER:SRC DEST` or
//! `SRC CONTAINER:DEST`, `-` standing for a tar stream on STDIN/STDOUT; the copy is
//! [`crate::container::cp`]'s.

use std::io::Write as _;

use crate::cli::CpArgs;
use crate::container::cp;
use crate::context::Ctx;

/// `CONTAINER:PATH` split, or `None` for a local path (one with a `/` before any `:`, as Docker
/// decides).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c, p))
}

/// Runs `cp`.
///
/// # Errors
/// Both or neither side in a container, a missing source, I/O.
pub fn run(ctx: &Ctx, args: &CpArgs) -> anyhow::Result<()> {
    match (split(&args.source), split(&args.destination)) {
        (Some((c, src)), None) => {
            let mut stdout = std::io::stdout().lock();
            cp::copy_out(&ctx.store, c, src, &args.destination, &mut stdout)?;
            stdout.flush()?;
        }
        (None, Some((c, dest))) => {
            cp::copy_in(
                &ctx.store,
                &args.source,
                c,
                dest,
                &mut std::io::stdin().lock(),
            )?;
        }
        (Some(_), Some(_)) => anyhow::bail!("copying between containers is not supported"),
        (None, None) => anyhow::bail!("must specify at least one container source"),
    }
    Ok(())
}
