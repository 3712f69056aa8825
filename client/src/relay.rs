//! Relays the standard streams of a container process that has no terminal (`run` in the
//! foreground and `exec`, without `-t`): the process gets pipes, never the caller's own
//! descriptors, as with Docker. A container process holding the caller's terminal could push
//! input into the caller's shell (`TIOCSTI`) or read and change its settings; with pipes it has
//! nothing of the caller's but bytes.
//!
//! Owns the pipes and the copying threads; calls only `nix` and `berth_runtime::run::Stdio`.
//! What else the output should go to (a foreground container's log) comes in as a [`Sink`].

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use berth_runtime::run::Stdio;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// After the process exited, output still arriving is copied until the pipe has been idle this
/// long (a background child of an `exec`'d process may keep its end open for ever).
const DRAIN_IDLE: Duration = Duration::from_millis(250);

/// The pipes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A pipe could not be made.
    #[error("pipe2")]
    Pipe(#[source] nix::errno::Errno),
    /// `/dev/null` (stdin without `interactive`) cannot be opened.
    #[error(transparent)]
    DevNull(std::io::Error),
}

/// Where a copy of one output stream goes besides ours: every chunk as it is read, then the end.
pub trait Sink: Send {
    /// Bytes the process wrote.
    fn chunk(&mut self, bytes: &[u8]);
    /// The stream ended.
    fn end(&mut self);
}

/// The copying threads; [`Relay::finish`] once the process has exited.
pub struct Relay {
    exited: Arc<AtomicBool>,
    outputs: Vec<JoinHandle<()>>,
}

/// Pipes for the process's stdin (ours copied in with `interactive`, else `/dev/null`), stdout
/// and stderr (copied to ours, and to `sinks`' stdout and stderr when given). Returns the
/// process's ends, for [`Stdio`], and the relay.
///
/// # Errors
/// A pipe or `/dev/null` cannot be opened.
pub fn start(
    interactive: bool,
    sinks: Option<[Box<dyn Sink>; 2]>,
) -> Result<(Stdio, Relay), RelayError> {
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(RelayError::Pipe);
    let stdin: OwnedFd = if interactive {
        let (r, w) = pipe()?;
        std::thread::spawn(move || copy_stdin(w));
        r
    } else {
        fs_err::File::open("/dev/null")
            .map_err(RelayError::DevNull)?
            .into_parts()
            .0
            .into()
    };
    let exited = Arc::new(AtomicBool::new(false));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let [out_sink, err_sink] = match sinks {
        Some([o, e]) => [Some(o), Some(e)],
        None => [None, None],
    };
    let outputs = vec![
        spawn_output(out_r, false, exited.clone(), out_sink),
        spawn_output(err_r, true, exited.clone(), err_sink),
    ];
    let stdio = Stdio {
        stdin: Some(stdin),
        stdout: Some(out_w),
        stderr: Some(err_w),
        console: None,
    };
    Ok((stdio, Relay { exited, outputs }))
}

impl Relay {
    /// Copies what is left of the output, then returns.
    pub fn finish(self) {
        self.exited.store(true, Ordering::SeqCst);
        for t in self.outputs {
            let _ = t.join();
        }
    }
}

/// Our stdin into the process's; the pipe closes (EOF for the process) when ours ends. The
/// thread is left blocked in `read` when the process ends first; it dies with berth.
fn copy_stdin(w: OwnedFd) {
    let mut to = std::fs::File::from(w);
    let mut buf = [0u8; 8192];
    let mut stdin = std::io::stdin();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn spawn_output(
    r: OwnedFd,
    stderr: bool,
    exited: Arc<AtomicBool>,
    mut sink: Option<Box<dyn Sink>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        copy_output(&r, stderr, &exited, &mut sink);
        if let Some(s) = sink.as_mut() {
            s.end();
        }
    })
}

/// The process's output into ours (and `sink`) until EOF, or until the process has exited and
/// the pipe has been idle for [`DRAIN_IDLE`].
fn copy_output(r: &OwnedFd, stderr: bool, exited: &AtomicBool, sink: &mut Option<Box<dyn Sink>>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut idle = Duration::ZERO;
    let tick = Duration::from_millis(50);
    loop {
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u8)) {
            Ok(0) => {
                if exited.load(Ordering::SeqCst) {
                    idle += tick;
                    if idle >= DRAIN_IDLE {
                        return;
                    }
                }
                continue;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        idle = Duration::ZERO;
        let n = match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(r), &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        };
        if let Some(s) = sink.as_mut() {
            s.chunk(&buf[..n]);
        }
        let written = if stderr {
            let mut e = std::io::stderr().lock();
            e.write_all(&buf[..n]).and_then(|()| e.flush())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(&buf[..n]).and_then(|()| o.flush())
        };
        if written.is_err() {
            // Our side is gone (a closed pipe): keep draining so the process is not blocked.
            continue;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_ends_at_eof_and_after_idle() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let exited = Arc::new(AtomicBool::new(false));
        let t = spawn_output(r, false, exited.clone(), None);
        drop(w);
        t.join().unwrap();
        // A writer that never closes: the thread ends once `exited` is set and the pipe idles.
        let (r, _w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let relay = Relay {
            exited,
            outputs: vec![],
        };
        let t = spawn_output(r, false, relay.exited.clone(), None);
        relay.exited.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }
}
