//! `berth tag` (being written).

use crate::cli::TagArgs;
use crate::context::Ctx;

/// Runs `tag`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &TagArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth tag` is not implemented yet")
}
