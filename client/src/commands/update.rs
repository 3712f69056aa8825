//! `berth update [--restart P] [-m] [--memory-swap] [--cpus] [-c] [--pids-limit] CONTAINER...`:
//! the flags checked as `run` checks them, then [`crate::container::update`] for each container,
//! whose name is printed as Docker prints it.

use crate::cli::UpdateArgs;
use crate::container::update::{self, UpdateOptions};
use crate::container::RestartPolicy;
use crate::context::Ctx;

/// Updates each container; the first failure ends with its message.
///
/// # Errors
/// A bad flag (nothing is changed then), no such container, the kernel refused a limit.
pub fn run(ctx: &Ctx, args: &UpdateArgs) -> anyhow::Result<()> {
    let limits = super::run::limits_of(&args.resources)?;
    let restart = args
        .restart
        .as_deref()
        .map(RestartPolicy::parse)
        .transpose()?;
    if restart.is_none() && limits == berth_runtime::spec::ResourceLimits::default() {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let opts = UpdateOptions { restart, limits };
    for name in &args.containers {
        update::update(ctx.store.root(), name, &opts)?;
        ctx.printer.data(name);
    }
    Ok(())
}
