//! `berth push` (being written).

use crate::cli::PushArgs;
use crate::context::Ctx;

/// Runs `push`.
///
/// # Errors
/// Always, until implemented.
#[allow(clippy::unused_async)]
pub async fn run(_ctx: &Ctx, _args: &PushArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth push` is not implemented yet")
}
