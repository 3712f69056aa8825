//! `berth save` (being written).

use crate::cli::SaveArgs;
use crate::context::Ctx;

/// Runs `save`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &SaveArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth save` is not implemented yet")
}
