//! `berth pull` (being written).

use crate::cli::PullArgs;
use crate::context::Ctx;

/// Runs `pull`.
///
/// # Errors
/// Always, until implemented.
#[allow(clippy::unused_async)]
pub async fn run(_ctx: &Ctx, _args: &PullArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth pull` is not implemented yet")
}
