//! `berth wait`: blocks until each container stops, then prints its exit code.

use crate::cli::WaitArgs;
use crate::containers;
use crate::context::Ctx;

/// Waits for the containers.
///
/// # Errors
/// A container that is missing or was removed while waiting (the others are waited for).
pub fn run(ctx: &Ctx, args: &WaitArgs) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for name in &args.containers {
        let result = containers::find(ctx.store.root(), name).and_then(|(dir, _)| {
            containers::wait_exit(&dir, None).ok_or_else(|| {
                anyhow::anyhow!("Error response from daemon: No such container: {name}")
            })
        });
        match result {
            Ok(s) => ctx.printer.data(&s.exit_code().to_string()),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}
