//! `berth images` (being written).

use crate::cli::ImagesArgs;
use crate::context::Ctx;

/// Runs `images`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &ImagesArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth images` is not implemented yet")
}
