//! `berth load` (being written).

use crate::cli::LoadArgs;
use crate::context::Ctx;

/// Runs `load`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &LoadArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth load` is not implemented yet")
}
