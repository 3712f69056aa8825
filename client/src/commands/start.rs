//! `berth start` and `berth restart`: a created or exited container runs again under a new
//! monitor (its root file system mounted again, the same spec, logs appended). `start -a`
//! attaches to its output (and with `-i` its input) and exits with its status, like
//! `docker start -a`.

use std::time::Duration;

use crate::cli::{RestartArgs, StartArgs};
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
        let code = if state.status() == Status::Running {
            // Docker attaches to a container that already runs.
            let mut stream = crate::attach::connect(&dir)?;
            crate::attach::hello(&mut stream, &opts)?;
            super::run::finish_attach(&dir, stream, &opts, true)?
        } else {
            prepare(&dir, &state)?;
            super::run::start_attached(ctx, &dir, &state.id, &opts, true)?
        };
        return super::run::exit_with(Ok(code));
    }
    super::each(ctx, &args.containers, |name| {
        start_one(ctx, name).map(|()| Some(name.to_owned()))
    })
}

/// Clears what the last run left in the state (the user's stop, the exit) so the monitor's
/// restart policy starts afresh.
fn prepare(dir: &std::path::Path, state: &container::State) -> anyhow::Result<()> {
    if state.auto_remove && state.status() == Status::Exited {
        anyhow::bail!(
            "Error response from daemon: container {} is marked for removal and cannot be started",
            state.id
        );
    }
    container::update(dir, |s| {
        s.stopped_by_user = false;
        s.restarting = false;
        s.init = None;
        s.monitor = None;
    })?;
    Ok(())
}

fn start_one(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let (dir, state) = container::find(ctx.store.root(), name)?;
    if state.status() == Status::Running {
        return Ok(());
    }
    prepare(&dir, &state)?;
    let mut pipe = super::run::spawn_monitor(ctx, &state.id, false)?;
    super::run::read_ready(&mut pipe).map_err(|e| {
        anyhow::anyhow!("Error response from daemon: failed to start container {name}: {e:#}")
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
        match start_one(ctx, &id) {
            Ok(()) if report => ctx.printer.data(&id),
            Ok(()) => ctx
                .printer
                .debug(&format!("restarted container {id} (its monitor was gone)")),
            Err(e) => {
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
    let (sig, timeout) = super::stop::signal_and_timeout(args.signal.as_deref(), args.timeout)?;
    super::each(ctx, &args.containers, |name| {
        super::stop::stop(ctx, name, sig, timeout)?;
        // The old monitor must be gone before a new one takes the container.
        let (_, state) = container::find(ctx.store.root(), name)?;
        container::wait_owner(&state, Duration::from_secs(10));
        start_one(ctx, name)?;
        Ok(Some(name.to_owned()))
    })
}
