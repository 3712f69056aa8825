//! `berth login` (being written).

use crate::cli::LoginArgs;
use crate::context::Ctx;

/// Runs `login`.
///
/// # Errors
/// Always, until implemented.
#[allow(clippy::unused_async)]
pub async fn run(_ctx: &Ctx, _args: &LoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth login` is not implemented yet")
}
