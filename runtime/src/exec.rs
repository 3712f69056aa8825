//! Runs another process in a running container (`berth exec`), like runc's tenant path:
//!
//! ```text
//! berth --fork--> intermediate: joins the container's v1 cgroups, setns(ipc, uts, net, pid,
//!   cgroup, mnt) --fork--> process (in the container's PID namespace, born in its cgroup v2
//!   directory): terminal, rlimits, no_new_privs, user, capabilities, chdir, execve
//! ```
//!
//! The cgroups are joined as init joins them ([`crate::run`]): through v1's `tasks` by the
//! single-threaded intermediate, and by birth (`CLONE_INTO_CGROUP`) into the v2 directory,
//! held open across the change of mount namespace; never by a PID write, whose global lock
//! cost every exec 6–16 ms after a pause.
//!
//! Namespaces are opened from `/proc/<init>/ns/*` before forking; the mount namespace is
//! joined last, since joining it moves the root to the container's. The intermediate is made
//! non-dumpable first (CVE-2019-5736 class), so while berth's own code runs inside the
//! container's namespaces no container process can ptrace it or open its `/proc/<pid>/exe`
//! (the host binary); `execve` of the container's program ends that window. Failures before
//! `execve` are reported as in [`crate::run`] with Docker's 125/126/127.

use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{fork, ForkResult};

use crate::cgroups::CgroupError;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::cgroups::{self, CgroupManager};
use crate::run::{
    apply_rlimits, apply_seccomp, apply_user_and_caps, chain, exec_tail, fork_into,
    report_and_exit, setup_terminal, wait_for, InitError, InitResult, RunError, Stdio,
    EXIT_RUNTIME,
};
use crate::syscall::{CloneFlags, Errno, LinuxSyscall, Syscall};

/// A namespace to join: its kind and an open `/proc/<pid>/ns/<name>`.
type NsFd = (CloneFlags, OwnedFd);

/// Opens the namespaces of the container's init (`pid`) that its spec asks for, mount last.
///
/// # Errors
/// [`RunError::NotRunning`] when init is gone.
pub fn open_namespaces(spec: &Spec, pid: i32) -> Result<Vec<NsFd>, RunError> {
    let kinds = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut mount = None;
    for ns in kinds {
        let (name, flag) = match ns.typ() {
            LinuxNamespaceType::Mount => ("mnt", CloneFlags::CLONE_NEWNS),
            LinuxNamespaceType::Pid => ("pid", CloneFlags::CLONE_NEWPID),
            LinuxNamespaceType::Uts => ("uts", CloneFlags::CLONE_NEWUTS),
            LinuxNamespaceType::Ipc => ("ipc", CloneFlags::CLONE_NEWIPC),
            LinuxNamespaceType::Network => ("net", CloneFlags::CLONE_NEWNET),
            LinuxNamespaceType::Cgroup => ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            _ => continue,
        };
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let fd = nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|_| RunError::NotRunning { pid })?;
        // SAFETY-free: `open` returned a fresh descriptor that only we hold.
        let fd = owned(fd);
        if flag == CloneFlags::CLONE_NEWNS {
            mount = Some((flag, fd));
        } else {
            out.push((flag, fd));
        }
    }
    out.extend(mount);
    Ok(out)
}

#[allow(unsafe_code)]
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd as _;
    // SAFETY: `fd` was just returned by open(2) and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The exec'd process's steps once it is in the container's namespaces, up to `execve`.
/// `spec` is the container's spec with `process` replaced by the one to run.
///
/// # Errors
/// The first failing step.
pub fn exec_init(
    sys: &dyn Syscall,
    spec: &Spec,
    console: Option<BorrowedFd<'_>>,
) -> InitResult<Infallible> {
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    // As in init: its own session and process group, never the caller's terminal.
    sys.setsid()?;
    setup_terminal(sys, spec, console)?;
    apply_rlimits(sys, spec)?;
    if process.no_new_privileges() == Some(true) {
        sys.set_no_new_privs()?;
    }
    apply_seccomp(sys, spec)?;
    apply_user_and_caps(sys, spec)?;
    let cwd = process.cwd().clone();
    sys.chdir(&cwd)
        .map_err(|_| InitError::ExecCwd { path: cwd.clone() })?;
    // The same tail as init's, CVE-2024-21626 descriptor sweep included.
    exec_tail(sys, process)
}

fn proc_err(op: &'static str) -> impl FnOnce(Errno) -> RunError {
    move |errno| RunError::Process(crate::syscall::os_err(op, None, errno))
}

/// Runs `process` in the running container whose init has host PID `init_pid` and whose spec
/// is `spec`; returns its exit status. `started` gets the process's host PID once it runs.
///
/// # Errors
/// [`RunError::NotRunning`], [`RunError::Start`] (125/126/127) or the fork/wait plumbing.
#[allow(unsafe_code)]
pub fn exec(
    spec: &Spec,
    init_pid: i32,
    process: Process,
    stdio: Stdio,
    started: &mut dyn FnMut(i32),
) -> Result<i32, RunError> {
    let namespaces = open_namespaces(spec, init_pid)?;
    let mut spec = spec.clone();
    spec.set_process(Some(process));
    let cgroup = match spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) {
        Some(path) => {
            let layout = cgroups::detect_host().map_err(RunError::Cgroup)?;
            Some(
                cgroups::Manager::new(&layout, &path.to_string_lossy())
                    .map_err(RunError::Cgroup)?,
            )
        }
        None => None,
    };
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(proc_err("pipe2"))?;
    let (pid_read, pid_write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(proc_err("pipe2"))?;
    // SAFETY: as in `run::run_with`: the child only sets itself up and execs or exits.
    match unsafe { fork() }.map_err(proc_err("fork"))? {
        ForkResult::Child => {
            drop((read, pid_read));
            let pipe = std::fs::File::from(write);
            let console = stdio.console;
            for (fd, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
                if let Some(fd) = fd {
                    if let Err(e) = nix::unistd::dup2(fd.as_raw_fd(), target) {
                        report_and_exit(pipe, EXIT_RUNTIME, &format!("dup2: {e}"));
                    }
                }
            }
            let ns_fds: Vec<i32> = namespaces.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
            let mut keep = vec![
                pipe.as_raw_fd(),
                pid_write.as_raw_fd(),
                console.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd),
            ];
            keep.extend(ns_fds);
            crate::run::close_fds_except(&keep);
            tenant_intermediate(
                &spec,
                &namespaces,
                pipe,
                std::fs::File::from(pid_write),
                cgroup.as_ref(),
                console.as_ref().map(std::os::fd::AsFd::as_fd),
            )
        }
        ForkResult::Parent { child } => {
            drop((write, pid_write, namespaces));
            drop((stdio.stdin, stdio.stdout, stdio.stderr, stdio.console));
            let mut pid = [0u8; 4];
            let exec_pid = std::fs::File::from(pid_read)
                .read_exact(&mut pid)
                .ok()
                .map(|()| i32::from_ne_bytes(pid));
            let mut report = String::new();
            let _ = std::fs::File::from(read).read_to_string(&mut report);
            if let (Some(pid), true) = (exec_pid, report.is_empty()) {
                started(pid);
            }
            let status = wait_for(child).map_err(proc_err("waitpid"))?;
            match crate::run::Report::decode(&report) {
                Some(crate::run::Report::Failed { code, message }) => {
                    Err(RunError::Start { code, message })
                }
                Some(crate::run::Report::Started) | None => Ok(status),
            }
        }
    }
}

/// The exec intermediate: joins the cgroups and the namespaces, forks the process (which
/// lands in the container's PID namespace) and exits with its status.
fn tenant_intermediate(
    spec: &Spec,
    namespaces: &[NsFd],
    pipe: std::fs::File,
    mut pid_pipe: std::fs::File,
    cgroup: Option<&cgroups::Manager>,
    console: Option<BorrowedFd<'_>>,
) -> ! {
    let sys = LinuxSyscall;
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)) {
        report_and_exit(pipe, EXIT_RUNTIME, &format!("prctl(PR_SET_PDEATHSIG): {e}"));
    }
    // CVE-2019-5736: not dumpable while berth's code runs inside the container.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        report_and_exit(pipe, EXIT_RUNTIME, &format!("prctl(PR_SET_DUMPABLE): {e}"));
    }
    // While the host's cgroup file system is reachable: v1 here; v2 by birth, from the
    // directory held open, or here too when it cannot be opened.
    let v2 = cgroup
        .and_then(cgroups::Manager::clone_target)
        .and_then(|dir| std::fs::File::open(&dir).ok().map(|f| (f, dir)));
    if let Some(Err(e)) = cgroup.map(|m| m.join(v2.is_some())) {
        report_and_exit(pipe, EXIT_RUNTIME, &chain(&RunError::Cgroup(e)));
    }
    for (kind, fd) in namespaces {
        if let Err(e) = sys.setns(fd.as_fd(), *kind) {
            report_and_exit(pipe, EXIT_RUNTIME, &chain(&e));
        }
    }
    match fork_into(v2.as_ref().map(|(dir, _)| dir.as_fd())) {
        Err(e) => report_and_exit(pipe, EXIT_RUNTIME, &format!("fork: {e}")),
        Ok((ForkResult::Child, placed)) => {
            let _ = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL));
            drop(pid_pipe);
            if let (false, Some((dir, path))) = (placed, &v2) {
                if let Err(e) = join_v2_dir(dir, path) {
                    report_and_exit(pipe, EXIT_RUNTIME, &chain(&RunError::Cgroup(e)));
                }
            }
            drop(v2);
            let Err(e) = exec_init(&sys, spec, console);
            report_and_exit(pipe, e.exit_code(), &chain(&e))
        }
        Ok((ForkResult::Parent { child }, _)) => {
            let _ = pid_pipe.write_all(&child.as_raw().to_ne_bytes());
            drop((pid_pipe, pipe));
            std::process::exit(wait_for(child).unwrap_or(EXIT_RUNTIME))
        }
    }
}

/// Moves the calling process into the cgroup v2 directory open as `dir` (`0` to its
/// `cgroup.procs`, found relative to the descriptor: the container's mount namespace, where
/// this runs, cannot redirect it). `path` names it in errors.
fn join_v2_dir(dir: &std::fs::File, path: &std::path::Path) -> Result<(), CgroupError> {
    let file = path.join("cgroup.procs");
    let err = |errno: Errno| CgroupError::Write {
        path: file.clone(),
        value: "0".into(),
        source: std::io::Error::from(errno),
    };
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        "cgroup.procs",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    std::fs::File::from(owned(fd))
        .write_all(b"0")
        .map_err(|source| CgroupError::Write {
            path: file.clone(),
            value: "0".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::{build, Network, RunOptions};
    use crate::syscall::{Call, FakeSyscall};

    fn spec(rootfs: &Path) -> Spec {
        let opts = RunOptions {
            hostname: "box".into(),
            env: vec![],
            workdir: None,
            user: None,
            entrypoint: None,
            command: vec!["sleep".into()],
            network: Network::None,
            etc_files: vec![],
        };
        build(None, &opts, rootfs).unwrap()
    }

    #[test]
    fn exec_sets_up_the_process_then_execs() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path());
        let mut p = spec.process().clone().unwrap();
        p.set_args(Some(vec!["/bin/echo".into(), "hi".into()]));
        p.set_cwd("/tmp".into());
        p.set_terminal(Some(true));
        spec.set_process(Some(p));
        let sock = std::fs::File::open("/dev/null").unwrap();
        let sys = FakeSyscall::default();
        let err = exec_init(&sys, &spec, Some(sock.as_fd())).unwrap_err();
        assert!(matches!(
            err,
            InitError::Exec {
                errno: Errno::ENOSYS,
                ..
            }
        ));
        let calls = sys.calls();
        let pos = |f: &dyn Fn(&Call) -> bool| calls.iter().position(f).unwrap();
        let console = pos(&|c| matches!(c, Call::SetupConsole { uid: 0, gid: 0, .. }));
        let uid = pos(&|c| *c == Call::Setresuid(0));
        let chdir = pos(&|c| *c == Call::Chdir("/tmp".into()));
        let cloexec = pos(&|c| *c == Call::SetCloexecFrom(3));
        assert!(console < uid && uid < chdir && chdir < cloexec, "{calls:?}");
        // No mounts, no hostname: the container already has them.
        assert!(!calls
            .iter()
            .any(|c| matches!(c, Call::Mount { .. } | Call::Sethostname(_))));
    }

    #[test]
    fn a_terminal_needs_a_console_socket() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = spec(t.path());
        let mut p = spec.process().clone().unwrap();
        p.set_terminal(Some(true));
        spec.set_process(Some(p));
        let sys = FakeSyscall::default();
        assert!(matches!(
            exec_init(&sys, &spec, None),
            Err(InitError::NoConsole)
        ));
    }

    #[test]
    fn namespaces_of_a_gone_process_are_not_running() {
        let t = tempfile::tempdir().unwrap();
        let spec = spec(t.path());
        // PID 0 never has a /proc entry.
        assert!(matches!(
            open_namespaces(&spec, 0),
            Err(RunError::NotRunning { pid: 0 })
        ));
    }

    #[test]
    fn mount_namespace_is_joined_last() {
        let t = tempfile::tempdir().unwrap();
        let spec = spec(t.path());
        let me = nix::unistd::getpid().as_raw();
        let ns = open_namespaces(&spec, me).unwrap();
        assert_eq!(ns.len(), 5);
        assert_eq!(ns.last().unwrap().0, CloneFlags::CLONE_NEWNS);
    }
}
