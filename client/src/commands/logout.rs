//! `berth logout` (being written).

use crate::cli::LogoutArgs;
use crate::context::Ctx;

/// Runs `logout`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &LogoutArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth logout` is not implemented yet")
}
