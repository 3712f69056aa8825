//! `berth search` (being written).

use crate::cli::SearchArgs;
use crate::context::Ctx;

/// Runs `search`.
///
/// # Errors
/// Always, until implemented.
#[allow(clippy::unused_async)]
pub async fn run(_ctx: &Ctx, _args: &SearchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth search` is not implemented yet")
}
