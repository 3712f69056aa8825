//! `berth wait`: blocks until each container stops, then prints its exit code.

use crate::cli::WaitArgs;
use crate::container;
use crate::context::Ctx;

/// Waits for the containers.
///
/// # Errors
/// A container that is missing or was removed while waiting (the others are waited for).
pub fn run(ctx: &Ctx, args: &WaitArgs) -> anyhow::Result<()> {
    super::each(ctx, &args.containers, |name| {
        let (dir, _) = container::find(ctx.store.root(), name)?;
        let s = container::wait_exit(&dir, None).ok_or_else(|| {
            anyhow::anyhow!("Error response from daemon: No such container: {name}")
        })?;
        Ok(Some(s.exit_code().to_string()))
    })
}
