//! Running work in a detached process: in its own session, with `/dev/null` for the stdio it
//! does not report on, and one [`Report`] back on a pipe once the work runs (or why it could
//! not). The caller waits for that word only, never for the process.
//!
//! Two shapes:
//! - [`spawn`]: a program (the client's container monitor), double-forked so it is reparented
//!   away from the caller; its stdout is the report pipe.
//! - [`run`]: a closure in a forked child of ours (a detached `exec`), which reports through a
//!   [`Reporter`]; an error it returns is reported as [`Report::Failed`] with its exit code.
//!
//! Both read the word with [`ReadyPipe::wait_ready`]. May call `nix` (fork, setsid, pipes,
//! dup2) and [`crate::run`] (the [`Report`] encoding, [`RunError`]); nothing else of the crate.

use std::io::BufReader;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::unistd::ForkResult;

use crate::run::{Report, RunError};

/// A detached process could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// The program could not be spawned.
    #[error("cannot spawn `{program}`")]
    Spawn {
        /// The program, as the command names it.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spawned program has no stdout pipe.
    #[error("the detached process has no output pipe")]
    NoPipe,
    /// The report pipe could not be created.
    #[error("cannot create the report pipe")]
    Pipe(#[source] nix::Error),
    /// The child could not be forked.
    #[error("cannot fork the detached process")]
    Fork(#[source] nix::Error),
}

/// The detached process did not get its work running.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// It reported a failure (its exit code: 125, 126 or 127).
    #[error(transparent)]
    Run(#[from] RunError),
    /// It exited (closed the pipe) before it said anything.
    #[error("the detached process exited before it was ready")]
    Gone,
}

/// The read end of a detached process's report pipe.
#[derive(Debug)]
pub struct ReadyPipe(BufReader<std::fs::File>);

impl ReadyPipe {
    fn new(fd: OwnedFd) -> Self {
        Self(BufReader::new(std::fs::File::from(fd)))
    }

    /// Reads the one word: `Ok` once the work runs.
    ///
    /// # Errors
    /// [`ReadyError::Run`] with what the process reported; [`ReadyError::Gone`] at EOF (or for
    /// anything that is not a report).
    pub fn wait_ready(&mut self) -> Result<(), ReadyError> {
        match Report::read_from(&mut self.0) {
            Some(Report::Started) => Ok(()),
            Some(Report::Failed { code, message }) => Err(RunError::Start { code, message }.into()),
            None => Err(ReadyError::Gone),
        }
    }
}

/// Spawns `cmd` detached: its own session, reparented away from this process by a second fork
/// (so it is never ours to wait for), stdin and stderr `/dev/null`, its stdout the returned
/// pipe. The program writes one [`Report`] line there ([`Report::write_to`]).
///
/// # Errors
/// The program cannot be spawned.
#[allow(unsafe_code)]
pub fn spawn(mut cmd: Command) -> Result<ReadyPipe, DetachError> {
    use std::os::unix::process::CommandExt as _;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, fork, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            match nix::unistd::fork()? {
                ForkResult::Parent { .. } => nix::libc::_exit(0),
                ForkResult::Child => Ok(()),
            }
        });
    }
    let mut child = cmd.spawn().map_err(|source| DetachError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let out = child.stdout.take();
    // The first child exits at once; the program is not ours to wait for.
    let _ = child.wait();
    out.map(|o| ReadyPipe::new(o.into()))
        .ok_or(DetachError::NoPipe)
}

/// The child's side of the report pipe (see [`run`]).
#[derive(Debug)]
pub struct Reporter(Option<std::fs::File>);

impl Reporter {
    /// Tells the caller the work runs; the first word counts, later ones are dropped.
    pub fn started(&mut self) {
        self.tell(&Report::Started);
    }

    fn tell(&mut self, report: &Report) {
        if let Some(mut pipe) = self.0.take() {
            let _ = report.write_to(&mut pipe);
        }
    }
}

/// Runs `work` in a forked child of ours, in its own session, with stdin, stdout and stderr on
/// `/dev/null` (the caller's stdio is not the child's to keep open: the caller's own caller may
/// wait for its EOF). `work` calls [`Reporter::started`] once it runs; an error it returns is
/// reported as [`Report::Failed`] with [`RunError::exit_code`]. The child then exits 0.
///
/// The caller reads the word with [`ReadyPipe::wait_ready`]. The child is not waited for.
///
/// # Errors
/// The pipe or the fork failed.
#[allow(unsafe_code)]
pub fn run<F>(work: F) -> Result<ReadyPipe, DetachError>
where
    F: FnOnce(&mut Reporter) -> Result<(), RunError>,
{
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(DetachError::Pipe)?;
    // SAFETY: the child only runs `work` (plumbing that forks and execs) and exits.
    match unsafe { nix::unistd::fork() }.map_err(DetachError::Fork)? {
        ForkResult::Child => {
            drop(read);
            let _ = nix::unistd::setsid();
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                for fd in 0..3 {
                    let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                }
            }
            let mut reporter = Reporter(Some(std::fs::File::from(write)));
            if let Err(e) = work(&mut reporter) {
                reporter.tell(&Report::Failed {
                    code: e.exit_code(),
                    message: e.to_string(),
                });
            }
            std::process::exit(0)
        }
        ForkResult::Parent { .. } => {
            drop(write);
            Ok(ReadyPipe::new(read))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_program_reports_on_its_stdout() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo ok"]);
        assert!(spawn(cmd).unwrap().wait_ready().is_ok());

        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo 'err 127 not found'"]);
        match spawn(cmd).unwrap().wait_ready() {
            Err(ReadyError::Run(e)) => {
                assert_eq!(e.exit_code(), 127);
                assert_eq!(e.to_string(), "not found");
            }
            other => panic!("{other:?}"),
        }

        let mut cmd = Command::new("/bin/true");
        cmd.arg("silent");
        assert!(matches!(
            spawn(cmd).unwrap().wait_ready(),
            Err(ReadyError::Gone)
        ));
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = spawn(Command::new("/nonexistent/berth")).unwrap_err();
        assert!(matches!(err, DetachError::Spawn { .. }), "{err:?}");
        assert_eq!(err.to_string(), "cannot spawn `/nonexistent/berth`");
    }
}
