//! `--init` (Docker's `docker-init`, which is tini): a small init as the container's PID 1 that
//! forwards signals to the command and reaps every zombie, so a program that was never written
//! to be PID 1 still dies on SIGTERM and leaves no `<defunct>` children behind.
//!
//! Berth needs no extra binary in the container: init, which is already running in the
//! container (from the sealed copy of Berth's binary, [`crate::cloned_binary`]) with every step
//! done (root file system, user, capabilities, seccomp), forks. The child goes on to `execve`
//! the command; the parent stays PID 1, closes every descriptor but stdio (the report pipe
//! included, so the caller still learns of a failed `execve` from the child alone), blocks
//! every signal, and loops on `sigwait`: SIGCHLD reaps (`waitpid(-1)`), anything else is sent to
//! the command. It exits with the command's status, `128+n` for signal `n`, as tini does.
//!
//! Process plumbing like [`super::intermediate`]'s, so it calls nix directly rather than
//! through [`crate::syscall::Syscall`].

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// The annotation that asks the runtime for this init (`run --init`; OCI runtimes other than
/// Berth's ignore it).
pub const ANNOTATION: &str = "org.berth.init";

/// Forks: returns in the child (which then `execve`s the command); the parent never returns,
/// and exits with the child's status once the child has exited.
///
/// # Errors
/// The fork itself failed (still in the only process).
#[allow(unsafe_code)]
pub fn fork_init() -> Result<(), Errno> {
    let all = SigSet::all();
    // Blocked before the fork, so no signal sent in between is lost: the child unblocks them
    // just before `execve`; blocked signals are also the only ones a PID 1 without handlers
    // receives (the kernel drops others sent to an unkillable init).
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    // SAFETY: init is single-threaded.
    match unsafe { fork() }? {
        ForkResult::Child => {
            child_setup();
            Ok(())
        }
        ForkResult::Parent { child } => supervise(child),
    }
}

/// In the child: a process group of its own, the terminal's foreground when stdin is one (as
/// tini's `isolate_child`), then every signal unblocked.
fn child_setup() {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SIGTTOU is still blocked, so taking the foreground cannot stop us.
    let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Closes every descriptor above stderr (those `/proc/self/fd` lists: the container's `/proc`,
/// where init's own descriptors are).
fn close_above_stdio() {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// PID 1's loop: reap, forward, exit with the command's status.
fn supervise(child: Pid) -> ! {
    close_above_stdio();
    let all = SigSet::all();
    loop {
        // Reap everything that has exited; our command's end is the container's.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    std::process::exit(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(child, sig);
            }
        }
    }
}
