//! The container's init, in its new namespaces: every step from the root file system to
//! `execve`, each taking `&dyn Syscall` so tests run them on the fake. [`exec_tail`] (the lookup,
//! the descriptor sweep and `execve`) is shared with `exec`'d processes ([`crate::exec`]).
//! Calls only [`crate::syscall`], [`crate::rootfs`] and [`crate::seccomp`].

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};

use super::error::{InitError, InitResult, RunError};
use crate::rootfs::{finish_rootfs, setup_rootfs};
use crate::syscall::{CapSet, CapsHashSet, CloneFlags, Errno, Resource, Syscall, SyscallError};

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

/// `linux.sysctl`, written in the container's namespaces. A key with a `/` or an empty part
/// (`net..x`) is refused, so no key reaches outside `/proc/sys`.
fn apply_sysctls(sys: &dyn Syscall, spec: &Spec) -> InitResult<()> {
    let linux = spec.linux().as_ref();
    let sysctls = linux.and_then(|l| l.sysctl().clone()).unwrap_or_default();
    // The container's own namespaces: new ones and joined ones (another container's, by path).
    let namespaces = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let own = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    for (key, value) in &sysctls {
        if key.contains('/') || key.split('.').any(str::is_empty) {
            return Err(InitError::Sysctl(key.clone()));
        }
        if let Some(typ) = crate::spec::sysctl_namespace(key) {
            if !own(typ) {
                return Err(InitError::SysctlHostNamespace {
                    key: key.clone(),
                    namespace: match typ {
                        LinuxNamespaceType::Ipc => "ipc",
                        LinuxNamespaceType::Network => "network",
                        _ => "uts",
                    },
                });
            }
        }
        sys.write_sysctl(key, value)?;
    }
    Ok(())
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
    // Before `finish_rootfs` makes `/proc/sys` read-only, as runc.
    apply_sysctls(sys, spec)?;
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
    let wants_init = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(super::tiny_init::ANNOTATION))
        .is_some_and(|v| v == "true");
    if wants_init {
        // Only the child comes back, to `execve` the command under the init.
        super::tiny_init::fork_init().map_err(|errno| InitError::Init { errno })?;
    }
    exec_tail(sys, process)
}

/// The last steps of every container process (init and `exec`'d ones): find argv\[0\] in the
/// container's `PATH`, mark every inherited descriptor close-on-exec, `execve`.
///
/// # Errors
/// Not found (127), cannot be run (126), or a bad argument.
pub fn exec_tail(
    sys: &dyn Syscall,
    process: &oci_spec::runtime::Process,
) -> InitResult<Infallible> {
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
