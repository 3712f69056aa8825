//! `exec`: runs a command in a running container ([`berth_runtime::exec`]), with the
//! container's capabilities, cgroups and environment, `-e`/`-w`/`-u` on top. With `tty` the
//! process gets a pty from the container's devpts, relayed to our terminal (raw mode, window
//! size, detach keys); with `interactive` our stdin is its stdin; `detach` leaves it running in
//! the background. Its exit code is the command's (the runtime's 126/127 when it cannot run).
//!
//! May call [`super::state`], [`crate::relay`], [`crate::tty`] and `berth_runtime` (exec,
//! console, user resolution, the detached child of `-d`).

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::Path;

use berth_runtime::detach::ReadyError;
use berth_runtime::run::{RunError, Stdio};
use oci_spec::runtime::{Process, Spec, UserBuilder};

use super::state::{self, StateError, Status};

/// A command could not be run in the container.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The container does not run (Docker exits 1).
    #[error("Error response from daemon: container {0} is not running")]
    NotRunning(String),
    /// It is paused.
    #[error(
        "Error response from daemon: Container {0} is paused, unpause the container before exec"
    )]
    Paused(String),
    /// `-w` is not absolute.
    #[error(
        "Error response from daemon: the working directory '{0}' is invalid, it needs to be an absolute path"
    )]
    Workdir(String),
    /// `-u` names no user of the container (Docker exits 126).
    #[error("{0}")]
    User(String),
    /// The command could not be run (its exit code: 125, 126 or 127).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The container's `config.json` cannot be read.
    #[error("cannot read the container's config.json")]
    ReadSpec(#[source] oci_spec::OciSpecError),
    /// The container's spec has no process to start from.
    #[error("the container's spec has no process")]
    NoProcess,
    /// oci-spec refused the `-u` user.
    #[error(transparent)]
    BuildUser(oci_spec::OciSpecError),
    /// The socket pair that carries the pty's master (`-t`).
    #[error("socketpair")]
    Console(#[source] std::io::Error),
    /// `/dev/null` (stdin without `-i`) cannot be opened.
    #[error(transparent)]
    DevNull(std::io::Error),
    /// The pipes of the stdio relay (without `-t`).
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    /// The detached child of `-d` could not be set up.
    #[error(transparent)]
    Detach(#[from] berth_runtime::detach::DetachError),
    /// The detached child of `-d` exited before it ran the command.
    #[error("the exec process exited before starting the command")]
    DetachedGone,
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, ExecError>;

/// What to run, and how (`exec`'s flags, parsed).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The container's name or ID.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// `-e`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-d`.
    pub detach: bool,
    /// `--detach-keys`, parsed.
    pub detach_keys: Vec<u8>,
}

/// Runs the command in the container `data_root` holds; its exit code (`0` with `detach`,
/// once it runs).
///
/// # Errors
/// No such container, not running, a bad `-w` or `-u`, or the command could not be run.
pub fn exec(data_root: &std::path::Path, args: &ExecOptions) -> Result<i32> {
    let keys = args.detach_keys.clone();
    let (dir, state) = state::find(data_root, &args.container)?;
    let init = state
        .init
        .filter(|i| state.status() == Status::Running && !state.restarting && i.alive())
        .ok_or_else(|| ExecError::NotRunning(state.id.clone()))?;
    if state.is_paused() {
        return Err(ExecError::Paused(args.container.clone()));
    }
    let spec = Spec::load(dir.join("config.json")).map_err(ExecError::ReadSpec)?;
    let process = process(&spec, &dir, args)?;
    if args.detach {
        return detached(&spec, init.pid, process);
    }
    let console = if args.tty {
        Some(berth_runtime::console::socket_pair().map_err(ExecError::Console)?)
    } else {
        None
    };
    let null = || -> Result<OwnedFd> {
        Ok(fs_err::File::open("/dev/null")
            .map_err(ExecError::DevNull)?
            .into_parts()
            .0
            .into())
    };
    let (ours, theirs) = match console {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    // Without a terminal: pipes, never our own descriptors (see `crate::relay`).
    let (stdio, pipes) = if theirs.is_some() {
        let stdio = Stdio {
            stdin: if args.interactive {
                None
            } else {
                Some(null()?)
            },
            stdout: None,
            stderr: None,
            console: theirs,
        };
        (stdio, None)
    } else {
        let (stdio, relay) = crate::relay::start(args.interactive, None)?;
        (stdio, Some(relay))
    };
    let mut relay = None;
    let mut started = |_pid: i32| {
        if let Some(sock) = &ours {
            if let Ok(master) = berth_runtime::console::receive(sock) {
                relay = Some(Relay::start(master, args.interactive, keys.clone()));
            }
        }
    };
    let result = berth_runtime::exec::exec(&spec, init.pid, process, stdio, &mut started);
    if let Some(r) = relay {
        r.finish();
    }
    if let Some(p) = pipes {
        p.finish();
    }
    Ok(result?)
}

/// The process to run: the container's (capabilities, rlimits, environment) with the
/// command, `-e`, `-w`, `-u` and `-t` of this exec.
fn process(spec: &Spec, dir: &Path, args: &ExecOptions) -> Result<Process> {
    let mut p = spec.process().clone().ok_or(ExecError::NoProcess)?;
    p.set_args(Some(args.command.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    let extra = args
        .env
        .iter()
        .filter_map(|e| berth_runtime::spec::resolve_env_flag(e, |k| std::env::var(k).ok()));
    for kv in extra.chain(args.tty.then(|| "TERM=xterm".to_owned())) {
        let key = kv.split('=').next().unwrap_or_default().to_owned();
        if kv == "TERM=xterm" && env.iter().any(|e| e.starts_with("TERM=")) {
            continue;
        }
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
    }
    if let Some(w) = &args.workdir {
        if !w.starts_with('/') {
            return Err(ExecError::Workdir(w.clone()));
        }
        p.set_cwd(w.into());
    }
    if let Some(u) = &args.user {
        let user = berth_runtime::spec::resolve_user(&dir.join("rootfs"), u)
            .map_err(|e| ExecError::User(e.to_string()))?;
        if let Some(home) = env.iter_mut().find(|e| e.starts_with("HOME=")) {
            *home = format!("HOME={}", user.home);
        }
        p.set_user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()
                .map_err(ExecError::BuildUser)?,
        );
    }
    p.set_env(Some(env));
    p.set_terminal(Some(args.tty));
    Ok(p)
}

/// `-d`: a detached child of ours ([`berth_runtime::detach::run`]) runs the exec with
/// `/dev/null` for stdio, in its own session; we wait only until the command runs (or could
/// not).
fn detached(spec: &Spec, init_pid: i32, mut process: Process) -> Result<i32> {
    process.set_terminal(Some(false));
    let mut pipe = berth_runtime::detach::run(|reporter| {
        let open = || std::fs::File::open("/dev/null").ok().map(OwnedFd::from);
        let stdio = Stdio {
            stdin: open(),
            stdout: open(),
            stderr: open(),
            console: None,
        };
        let mut started = |_pid: i32| reporter.started();
        berth_runtime::exec::exec(spec, init_pid, process, stdio, &mut started).map(drop)
    })?;
    match pipe.wait_ready() {
        Ok(()) => Ok(0),
        Err(ReadyError::Run(e)) => Err(e.into()),
        Err(ReadyError::Gone) => Err(ExecError::DetachedGone),
    }
}

/// Relays between our terminal and the exec'd process's pty.
struct Relay {
    output: std::thread::JoinHandle<()>,
    _raw: Option<crate::tty::RawMode>,
}

impl Relay {
    fn start(master: OwnedFd, interactive: bool, keys: Vec<u8>) -> Self {
        let stdin = std::io::stdin();
        if let Some((rows, cols)) = crate::tty::size(std::io::stdout().as_fd()) {
            crate::tty::set_size(master.as_fd(), rows, cols);
        }
        let raw = interactive && crate::tty::is_tty(stdin.as_fd());
        let guard = if raw {
            crate::tty::RawMode::enter(stdin.as_fd()).ok()
        } else {
            None
        };
        if interactive {
            if let Ok(input) = master.try_clone() {
                std::thread::spawn(move || relay_input(input, raw, keys));
            }
        }
        let output = std::thread::spawn(move || {
            let mut from = std::fs::File::from(master);
            let mut buf = [0u8; 8192];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let mut out = std::io::stdout().lock();
                        if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            output,
            _raw: guard,
        }
    }

    /// Waits (briefly) for the rest of the output once the process exited.
    fn finish(self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while !self.output.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn relay_input(master: OwnedFd, raw: bool, keys: Vec<u8>) {
    let stdin = std::io::stdin();
    let mut to = std::fs::File::from(master);
    let mut detach = crate::tty::DetachKeys::new(keys);
    let mut buf = [0u8; 8192];
    let mut input = stdin.lock();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => {
                // EOF as the terminal's end-of-file character.
                let _ = to.write_all(&[4]);
                return;
            }
            Ok(n) => n,
        };
        let (data, done) = if raw {
            detach.feed(&buf[..n])
        } else {
            (buf[..n].to_vec(), false)
        };
        if to.write_all(&data).is_err() || done {
            return;
        }
    }
}
