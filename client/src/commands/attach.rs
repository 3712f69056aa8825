//! `berth attach`: connects the terminal to a running container's monitor
//! ([`crate::container::attach`]); with a pty, `ctrl-p ctrl-q` (or `--detach-keys`) detaches
//! and leaves it running. Exits with the container's status when it exits.

use crate::cli::AttachArgs;
use crate::container::attach::{self, Attached};
use crate::container::{self, Status};
use crate::context::Ctx;

/// Attaches until the container exits or the user detaches.
///
/// # Errors
/// The container is not running; its exit status when non-zero.
pub fn run(ctx: &Ctx, args: &AttachArgs) -> anyhow::Result<()> {
    let keys = crate::tty::parse_detach_keys(&args.detach_keys)?;
    let (dir, state) = container::find(ctx.store.root(), &args.container)?;
    if state.status() != Status::Running {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let opts = crate::attach::Options {
        stdin: state.open_stdin && !args.no_stdin,
        stdin_once: false,
        tty: state.tty,
        detach_keys: keys,
    };
    let ended = attach::attach_running(&dir, &opts, args.sig_proxy && !state.tty)?;
    super::exit_with(Ok(exit_code(ended)))
}

/// The exit code of an attached session: the container's, or `0` after Docker's `read escape
/// sequence` when the user detached.
#[must_use]
pub fn exit_code(ended: Attached) -> i32 {
    match ended {
        Attached::Exited(code) => code,
        Attached::Detached => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("read escape sequence");
            }
            0
        }
    }
}
