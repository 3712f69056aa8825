//! `berth history` (being written).

use crate::cli::HistoryArgs;
use crate::context::Ctx;

/// Runs `history`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &HistoryArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth history` is not implemented yet")
}
