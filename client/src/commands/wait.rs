//! `berth wait`: blocks until each container stops ([`crate::container::wait`]), then prints
//! its exit code.

use crate::cli::WaitArgs;
use crate::container;
use crate::context::Ctx;

/// Waits for the containers.
///
/// # Errors
/// A container that is missing or was removed while waiting (the others are waited for).
pub fn run(ctx: &Ctx, args: &WaitArgs) -> anyhow::Result<()> {
    super::each(ctx, &args.containers, |name| {
        let code = container::wait::wait(ctx.store.root(), name)?;
        Ok(Some(code.to_string()))
    })
}
