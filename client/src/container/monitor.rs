//! The monitor process (`berth container-monitor ID`, internal, spawned by
//! [`super::start::spawn_monitor`] for `run -d`, `run -i`/`-t`, `start` and restarts): owns one
//! detached container.
//!
//! It records its own PID, starts the container like the foreground path with stdin from
//! `/dev/null` and stdout/stderr into pipes copied to `<id>-json.log` (Docker's json-file
//! format), records init's host PID once the program runs and tells `run` (`ok`, or
//! `err CODE MESSAGE` on its stdout), waits, records the exit code, removes the mount (the
//! runtime removes the cgroups) and, with `--rm`, the container.
//!
//! With a `--restart` policy it starts the container again after an exit (same spec, the
//! overlay kept mounted, the cgroups set up again by the runtime) while the policy allows it
//! and the user has not stopped it (`stop`, `kill`, `rm -f` record that before signalling),
//! after Docker's doubling delay (100 ms, capped at 1 s here); meanwhile the container is
//! `Restarting` and each restart counts in `RestartCount`.
//!
//! This is a process's main loop, so its errors stay `anyhow` (they end the process). May call
//! every other module of the container layer, [`crate::attach`] (the attach socket's hub),
//! [`crate::network`], [`crate::volumes`], [`crate::containers_fs`] and `berth_runtime::run`.

use std::cell::RefCell;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_runtime::run::{run_full, Report, RunError, Stdio, EXIT_RUNTIME};
use oci_spec::runtime::Spec;

use crate::attach::{self, Hub, Tee};
use crate::container::{self, Status};
use crate::procfs::ProcessId;
use crate::store::Store;

/// Runs the monitor until the container exits.
///
/// # Errors
/// The container directory or spec is unreadable.
pub fn run(store: &Store, id: &str, attach_wait: bool) -> anyhow::Result<()> {
    let dir = container::root(store.root()).join(id);
    // Our stdout is `run`'s pipe: keep it for the one word, then point 1 and 2 at /dev/null so
    // nothing else reaches it.
    let ready: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("dup")?;
    let null = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
    };
    let devnull = null()?;
    for fd in [1, 2] {
        nix::unistd::dup2(devnull.as_raw_fd(), fd).context("dup2")?;
    }
    let ready = RefCell::new(Some(std::fs::File::from(ready)));
    let tell = |report: Report| {
        if let Some(mut f) = ready.borrow_mut().take() {
            let _ = report.write_to(&mut f);
        }
    };
    let failed = |message: String| Report::Failed {
        code: EXIT_RUNTIME,
        message,
    };

    let me = ProcessId::of(nix::unistd::getpid().as_raw());
    let state = container::update(&dir, |s| s.monitor = me)?;
    let spec = Spec::load(dir.join("config.json")).context("cannot read config.json")?;
    // Address and published ports, held until this process exits.
    let mut settings = state.network.clone();
    let network = crate::network::attach(
        &dir,
        id,
        &state.name,
        settings.as_mut(),
        Some(crate::container::connected_networks(&dir)),
    )
    .and_then(|net| Ok(container::update(&dir, |s| s.network.clone_from(&settings)).map(|_| net)?))
    .map_err(|e| format!("{e:#}"));

    let log_path = container::log_path(&dir, id);
    let log = Arc::new(Mutex::new(
        container::log_config::LogWriter::open(&log_path, &state.log_config)
            .with_context(|| format!("cannot open `{}`", log_path.display()))?,
    ));
    let hub = Arc::new(Hub::default());
    let prepared = hub
        .listen(&dir)
        .and_then(|()| {
            if attach_wait && !hub.wait_for_client(Duration::from_secs(10)) {
                anyhow::bail!("no client attached to the container within 10 s");
            }
            Ok(())
        })
        .and_then(|()| Ok(crate::containers_fs::ensure_rootfs(store, &dir, &state)?));
    if let Err(e) = prepared {
        tell(failed(format!("{e:#}")));
        container::teardown(&dir, id);
        container::update(&dir, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(125);
        })?;
        return Err(e);
    }
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let copiers: Vec<_> = [
        (out_r, "stdout", attach::STDOUT),
        (err_r, "stderr", attach::STDERR),
    ]
    .into_iter()
    .map(|(fd, stream, kind)| {
        let log = Arc::clone(&log);
        let hub = Arc::clone(&hub);
        std::thread::spawn(move || {
            let from = Tee {
                inner: std::fs::File::from(fd),
                hub,
                kind,
            };
            container::copy_log(from, stream, &log)
        })
    })
    .collect();
    let mut delay = None;
    let mut spec = spec;
    let result = loop {
        // A restart takes the limits `update` wrote since (the first run has just read them).
        if delay.is_some() {
            if let Ok(s) = Spec::load(dir.join("config.json")) {
                spec = s;
            }
        }
        let (stdio, console) = stdio_for(&state, &hub, &out_w, &err_w)?;
        let tty_copier = RefCell::new(None);
        let dir2 = dir.clone();
        let mut started = |pid: i32| {
            let init = ProcessId::of(pid);
            let saved = container::update(&dir2, |s| {
                s.status = Status::Running;
                s.restarting = false;
                s.init = init;
                s.started_at = Some(crate::timestamp::now_rfc3339());
            });
            if let Some(console) = &console {
                // Init sent the pty master before it exec'd.
                match berth_runtime::console::receive(console) {
                    Ok(master) => {
                        *tty_copier.borrow_mut() = serve_pty(master, &hub, &log).ok();
                    }
                    Err(_) => tell(failed("the container's terminal did not arrive".into())),
                }
            }
            tell(if saved.is_ok() {
                Report::Started
            } else {
                failed("cannot record the container's state".into())
            });
        };
        let begun = Instant::now();
        let result = match &network {
            Ok(net) => {
                let mut prestart = |pid| net.as_ref().map_or(Ok(()), |a| (a.prestart())(pid));
                run_full(&dir, &spec, stdio, &mut prestart, &mut started)
            }
            Err(e) => Err(RunError::Prestart(e.clone().into())),
        };
        if let Some(t) = tty_copier.into_inner() {
            let _ = t.join();
        }
        hub.set_input(None, None);
        let (code, oom_killed) = match result {
            Ok(exit) => (exit.code, exit.oom_killed),
            Err(e) => break Err(e),
        };
        // Decide under the lock: `stop` records the user's stop before signalling.
        let d = container::restart_delay(delay, begun.elapsed());
        let mut again = false;
        container::update(&dir, |s| {
            again = container::rootfs_ready(&dir)
                && s.restart_policy
                    .should_restart(code, s.restart_count, s.stopped_by_user);
            s.oom_killed = oom_killed;
            if again {
                s.restarting = true;
                s.restart_count += 1;
                s.init = None;
                s.exit_code = Some(code);
                s.finished_at = Some(crate::timestamp::now_rfc3339());
            }
        })?;
        if !again {
            break Ok(code);
        }
        delay = Some(d);
        std::thread::sleep(d);
        if container::load(&dir)?.stopped_by_user {
            break Ok(code);
        }
    };
    drop((out_w, err_w));
    for c in copiers {
        let _ = c.join();
    }
    let code = match &result {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    container::teardown(&dir, id);
    if state.auto_remove {
        let _lock = container::Lock::take(&dir)?;
        fs_err::remove_dir_all(&dir)?;
        // Like `rm -v`: anonymous volumes go with an auto-removed container.
        let _ = crate::container::volume_users::remove_anonymous(store.root(), &state.volumes);
    } else {
        container::update(&dir, |s| {
            s.status = Status::Exited;
            s.restarting = false;
            s.exit_code = Some(code);
            s.finished_at = Some(crate::timestamp::now_rfc3339());
            if let Some(n) = s.network.as_mut() {
                n.forget();
            }
        })?;
    }
    if let Err(e) = result {
        tell(Report::Failed {
            code,
            message: format!("{:#}", anyhow::Error::new(e)),
        });
    }
    hub.finish(code);
    let _ = std::fs::remove_file(dir.join(attach::SOCKET));
    Ok(())
}

/// The container's stdio for one run: stdin from `/dev/null`, or a pipe whose write end goes
/// to the hub with `-i`; output into the log pipes, or, with `-t`, a console socket pair
/// (ours, to receive the pty master; init's, in [`Stdio`]).
fn stdio_for(
    state: &container::State,
    hub: &Hub,
    out_w: &OwnedFd,
    err_w: &OwnedFd,
) -> anyhow::Result<(Stdio, Option<OwnedFd>)> {
    let null = || -> anyhow::Result<OwnedFd> {
        Ok(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into())
    };
    if state.tty {
        let (ours, theirs) = berth_runtime::console::socket_pair().context("socketpair")?;
        let stdio = Stdio {
            stdin: Some(null()?),
            stdout: Some(null()?),
            stderr: Some(null()?),
            console: Some(theirs),
        };
        return Ok((stdio, Some(ours)));
    }
    let stdin = if state.open_stdin {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
        hub.set_input(Some(std::fs::File::from(w)), None);
        r
    } else {
        null()?
    };
    // Each run gets its own copies of the write ends; ours go after the last run.
    let stdio = Stdio {
        stdin: Some(stdin),
        stdout: Some(out_w.try_clone().context("dup")?),
        stderr: Some(err_w.try_clone().context("dup")?),
        console: None,
    };
    Ok((stdio, None))
}

/// Serves the pty master: its output to the log and the clients, client input and resizes to
/// it. The returned thread ends when the container's side of the pty is closed.
fn serve_pty(
    master: OwnedFd,
    hub: &Arc<Hub>,
    log: &Arc<Mutex<container::log_config::LogWriter>>,
) -> anyhow::Result<std::thread::JoinHandle<std::io::Result<()>>> {
    let input = master.try_clone().context("dup")?;
    let resize = master.try_clone().context("dup")?;
    hub.set_input(Some(std::fs::File::from(input)), Some(resize));
    let (hub, log) = (Arc::clone(hub), Arc::clone(log));
    Ok(std::thread::spawn(move || {
        let from = Tee {
            inner: std::fs::File::from(master),
            hub,
            kind: attach::STDOUT,
        };
        container::copy_log(from, "stdout", &log)
    }))
}
