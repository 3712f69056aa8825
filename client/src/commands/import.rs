//! `berth import` (being written).

use crate::cli::ImportArgs;
use crate::context::Ctx;

/// Runs `import`.
///
/// # Errors
/// Always, until implemented.
#[allow(clippy::unused_async)]
pub async fn run(_ctx: &Ctx, _args: &ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`berth import` is not implemented yet")
}
