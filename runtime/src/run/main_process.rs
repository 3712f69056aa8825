//! The caller's side of a run (berth itself, or the monitor): creates the cgroups, forks the
//! intermediate ([`super::intermediate`]), hands it the container's stdio, runs the prestart
//! hook with init's PID, lets init go, reads init's report ([`super::message`]) and waits.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::Spec;

use super::error::{RunError, EXIT_RUNTIME};
use super::init::namespace_flags;
use super::intermediate::{intermediate, Pipes};
use super::message::{report_and_exit, Report};
use super::wait::{close_fds_except, proc_err, wait_for};
use crate::cgroups::{self, CgroupManager};

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
            match Report::decode(&report) {
                Some(Report::Failed { code, message }) => Err(RunError::Start { code, message }),
                Some(Report::Started) | None => Ok(Exit {
                    code: status,
                    oom_killed,
                }),
            }
        }
    }
}

/// The container's cgroups, removed on drop (after the container exited).
pub(super) struct CgroupGuard(cgroups::Manager);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        // Best effort: init is gone, so its PID namespace's other tasks are being killed;
        // `remove` retries while they drain.
        let _ = self.0.remove();
    }
}

/// Creates the cgroups of `linux.cgroupsPath` with `linux.resources`; `None` without a path.
pub(super) fn setup_cgroups(spec: &Spec) -> Result<Option<CgroupGuard>, RunError> {
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
