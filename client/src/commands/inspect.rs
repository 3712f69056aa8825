//! `berth inspect` (being written).

use crate::cli::InspectArgs;
use crate::context::Ctx;

/// Runs `inspect`.
///
/// # Errors
/// Always, until implemented.
pub fn run(_ctx: &Ctx, _args: &InspectArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth inspect` is not implemented yet")
}
