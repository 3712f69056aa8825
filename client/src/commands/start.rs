//! `berth start` and `berth restart`: a created or exited container runs again under a new
//! monitor ([`crate::container::start`]; its root file system mounted again, the same spec,
//! logs appended). `start -a` attaches to its output (and with `-i` its input) and exits with
//! its status, like `docker start -a`.

use crate::cli::{RestartArgs, StartArgs};
use crate::container::attach;
use crate::container::start;
use crate::container::stop::StopOptions;
use crate::container::{self, Status};
use crate::context::Ctx;

/// Starts the containers.
///
/// # Errors
/// A container that could not be found or started; with `-a`, the container's non-zero exit.
pub fn start(ctx: &Ctx, args: &StartArgs) -> anyhow::Result<()> {
    let keys = crate::tty::parse_detach_keys(&args.detach_keys)?;
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let name = &args.containers[0];
        let (dir, state) = container::find(ctx.store.root(), name)?;
        let opts = crate::attach::Options {
            stdin: args.interactive && state.open_stdin,
            stdin_once: args.interactive,
            tty: state.tty,
            detach_keys: keys,
        };
        let ended = if state.status() == Status::Running {
            // Docker attaches to a container that already runs.
            attach::attach_running(&dir, &opts, false)?
        } else {
            start::prepare(&dir, &state)?;
            attach::start_attached(&dir, ctx.store.root(), &state.id, &opts)?
        };
        return super::exit_with(Ok(super::attach::exit_code(ended)));
    }
    super::each(ctx, &args.containers, |name| {
        start::start(ctx.store.root(), name)?;
        Ok(Some(name.to_owned()))
    })
}

/// Brings back the containers whose owner died (a killed monitor, a reboot) and whose restart
/// policy asks for it ([`crate::reaper`]), as Docker's daemon does when it starts. Runs before
/// every command, and as `berth system restore` (what the shipped systemd unit runs at boot),
/// which also prints each container it started.
///
/// # Errors
/// Only with `report`: a container that could not be started (the others still are).
pub fn restore(ctx: &Ctx, report: bool) -> anyhow::Result<()> {
    let ids = crate::reaper::reap(ctx.store.root());
    let mut failed = Vec::new();
    for id in ids {
        match start::start(ctx.store.root(), &id) {
            Ok(()) if report => ctx.printer.data(&id),
            Ok(()) => ctx
                .printer
                .debug(&format!("restarted container {id} (its monitor was gone)")),
            Err(e) => {
                let e = anyhow::Error::from(e);
                ctx.printer
                    .warn(&format!("cannot restart container {id}: {e:#}"));
                failed.push(id);
            }
        }
    }
    if report && !failed.is_empty() {
        anyhow::bail!("could not restart {}", failed.join(", "));
    }
    Ok(())
}

/// Restarts the containers: stop (SIGTERM, SIGKILL after `-t`), then start.
///
/// # Errors
/// A container that could not be found, stopped or started (the others still are).
pub fn restart(ctx: &Ctx, args: &RestartArgs) -> anyhow::Result<()> {
    let opts = StopOptions::parse(args.signal.as_deref(), args.timeout)?;
    super::each(ctx, &args.containers, |name| {
        start::restart(ctx.store.root(), name, &opts)?;
        Ok(Some(name.to_owned()))
    })
}
