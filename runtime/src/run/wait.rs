//! Waiting for the container's processes, and the small plumbing every process role shares:
//! exit statuses (`128+n` for signal `n`), descriptor sweeps, one-line error chains.

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

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
