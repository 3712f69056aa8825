//! `berth prune` (being written).

use crate::cli::PruneArgs;
use crate::context::Ctx;

/// Runs `prune`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &PruneArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth prune` is not implemented yet")
}
