//! The intermediate process: joins and creates the container's namespaces, forks init (PID 1
//! of the new PID namespace) into the container's cgroup v2 directory if it has one, passes its
//! PID to the caller and exits with its status. Init joins the other cgroups itself, first
//! thing ([`CgroupManager::join`]).

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::Signal;
use nix::unistd::ForkResult;
use oci_spec::runtime::Spec;

use super::error::{RunError, EXIT_RUNTIME};
use super::init::{init, namespace_joins};
use super::message::report_and_exit;
use super::wait::{chain, fork_into, wait_for};
use crate::cgroups::{self, CgroupManager};
use crate::syscall::{CloneFlags, LinuxSyscall, Syscall};

/// The intermediate's ends of the pipes to the caller.
pub(super) struct Pipes {
    /// Init's failure report (`code message`), close-on-exec.
    pub(super) report: std::fs::File,
    /// Init's host PID for the caller.
    pub(super) pid: std::fs::File,
    /// The caller's go-ahead for init.
    pub(super) go: OwnedFd,
}

/// Intermediate process: enters the new namespaces, forks init (PID 1 of the new PID
/// namespace), which joins the cgroups and waits for the caller's go, and exits with init's
/// status.
pub(super) fn intermediate(
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
    // The container's cgroup v2 directory, opened while the host's mounts are still ours:
    // init is born in it. Close-on-exec, like every descriptor here.
    let v2_dir = cgroup
        .and_then(cgroups::Manager::clone_target)
        .and_then(|dir| std::fs::File::open(dir).ok());
    if let Err(e) = sys.unshare(flags) {
        report_and_exit(pipe, EXIT_RUNTIME, &chain(&e));
    }
    match fork_into(v2_dir.as_ref().map(AsFd::as_fd)) {
        Err(e) => report_and_exit(pipe, EXIT_RUNTIME, &format!("fork: {e}")),
        Ok((ForkResult::Child, in_v2)) => {
            let _ = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL));
            drop((pid_pipe, v2_dir));
            // Into the cgroups before anything else, while the caller runs its prestart.
            let joined = cgroup.map_or(Ok(()), |m| m.join(in_v2));
            let mut byte = [0u8; 1];
            if !matches!(std::fs::File::from(go_read).read(&mut byte), Ok(1)) {
                // The intermediate or the caller's prestart failed and reports why; say nothing.
                drop(pipe);
                std::process::exit(EXIT_RUNTIME);
            }
            if let Err(e) = joined {
                report_and_exit(pipe, EXIT_RUNTIME, &chain(&RunError::Cgroup(e)));
            }
            let Err(e) = init(&sys, spec, bundle, console);
            report_and_exit(pipe, e.exit_code(), &chain(&e))
        }
        Ok((ForkResult::Parent { child }, _)) => {
            drop((go_read, v2_dir));
            // The caller sends init its `go` once it has seen this PID (and run its prestart).
            let _ = pid_pipe.write_all(&child.as_raw().to_ne_bytes());
            drop(pid_pipe);
            drop(pipe);
            std::process::exit(wait_for(child).unwrap_or(EXIT_RUNTIME))
        }
    }
}
