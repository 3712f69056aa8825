//! Runs a container's process in the foreground from a bundle and its spec.
//!
//! ```text
//! berth (caller) --fork--> intermediate: unshare(namespaces) --fork--> init (PID 1 in the new
//!   PID namespace): rootfs, hostname, rlimits, no_new_privs, capabilities, user, execve
//! ```
//!
//! With `linux.cgroupsPath`, the caller creates the container's cgroups and writes
//! `linux.resources` before forking ([`crate::cgroups`]); init waits on a pipe until the
//! intermediate has added its PID to them, so everything init does, up to and after `execve`, is
//! limited; the caller removes the cgroups after the exit. The intermediate is never in them.
//! The byte that lets init go on comes from the caller, after its prestart hook
//! ([`run_with_prestart`]) has set up what it owns in init's namespaces (the network).
//!
//! The caller waits for the intermediate, which waits for init and exits with its status
//! (`128+n` for signal `n`). Init reports failures before `execve` through a close-on-exec pipe
//! as `<code> <message>`, so the caller can tell Docker's 125 (runtime failure), 126 (cannot
//! invoke) and 127 (not found) from the program's own exit status. Init's steps take
//! `&dyn Syscall` ([`init`]); only the fork/wait/pipe plumbing calls nix directly.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};

use crate::cgroups::{self, CgroupError, CgroupManager};
use crate::rootfs::{finish_rootfs, setup_rootfs, RootfsError};
use crate::syscall::{
    CapSet, CapsHashSet, CloneFlags, Errno, LinuxSyscall, Resource, Syscall, SyscallError,
};

/// Docker's code when the runtime itself fails.
pub const EXIT_RUNTIME: i32 = 125;
/// Docker's code when the command cannot be invoked.
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// Docker's code when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The container's init failed before `execve`; `code` is Docker's exit status for it.
    #[error("{message}")]
    Start {
        /// 125, 126 or 127.
        code: i32,
        /// What init reported.
        message: String,
    },
    /// The spec asks for something this runtime does not do yet.
    #[error("unsupported spec: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// fork, pipe or wait failed.
    #[error("cannot start the container process")]
    Process(#[source] SyscallError),
    /// The container's cgroups could not be set up.
    #[error("cannot set up the container's cgroups")]
    Cgroup(#[source] CgroupError),
    /// `exec` into a container whose init is gone.
    #[error("container is not running (its process {pid} is gone)")]
    NotRunning {
        /// init's host PID as recorded.
        pid: i32,
    },
    /// The caller's prestart hook failed ([`run_with_prestart`]); its message says why.
    #[error("{0}")]
    Prestart(PrestartError),
}

impl RunError {
    /// Docker's exit status for this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Start { code, .. } => *code,
            _ => EXIT_RUNTIME,
        }
    }
}

/// Why init stopped before `execve`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Setting up the root file system failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A set-up call failed.
    #[error(transparent)]
    Syscall(#[from] SyscallError),
    /// The seccomp section cannot be compiled.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The working directory could not be created.
    #[error("cannot create the working directory `{}`", path.display())]
    Cwd {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec has no `process`.
    #[error("the spec has no process")]
    NoProcess,
    /// `process.terminal` without a console socket to send the pty to.
    #[error("a terminal was requested but no console socket was given")]
    NoConsole,
    /// `exec`'s working directory does not exist in the container.
    #[error("chdir to cwd (\"{}\") set in config.json failed: no such file or directory", path.display())]
    ExecCwd {
        /// The directory.
        path: PathBuf,
    },
    /// An argument or variable contains a NUL byte.
    #[error("argument or environment variable contains a NUL byte")]
    Nul,
    /// Docker's wording for a bare name not found in `PATH`.
    #[error("exec: \"{name}\": executable file not found in $PATH")]
    NotFound {
        /// argv\[0\].
        name: String,
    },
    /// execve failed.
    #[error("exec: \"{}\": {}", path.display(), errno.desc().to_lowercase())]
    Exec {
        /// The resolved path.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
}

impl InitError {
    /// Docker's exit status for this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. }
            | Self::Exec {
                errno: Errno::ENOENT,
                ..
            } => EXIT_NOT_FOUND,
            Self::Exec { .. } | Self::ExecCwd { .. } => EXIT_CANNOT_INVOKE,
            _ => EXIT_RUNTIME,
        }
    }
}

/// Result of [`init`].
pub type InitResult<T> = std::result::Result<T, InitError>;

/// Namespaces the container joins rather than creates (a `path` in the spec): network, IPC
/// and UTS ones (`--network container:NAME`), entered by the intermediate with `setns` before
/// it unshares the others.
#[must_use]
pub fn namespace_joins(spec: &Spec) -> Vec<(CloneFlags, PathBuf)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|ns| {
            let flag = match ns.typ() {
                LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                _ => return None,
            };
            ns.path().clone().map(|p| (flag, p))
        })
        .collect()
}

/// Clone flags for the spec's new namespaces (those it joins are in [`namespace_joins`]).
///
/// # Errors
/// A namespace with a `path` other than network, IPC and UTS, or a user/time namespace.
pub fn namespace_flags(spec: &Spec) -> Result<CloneFlags, RunError> {
    let mut flags = CloneFlags::empty();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in namespaces {
        if ns.path().is_some() {
            if matches!(
                ns.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts
            ) {
                continue;
            }
            return Err(RunError::Unsupported {
                what: format!("joining an existing {} namespace", ns.typ()),
            });
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            other => {
                return Err(RunError::Unsupported {
                    what: format!("{other} namespace"),
                })
            }
        };
    }
    if !flags.contains(CloneFlags::CLONE_NEWNS) {
        return Err(RunError::Unsupported {
            what: "a container without its own mount namespace".into(),
        });
    }
    Ok(flags)
}

fn rlimit_resource(t: PosixRlimitType) -> Option<Resource> {
    Some(match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    })
}

/// Applies `process.rlimits`. Without `CAP_SYS_RESOURCE` the kernel refuses a hard limit above
/// the current one (EPERM); such limits are clamped to the current hard limit and retried.
///
/// # Errors
/// A limit the kernel refuses even when clamped.
pub fn apply_rlimits(sys: &dyn Syscall, spec: &Spec) -> Result<(), SyscallError> {
    let limits = spec
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone())
        .unwrap_or_default();
    for l in limits {
        let Some(res) = rlimit_resource(l.typ()) else {
            continue;
        };
        match sys.setrlimit(res, l.soft(), l.hard()) {
            Err(e) if e.errno() == Some(Errno::EPERM) => {
                let (_, cur_hard) = sys.getrlimit(res)?;
                let hard = l.hard().min(cur_hard);
                sys.setrlimit(res, l.soft().min(hard), hard)?;
            }
            other => other?,
        }
    }
    Ok(())
}

fn to_caps(set: Option<&oci_spec::runtime::Capabilities>) -> CapsHashSet {
    set.into_iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse().ok())
        .collect()
}

/// Drops the bounding set, switches to the spec's user keeping the permitted set across the
/// switch, then sets effective, permitted, inheritable and ambient to the spec's (runc's
/// `finalizeNamespace` order).
///
/// # Errors
/// Any refused call.
pub fn apply_user_and_caps(sys: &dyn Syscall, spec: &Spec) -> InitResult<()> {
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    let caps = process.capabilities().clone().unwrap_or_default();
    sys.drop_bounding_caps(&to_caps(caps.bounding().as_ref()))?;
    sys.set_keep_caps(true)?;
    let user = process.user();
    sys.setgroups(user.additional_gids().as_deref().unwrap_or_default())?;
    sys.setresgid(user.gid())?;
    sys.setresuid(user.uid())?;
    sys.set_keep_caps(false)?;
    // Effective first: it must stay a subset of permitted while permitted shrinks.
    sys.set_caps(CapSet::Effective, &to_caps(caps.effective().as_ref()))?;
    sys.set_caps(CapSet::Permitted, &to_caps(caps.permitted().as_ref()))?;
    // CVE-2022-24769: inheritable comes from the spec, which Docker's rules leave empty.
    sys.set_caps(CapSet::Inheritable, &to_caps(caps.inheritable().as_ref()))?;
    sys.set_caps(CapSet::Ambient, &to_caps(caps.ambient().as_ref()))?;
    Ok(())
}

/// Installs the spec's `linux.seccomp` filter, while init still has `CAP_SYS_ADMIN` (runc's
/// order without `noNewPrivileges`).
///
/// # Errors
/// The filter cannot be compiled or installed.
pub fn apply_seccomp(sys: &dyn Syscall, spec: &Spec) -> InitResult<()> {
    let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    for program in crate::seccomp::compile(section)? {
        sys.seccomp(&program)?;
    }
    Ok(())
}

/// Finds argv\[0\] like Go's `exec.LookPath` (runc): names with a `/` are used as given,
/// others are searched in the container's `PATH` for an executable regular file.
///
/// # Errors
/// [`InitError::NotFound`].
pub fn lookup(name: &str, env: &[String]) -> InitResult<PathBuf> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(InitError::NotFound {
        name: name.to_owned(),
    })
}

/// With `process.terminal`, makes a pty the process's terminal and sends its master over
/// `console` ([`Syscall::setup_console`]).
///
/// # Errors
/// [`InitError::NoConsole`] when a terminal is asked for without a console socket.
pub fn setup_terminal(
    sys: &dyn Syscall,
    spec: &Spec,
    console: Option<BorrowedFd<'_>>,
) -> InitResult<()> {
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    if process.terminal() != Some(true) {
        return Ok(());
    }
    let socket = console.ok_or(InitError::NoConsole)?;
    let user = process.user();
    sys.setup_console(socket, user.uid(), user.gid())?;
    Ok(())
}

fn cstrings(v: &[String]) -> InitResult<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| InitError::Nul))
        .collect()
}

/// The container's init, in its new namespaces: every step up to `execve`. Returns only on
/// failure (with the fake, `execve` "fails" with ENOSYS after recording its arguments).
///
/// # Errors
/// The first failing step.
pub fn init(
    sys: &dyn Syscall,
    spec: &Spec,
    bundle: &Path,
    console: Option<BorrowedFd<'_>>,
) -> InitResult<Infallible> {
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    let root = spec
        .root()
        .as_ref()
        .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
    let rootfs = if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    };
    let namespaces = namespace_flags(spec).map_err(|_| InitError::NoProcess)?;
    // A session of its own in every mode: no controlling terminal of the caller's (TIOCSTI
    // cannot type into it) and a process group of its own (`kill(0)` reaches only the
    // container's processes).
    sys.setsid()?;
    setup_rootfs(sys, spec, &rootfs)?;
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        sys.loopback_up()?;
    }
    if let (Some(h), true) = (
        spec.hostname(),
        namespaces.contains(CloneFlags::CLONE_NEWUTS),
    ) {
        sys.sethostname(h)?;
    }
    finish_rootfs(sys, spec)?;
    // After pivot_root: the pty comes from the container's own devpts instance.
    setup_terminal(sys, spec, console)?;
    apply_rlimits(sys, spec)?;
    let cwd = process.cwd().clone();
    std::fs::create_dir_all(&cwd).map_err(|source| InitError::Cwd {
        path: cwd.clone(),
        source,
    })?;
    if process.no_new_privileges() == Some(true) {
        sys.set_no_new_privs()?;
    }
    apply_seccomp(sys, spec)?;
    apply_user_and_caps(sys, spec)?;
    sys.chdir(&cwd)?;
    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let name = args.first().ok_or(InitError::NoProcess)?;
    let path = lookup(name, &env)?;
    // CVE-2024-21626: no descriptor opened by the runtime (a host directory, the store) may
    // leak into the container, where `/proc/self/fd/N` would reach the host file system.
    sys.set_cloexec_from(3)?;
    let (argv, envp) = (cstrings(&args)?, cstrings(&env)?);
    match sys.execve(&path, &argv, &envp) {
        Err(e) => Err(InitError::Exec {
            path,
            errno: e.errno().unwrap_or(Errno::EINVAL),
        }),
        Ok(never) => match never {},
    }
}

fn proc_err(op: &'static str) -> impl FnOnce(Errno) -> RunError {
    move |errno| RunError::Process(crate::syscall::os_err(op, None, errno))
}

fn exit_status(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => EXIT_RUNTIME,
    }
}

/// Waits for `pid` to end. Without `WUNTRACED`, a stop is only reported for a tracee: the
/// child made us its tracer with `PTRACE_TRACEME`, and would stay stopped at its next signal
/// (the container stuck, `stop` ignored). We never trace, so detach and pass the signal on.
pub(crate) fn wait_for(pid: Pid) -> Result<i32, Errno> {
    loop {
        match waitpid(pid, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return Ok(exit_status(s))
            }
            Ok(WaitStatus::Stopped(p, sig)) => {
                let _ = nix::sys::ptrace::detach(p, Some(sig));
            }
            Ok(WaitStatus::PtraceEvent(p, ..) | WaitStatus::PtraceSyscall(p)) => {
                let _ = nix::sys::ptrace::detach(p, None);
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reports `code message` on the pipe and exits (child side).
pub(crate) fn report_and_exit(mut pipe: std::fs::File, code: i32, message: &str) -> ! {
    let _ = write!(pipe, "{code} {message}");
    drop(pipe);
    std::process::exit(code)
}

/// Runs the container in the foreground: returns the exit status of its process (`128+n` when
/// killed by signal `n`). The caller's stdio is the container's.
///
/// # Errors
/// [`RunError::Start`] when init failed before `execve` (with Docker's 125/126/127), or the
/// fork/wait plumbing failed.
pub fn run(bundle: &Path, spec: &Spec) -> Result<i32, RunError> {
    run_with(bundle, spec, Stdio::default(), &mut |_| {})
}

/// The container's standard streams; `None` keeps the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Descriptor 0 of the container.
    pub stdin: Option<OwnedFd>,
    /// Descriptor 1.
    pub stdout: Option<OwnedFd>,
    /// Descriptor 2.
    pub stderr: Option<OwnedFd>,
    /// With `process.terminal`: the Unix socket init sends the pty master over (runc's
    /// `--console-socket`); the caller receives it from the other end of the pair.
    pub console: Option<OwnedFd>,
}

/// Like [`run`], with the container's stdio given, and `started` called with init's host PID
/// once it has `execve`d the container's program (not when it failed before).
///
/// # Errors
/// As [`run`].
pub fn run_with(
    bundle: &Path,
    spec: &Spec,
    stdio: Stdio,
    started: &mut dyn FnMut(i32),
) -> Result<i32, RunError> {
    run_with_prestart(bundle, spec, stdio, &mut |_| Ok(()), started)
}

/// A prestart hook's failure.
pub type PrestartError = Box<dyn std::error::Error + Send + Sync>;

/// Like [`run_with`], with `prestart` called with init's host PID once init is in its
/// namespaces and cgroups but before it goes on (rootfs, `execve`): the caller's chance to set
/// up what it owns in those namespaces, such as the host side of the network
/// ([`crate::network::connect`]). When it fails, init exits without running anything and this
/// returns [`RunError::Prestart`].
///
/// # Errors
/// As [`run`], and [`RunError::Prestart`].
pub fn run_with_prestart(
    bundle: &Path,
    spec: &Spec,
    stdio: Stdio,
    prestart: &mut dyn FnMut(i32) -> Result<(), PrestartError>,
    started: &mut dyn FnMut(i32),
) -> Result<i32, RunError> {
    run_full(bundle, spec, stdio, prestart, started).map(|e| e.code)
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its status (`128+n` when killed by signal `n`).
    pub code: i32,
    /// The kernel's OOM killer killed a process of the container (its memory cgroup counted an
    /// `oom_kill`), Docker's `State.OOMKilled`.
    pub oom_killed: bool,
}

/// [`run_with_prestart`], also telling whether the OOM killer struck (read from the
/// container's memory cgroup before it is removed).
///
/// # Errors
/// As [`run_with_prestart`].
#[allow(unsafe_code)]
pub fn run_full(
    bundle: &Path,
    spec: &Spec,
    stdio: Stdio,
    prestart: &mut dyn FnMut(i32) -> Result<(), PrestartError>,
    started: &mut dyn FnMut(i32),
) -> Result<Exit, RunError> {
    let flags = namespace_flags(spec)?;
    let cgroup = setup_cgroups(spec)?;
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(proc_err("pipe2"))?;
    // The intermediate writes init's PID (4 bytes, native order) here.
    let (pid_read, pid_write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(proc_err("pipe2"))?;
    // Init waits for one byte on `go`, sent here once prestart is done.
    let (go_read, go_write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(proc_err("pipe2"))?;
    // SAFETY: the child only runs init steps and then execve or exit. Berth's other threads
    // (tokio workers, the proxies of published ports) hold no lock the child takes; glibc's
    // fork handlers keep malloc usable in the child.
    match unsafe { fork() }.map_err(proc_err("fork"))? {
        ForkResult::Child => {
            drop((read, pid_read, go_write));
            let console = stdio.console;
            for (fd, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
                if let Some(fd) = fd {
                    // dup2 clears close-on-exec on the copy.
                    if let Err(e) = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&fd), target)
                    {
                        report_and_exit(
                            std::fs::File::from(write),
                            EXIT_RUNTIME,
                            &format!("dup2: {e}"),
                        );
                    }
                }
            }
            // Nothing else of the caller's may stay open in the container's processes: an
            // inherited write end of the container's stdin pipe would keep it from EOF.
            close_fds_except(&[
                std::os::fd::AsRawFd::as_raw_fd(&write),
                std::os::fd::AsRawFd::as_raw_fd(&pid_write),
                std::os::fd::AsRawFd::as_raw_fd(&go_read),
                console.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd),
            ]);
            let manager = cgroup.as_ref().map(|g| g.0.clone());
            // Only the caller removes the cgroups, whatever happens here.
            std::mem::forget(cgroup);
            intermediate(
                bundle,
                spec,
                flags,
                Pipes {
                    report: std::fs::File::from(write),
                    pid: std::fs::File::from(pid_write),
                    go: go_read,
                },
                manager.as_ref(),
                console.as_ref().map(std::os::fd::AsFd::as_fd),
            )
        }
        ForkResult::Parent { child } => {
            drop((write, pid_write, go_read, stdio));
            let mut pid = [0u8; 4];
            let init_pid = std::fs::File::from(pid_read)
                .read_exact(&mut pid)
                .ok()
                .map(|()| i32::from_ne_bytes(pid));
            let hooked = init_pid.map(&mut *prestart);
            if let Some(Ok(())) = hooked {
                let _ = std::fs::File::from(go_write).write_all(&[1]);
            } else {
                // Closed unsent: init exits without a word.
                drop(go_write);
            }
            if let Some(Err(e)) = hooked {
                let _ = wait_for(child);
                return Err(RunError::Prestart(e));
            }
            // EOF once init has exec'd (close-on-exec) or reported a failure and exited.
            let mut report = String::new();
            let _ = std::fs::File::from(read).read_to_string(&mut report);
            if let (Some(pid), true) = (init_pid, report.is_empty()) {
                started(pid);
            }
            let status = wait_for(child).map_err(proc_err("waitpid"))?;
            let oom_killed = cgroup
                .as_ref()
                .and_then(|g| g.0.stats().ok())
                .and_then(|s| s.oom_kills)
                .is_some_and(|n| n > 0);
            match report.split_once(' ') {
                Some((code, message)) => Err(RunError::Start {
                    code: code.parse().unwrap_or(EXIT_RUNTIME),
                    message: message.to_owned(),
                }),
                None => Ok(Exit {
                    code: status,
                    oom_killed,
                }),
            }
        }
    }
}

/// The container's cgroups, removed on drop (after the container exited).
struct CgroupGuard(cgroups::Manager);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        // Best effort: init is gone, so its PID namespace's other tasks are being killed;
        // `remove` retries while they drain.
        let _ = self.0.remove();
    }
}

/// Creates the cgroups of `linux.cgroupsPath` with `linux.resources`; `None` without a path.
fn setup_cgroups(spec: &Spec) -> Result<Option<CgroupGuard>, RunError> {
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    let Some(path) = linux.and_then(|l| l.cgroups_path().as_ref()) else {
        // oci-spec's default `resources` only denies devices; limits need a cgroup.
        if cgroups::Limits::from_resources(resources) != cgroups::Limits::default() {
            return Err(RunError::Unsupported {
                what: "linux.resources without linux.cgroupsPath".into(),
            });
        }
        return Ok(None);
    };
    let layout = cgroups::detect_host().map_err(RunError::Cgroup)?;
    let manager =
        cgroups::Manager::new(&layout, &path.to_string_lossy()).map_err(RunError::Cgroup)?;
    // From here on a partial set-up is removed by the guard.
    let guard = CgroupGuard(manager);
    guard.0.create(resources).map_err(RunError::Cgroup)?;
    Ok(Some(guard))
}

/// The intermediate's ends of the pipes to the caller.
struct Pipes {
    /// Init's failure report (`code message`), close-on-exec.
    report: std::fs::File,
    /// Init's host PID for the caller.
    pid: std::fs::File,
    /// The caller's go-ahead for init.
    go: OwnedFd,
}

/// Intermediate process: enters the new namespaces, forks init (PID 1 of the new PID
/// namespace), adds init to the cgroups while it waits, lets it go on, and exits with its
/// status.
#[allow(unsafe_code)]
fn intermediate(
    bundle: &Path,
    spec: &Spec,
    flags: CloneFlags,
    pipes: Pipes,
    cgroup: Option<&cgroups::Manager>,
    console: Option<BorrowedFd<'_>>,
) -> ! {
    let Pipes {
        report: pipe,
        pid: mut pid_pipe,
        go: go_read,
    } = pipes;
    let sys = LinuxSyscall;
    // Die with berth rather than outlive it holding the container.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)) {
        report_and_exit(pipe, EXIT_RUNTIME, &format!("prctl(PR_SET_PDEATHSIG): {e}"));
    }
    // Joined namespaces first: a new namespace of another type is then made from inside them.
    for (flag, path) in namespace_joins(spec) {
        let joined = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open namespace `{}`: {e}", path.display()))
            .and_then(|f| {
                nix::sched::setns(f, flag)
                    .map_err(|e| format!("cannot join namespace `{}`: {e}", path.display()))
            });
        if let Err(message) = joined {
            report_and_exit(pipe, EXIT_RUNTIME, &message);
        }
    }
    if let Err(e) = sys.unshare(flags) {
        report_and_exit(pipe, EXIT_RUNTIME, &chain(&e));
    }
    // SAFETY: as in `run`; this process is single-threaded.
    match unsafe { fork() } {
        Err(e) => report_and_exit(pipe, EXIT_RUNTIME, &format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            let _ = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL));
            drop(pid_pipe);
            let mut byte = [0u8; 1];
            if !matches!(std::fs::File::from(go_read).read(&mut byte), Ok(1)) {
                // The intermediate or the caller's prestart failed and reports why; say nothing.
                drop(pipe);
                std::process::exit(EXIT_RUNTIME);
            }
            let Err(e) = init(&sys, spec, bundle, console);
            report_and_exit(pipe, e.exit_code(), &chain(&e))
        }
        Ok(ForkResult::Parent { child }) => {
            drop(go_read);
            if let Some(Err(e)) = cgroup.map(|m| m.add_task(child.as_raw())) {
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                let _ = wait_for(child);
                let e = RunError::Cgroup(e);
                report_and_exit(pipe, EXIT_RUNTIME, &chain(&e));
            }
            // The caller sends init its `go` once it has seen this PID (and run its prestart).
            let _ = pid_pipe.write_all(&child.as_raw().to_ne_bytes());
            drop(pid_pipe);
            drop(pipe);
            std::process::exit(wait_for(child).unwrap_or(EXIT_RUNTIME))
        }
    }
}

/// Closes every descriptor above 2 but `keep` (in a freshly forked child).
pub(crate) fn close_fds_except(keep: &[i32]) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && !keep.contains(fd))
        .collect();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// `error: cause: cause` on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{PosixRlimitBuilder, ProcessBuilder, SpecBuilder};

    use super::*;
    use crate::spec::{build, Network, RunOptions, DEFAULT_CAPS};
    use crate::syscall::{Call, Cap, FakeSyscall};

    fn spec(rootfs: &Path, user: Option<&str>, command: &[&str]) -> Spec {
        let opts = RunOptions {
            hostname: "box".into(),
            env: vec![],
            workdir: Some(std::env::temp_dir().display().to_string()),
            user: user.map(str::to_owned),
            entrypoint: None,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            network: Network::None,
            etc_files: vec![],
        };
        build(None, &opts, rootfs).unwrap()
    }

    fn docker_caps() -> CapsHashSet {
        DEFAULT_CAPS
            .iter()
            .map(|c| c.parse::<Cap>().unwrap())
            .collect()
    }

    #[test]
    fn init_runs_the_steps_in_order_and_execs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("rootfs")).unwrap();
        let spec = spec(
            &t.path().join("rootfs"),
            Some("1000:1000"),
            &["/bin/sh", "-c", "true"],
        );
        let sys = FakeSyscall::default();
        let err = init(&sys, &spec, t.path(), None).unwrap_err();
        // The fake's execve "fails" after recording: everything before it ran.
        assert!(matches!(
            err,
            InitError::Exec {
                errno: Errno::ENOSYS,
                ..
            }
        ));
        let calls = sys.calls();
        let pos = |want: &Call| {
            calls
                .iter()
                .position(|c| c == want)
                .unwrap_or_else(|| panic!("{want:?} not called"))
        };
        let pivot = calls
            .iter()
            .position(|c| matches!(c, Call::PivotRoot { .. }))
            .unwrap();
        let lo = pos(&Call::LoopbackUp);
        let host = pos(&Call::Sethostname("box".into()));
        let seccomp = calls
            .iter()
            .position(|c| matches!(c, Call::Seccomp(n) if *n > 300))
            .unwrap();
        let bounding = pos(&Call::DropBoundingCaps(docker_caps()));
        let keep = pos(&Call::SetKeepCaps(true));
        let gid = pos(&Call::Setresgid(1000));
        let uid = pos(&Call::Setresuid(1000));
        let unkeep = pos(&Call::SetKeepCaps(false));
        let eff = pos(&Call::SetCaps("Effective".into(), docker_caps()));
        let prm = pos(&Call::SetCaps("Permitted".into(), docker_caps()));
        let inh = pos(&Call::SetCaps("Inheritable".into(), CapsHashSet::new()));
        let amb = pos(&Call::SetCaps("Ambient".into(), CapsHashSet::new()));
        let cloexec = pos(&Call::SetCloexecFrom(3));
        let order = [
            pivot,
            lo,
            host,
            seccomp,
            bounding,
            keep,
            pos(&Call::Setgroups(vec![1000])),
            gid,
            uid,
            unkeep,
            eff,
            prm,
            inh,
            amb,
            cloexec,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "order: {order:?}");
        // Docker's default: no_new_privs only with --security-opt no-new-privileges.
        assert!(!calls.contains(&Call::SetNoNewPrivs));
        match calls.last().unwrap() {
            Call::Execve { path, argv, envp } => {
                assert_eq!(path, Path::new("/bin/sh"));
                assert_eq!(argv, &["/bin/sh", "-c", "true"]);
                assert!(envp.contains(&"HOSTNAME=box".to_owned()));
            }
            other => panic!("last call {other:?}"),
        }
    }

    #[test]
    fn no_new_privs_when_the_spec_asks() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path(), None, &["/bin/sh"]);
        let mut p = spec.process().clone().unwrap();
        p.set_no_new_privileges(Some(true));
        spec.set_process(Some(p));
        let sys = FakeSyscall::default();
        let _ = init(&sys, &spec, t.path(), None);
        let calls = sys.calls();
        let nnp = calls
            .iter()
            .position(|c| *c == Call::SetNoNewPrivs)
            .unwrap();
        let uid = calls.iter().position(|c| *c == Call::Setresuid(0)).unwrap();
        assert!(nnp < uid);
    }

    #[test]
    fn failing_step_stops_before_exec() {
        let t = tempfile::tempdir().unwrap();
        let spec = spec(t.path(), None, &["/bin/sh"]);
        let sys = FakeSyscall::default();
        sys.fail_on("sethostname", Errno::EPERM);
        let err = init(&sys, &spec, t.path(), None).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_RUNTIME);
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Execve { .. })));
    }

    #[test]
    fn rlimits_are_clamped_to_the_hard_limit() {
        let spec = SpecBuilder::default()
            .process(
                ProcessBuilder::default()
                    .rlimits(vec![PosixRlimitBuilder::default()
                        .typ(PosixRlimitType::RlimitNofile)
                        .soft(1_048_576u64)
                        .hard(1_048_576u64)
                        .build()
                        .unwrap()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let sys = FakeSyscall::default();
        sys.set_rlimit(Resource::RLIMIT_NOFILE, 1024, 20_000);
        apply_rlimits(&sys, &spec).unwrap();
        assert_eq!(
            sys.calls(),
            [
                Call::Setrlimit {
                    resource: Resource::RLIMIT_NOFILE,
                    soft: 1_048_576,
                    hard: 1_048_576
                },
                Call::Setrlimit {
                    resource: Resource::RLIMIT_NOFILE,
                    soft: 20_000,
                    hard: 20_000
                },
            ]
        );
    }

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(InitError::NotFound { name: "x".into() }.exit_code(), 127);
        assert_eq!(
            InitError::Exec {
                path: "/x".into(),
                errno: Errno::ENOENT
            }
            .exit_code(),
            127
        );
        assert_eq!(
            InitError::Exec {
                path: "/x".into(),
                errno: Errno::EACCES
            }
            .exit_code(),
            126
        );
        assert_eq!(
            InitError::Exec {
                path: "/x".into(),
                errno: Errno::ENOEXEC
            }
            .exit_code(),
            126
        );
        assert_eq!(InitError::NoProcess.exit_code(), 125);
        assert_eq!(
            exit_status(WaitStatus::Signaled(
                Pid::from_raw(1),
                Signal::SIGKILL,
                false
            )),
            137
        );
        assert_eq!(exit_status(WaitStatus::Exited(Pid::from_raw(1), 3)), 3);
    }

    #[test]
    fn lookup_searches_the_containers_path() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::write(t.path().join("data"), "").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", t.path().display())];
        assert_eq!(lookup("tool", &env).unwrap(), exe);
        // Not executable: skipped, so not found (127), like Go's LookPath.
        assert!(matches!(
            lookup("data", &env),
            Err(InitError::NotFound { .. })
        ));
        assert_eq!(lookup("./rel", &env).unwrap(), Path::new("./rel"));
    }

    #[test]
    fn resources_need_a_cgroups_path() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path(), None, &["sh"]);
        let mut linux = spec.linux().clone().unwrap();
        linux.set_resources(Some(crate::cgroups::test_util::resources()));
        spec.set_linux(Some(linux));
        assert!(matches!(
            setup_cgroups(&spec),
            Err(RunError::Unsupported { .. })
        ));
        // Neither: no cgroups, nothing touched.
        let spec = super::tests::spec(t.path(), None, &["sh"]);
        assert!(setup_cgroups(&spec).unwrap().is_none());
    }

    #[test]
    fn joining_namespaces_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path(), None, &["sh"]);
        let mut linux = spec.linux().clone().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        ns[1].set_path(Some("/proc/1/ns/pid".into()));
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
        assert!(matches!(
            namespace_flags(&spec),
            Err(RunError::Unsupported { .. })
        ));
    }

    #[test]
    fn a_network_namespace_path_is_joined_not_created() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path(), None, &["sh"]);
        let mut linux = spec.linux().clone().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        let net = ns
            .iter_mut()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        net.set_path(Some("/proc/42/ns/net".into()));
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
        let flags = namespace_flags(&spec).unwrap();
        assert!(!flags.contains(CloneFlags::CLONE_NEWNET));
        assert!(flags.contains(CloneFlags::CLONE_NEWPID));
        assert_eq!(
            namespace_joins(&spec),
            vec![(CloneFlags::CLONE_NEWNET, PathBuf::from("/proc/42/ns/net"))]
        );
    }
}
