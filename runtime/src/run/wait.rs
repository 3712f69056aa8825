//! Forking and waiting for the container's processes, and the small plumbing every process
//! role shares: a fork into a cgroup, exit statuses (`128+n` for signal `n`), descriptor
//! sweeps, one-line error chains.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::error::{RunError, EXIT_RUNTIME};
use crate::syscall::Errno;

pub(crate) fn proc_err(op: &'static str) -> impl FnOnce(Errno) -> RunError {
    move |errno| RunError::Process(crate::syscall::os_err(op, None, errno))
}

pub(crate) fn exit_status(status: WaitStatus) -> i32 {
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

/// `clone3`'s flag for a child born in the cgroup v2 directory `clone_args.cgroup` (Linux 5.7);
/// the libc crate does not define it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks, with the child born in the cgroup v2 directory `cgroup` when one is given (`clone3`
/// with `CLONE_INTO_CGROUP`): no `cgroup.procs` write, so no wait for the kernel's threadgroup
/// lock. Returns whether the child is in that directory: `false` after a plain `fork`, which
/// is the fallback when the kernel refuses `clone3` (too old, a seccomp filter, a directory it
/// cannot take), so the child then joins with a write and the caller sees that write's error.
///
/// Only for a single-threaded caller whose child runs Berth's own code and then `execve`s or
/// exits (the intermediates forking init and an `exec`'d process).
#[allow(unsafe_code)]
pub(crate) fn fork_into(cgroup: Option<BorrowedFd<'_>>) -> Result<(ForkResult, bool), Errno> {
    if let Some(dir) = cgroup {
        let mut args = libc::clone_args {
            flags: CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: u64::try_from(dir.as_raw_fd()).unwrap_or(u64::MAX),
        };
        // SAFETY: `clone3` without CLONE_VM and without a stack is `fork` with a cgroup: the
        // child gets a copy of this single-threaded process. glibc's fork handlers do not run,
        // which matters only for locks another thread could hold (there is none) and leaves
        // glibc's cached thread ID of the parent in the child, used only by `raise`/`abort`
        // (which then fall back to other ways of ending the process).
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                std::ptr::addr_of_mut!(args),
                std::mem::size_of::<libc::clone_args>(),
            )
        };
        match r {
            0 => return Ok((ForkResult::Child, true)),
            pid if pid > 0 => {
                let child = Pid::from_raw(i32::try_from(pid).map_err(|_| Errno::EOVERFLOW)?);
                return Ok((ForkResult::Parent { child }, true));
            }
            _ => {}
        }
    }
    // SAFETY: as above; glibc's own fork.
    unsafe { fork() }.map(|r| (r, false))
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
