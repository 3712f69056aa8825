//! `berth attach`: connects the terminal to a running container's monitor
//! ([`crate::attach`]); with a pty, `ctrl-p ctrl-q` (or `--detach-keys`) detaches and leaves it
//! running. Exits with the container's status when it exits.

use crate::cli::AttachArgs;
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
    let mut stream = crate::attach::connect(&dir)?;
    crate::attach::hello(&mut stream, &opts)?;
    let proxy = (args.sig_proxy && !state.tty)
        .then(|| crate::sigproxy::forward(crate::sigproxy::Target::Container(dir.clone())))
        .flatten();
    let code = super::run::finish_attach(&dir, stream, &opts, true);
    if let Some(p) = proxy {
        p.abort();
    }
    let code = code?;
    super::run::exit_with(Ok(code))
}
