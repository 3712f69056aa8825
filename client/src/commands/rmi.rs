//! `berth rmi` (being written).

use crate::cli::RmiArgs;
use crate::context::Ctx;

/// Runs `rmi`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &RmiArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth rmi` is not implemented yet")
}
