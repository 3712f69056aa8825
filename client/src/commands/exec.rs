//! `berth exec`: [`crate::container::exec`] with the flags as [`ExecOptions`]. Exit status: the
//! command's, 1 when the container does not run, or Docker's 126/127 when the command cannot
//! run.

use crate::cli::ExecArgs;
use crate::container::exec::{self, ExecError, ExecOptions};
use crate::context::Ctx;

/// Runs the command in the container.
///
/// # Errors
/// The container is not running, the command failed (its exit code attached).
pub fn run(ctx: &Ctx, args: &ExecArgs) -> anyhow::Result<()> {
    super::exit_with(exec_code(ctx, args))
}

fn exec_code(ctx: &Ctx, args: &ExecArgs) -> anyhow::Result<i32> {
    let opts = ExecOptions {
        container: args.container.clone(),
        command: args.command.clone(),
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
        detach_keys: crate::tty::parse_detach_keys(&args.detach_keys)?,
    };
    exec::exec(ctx.store.root(), &opts).map_err(|e| match e {
        ExecError::NotRunning(_) => anyhow::Error::from(e).context(crate::Exit(1)),
        ExecError::User(_) => anyhow::Error::from(e).context(crate::Exit(126)),
        // The runtime's error on top, so its exit code is `berth`'s.
        ExecError::Run(e) => e.into(),
        e => e.into(),
    })
}
