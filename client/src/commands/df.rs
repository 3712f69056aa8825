//! `berth df` (being written).

use crate::cli::DfArgs;
use crate::context::Ctx;

/// Runs `df`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &DfArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth df` is not implemented yet")
}
