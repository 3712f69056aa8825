//! Attaching to a container's standard streams without a daemon.
//!
//! The container's monitor listens on `<container dir>/attach.sock` ([`Hub`]); `run -i/-t`,
//! `start -a` and `attach` connect to it ([`attach`]). Frames are Docker's stdcopy layout, an
//! 8-byte header (stream byte, three zero bytes, big-endian `u32` length) and the payload:
//!
//! ```text
//! client -> monitor   HELLO flags (1: stdin, 2: stdout, 4: stderr, 8: close stdin at EOF)
//!                     STDIN bytes · CLOSE (stdin EOF) · RESIZE rows:u16 cols:u16
//! monitor -> client   STDOUT bytes · STDERR bytes · EXIT code:i32 (then the socket closes)
//! ```
//!
//! With a terminal everything the container writes is STDOUT. The socket is reached through
//! `/proc/self/fd/<dir>/attach.sock`, so deep data roots do not hit the 108-byte limit of Unix
//! socket paths.

use std::io::{Read, Write};
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context as _;

/// Client to monitor: which streams the client wants.
pub const HELLO: u8 = 5;
/// Client to monitor: input for the container.
pub const STDIN: u8 = 0;
/// Monitor to client: the container's standard output.
pub const STDOUT: u8 = 1;
/// Monitor to client: the container's standard error.
pub const STDERR: u8 = 2;
/// Client to monitor: end of input.
pub const CLOSE: u8 = 3;
/// Client to monitor: new terminal size.
pub const RESIZE: u8 = 4;
/// Monitor to client: the container exited with this code.
pub const EXIT: u8 = 0xFE;

/// HELLO flag: the client sends input.
pub const WANT_STDIN: u8 = 1;
/// HELLO flag: the client wants standard output.
pub const WANT_STDOUT: u8 = 2;
/// HELLO flag: the client wants standard error.
pub const WANT_STDERR: u8 = 4;
/// HELLO flag: the client's end of input closes the container's (`run -i`, `start -ai`).
pub const STDIN_ONCE: u8 = 8;

/// The socket's name in the container directory.
pub const SOCKET: &str = "attach.sock";

/// Writes one frame.
///
/// # Errors
/// The peer is gone.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(std::io::Error::other)?;
    let mut header = [0u8; 8];
    header[0] = kind;
    header[4..].copy_from_slice(&len.to_be_bytes());
    let mut buf = Vec::with_capacity(8 + payload.len());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Largest frame accepted (a peer cannot make the other allocate more).
const MAX_FRAME: usize = 1 << 20;

/// Reads one frame; `None` at a clean end of stream.
///
/// # Errors
/// A truncated or oversized frame.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "attach frame of {len} bytes"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

/// The container's attach socket cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The container's directory cannot be opened.
    #[error("cannot open `{}`", dir.display())]
    OpenDir {
        /// The container's directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Nothing listens on the socket.
    #[error("cannot attach to the container: its monitor is not listening")]
    NotListening(#[source] std::io::Error),
}

/// A path to `name` in `dir` that stays short: through an `O_PATH` descriptor of `dir`.
fn short_path(dir: &Path, name: &str) -> Result<(OwnedFd, PathBuf), ConnectError> {
    let fd: OwnedFd = fs_err::File::open(dir)
        .map(fs_err::File::into_parts)
        .map(|(f, _)| f.into())
        .map_err(|source| ConnectError::OpenDir {
            dir: dir.to_owned(),
            source,
        })?;
    let path = PathBuf::from(format!(
        "/proc/self/fd/{}/{name}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ));
    Ok((fd, path))
}

struct Client {
    stream: UnixStream,
    flags: u8,
}

/// The monitor's side: fans the container's output out to attached clients and feeds their
/// input to the container.
#[derive(Default)]
pub struct Hub {
    clients: Mutex<Vec<Client>>,
    joined: Condvar,
    /// Where input goes: the pty master or the write end of the stdin pipe.
    stdin: Mutex<Option<std::fs::File>>,
    /// The pty master, for RESIZE.
    pty: Mutex<Option<OwnedFd>>,
}

impl Hub {
    /// Listens on `<dir>/attach.sock` (replacing a stale one) and serves clients on
    /// background threads.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub fn listen(self: &Arc<Self>, dir: &Path) -> anyhow::Result<()> {
        let (_dirfd, path) = short_path(dir, SOCKET)?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on `{}`", dir.join(SOCKET).display()))?;
        let hub = Arc::clone(self);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hub = Arc::clone(&hub);
                std::thread::spawn(move || hub.serve(stream));
            }
        });
        Ok(())
    }

    /// Sets where client input goes (and the pty to resize, with a terminal).
    pub fn set_input(&self, stdin: Option<std::fs::File>, pty: Option<OwnedFd>) {
        *self
            .stdin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stdin;
        *self
            .pty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = pty;
    }

    /// Waits until a client has attached, at most `timeout`.
    pub fn wait_for_client(&self, timeout: Duration) -> bool {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (clients, _) = self
            .joined
            .wait_timeout_while(clients, timeout, |c| c.is_empty())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !clients.is_empty()
    }

    fn serve(&self, mut stream: UnixStream) {
        let Ok(Some((HELLO, flags))) = read_frame(&mut stream) else {
            return;
        };
        let flags = flags.first().copied().unwrap_or(0);
        let Ok(writer) = stream.try_clone() else {
            return;
        };
        // A client that stops reading must not stall the container's output for long.
        let _ = writer.set_write_timeout(Some(Duration::from_secs(5)));
        {
            let mut clients = self
                .clients
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            clients.push(Client {
                stream: writer,
                flags,
            });
            self.joined.notify_all();
        }
        while let Ok(Some((kind, payload))) = read_frame(&mut stream) {
            match kind {
                STDIN if flags & WANT_STDIN != 0 => {
                    let mut stdin = self
                        .stdin
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(f) = stdin.as_mut() {
                        if f.write_all(&payload).is_err() {
                            *stdin = None;
                        }
                    }
                }
                CLOSE if flags & STDIN_ONCE != 0 => {
                    let mut stdin = self
                        .stdin
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // With a terminal the master stays: closing it would hang up the container.
                    if self.pty.lock().map(|p| p.is_none()).unwrap_or(true) {
                        *stdin = None;
                    }
                }
                RESIZE if payload.len() == 4 => {
                    if let Some(pty) = self
                        .pty
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .as_ref()
                    {
                        let rows = u16::from_be_bytes([payload[0], payload[1]]);
                        let cols = u16::from_be_bytes([payload[2], payload[3]]);
                        crate::tty::set_size(pty.as_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends the container's output (`STDOUT` or `STDERR`) to the clients that want it;
    /// drops clients that are gone.
    pub fn broadcast(&self, kind: u8, data: &[u8]) {
        let want = if kind == STDERR {
            WANT_STDERR
        } else {
            WANT_STDOUT
        };
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .retain_mut(|c| c.flags & want == 0 || write_frame(&mut c.stream, kind, data).is_ok());
    }

    /// Tells every client the exit code and disconnects them.
    pub fn finish(&self, code: i32) {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in clients.iter_mut() {
            let _ = write_frame(&mut c.stream, EXIT, &code.to_be_bytes());
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        clients.clear();
    }
}

/// A reader that also sends what it reads to the hub's clients.
pub struct Tee<R> {
    /// The container's stream.
    pub inner: R,
    /// Where copies go.
    pub hub: Arc<Hub>,
    /// `STDOUT` or `STDERR`.
    pub kind: u8,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            // A pty master reports EIO once the last slave descriptor closed: end of output.
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => 0,
            other => other?,
        };
        if n > 0 {
            self.hub.broadcast(self.kind, &buf[..n]);
        }
        Ok(n)
    }
}

/// What a client attaches with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Forward our standard input.
    pub stdin: bool,
    /// Our input's end closes the container's.
    pub stdin_once: bool,
    /// The container has a terminal: put ours in raw mode, forward resizes, watch for the
    /// detach keys.
    pub tty: bool,
    /// The detach sequence.
    pub detach_keys: Vec<u8>,
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The monitor went away without saying (read the state).
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// Connects to the container's monitor.
///
/// # Errors
/// No monitor listens (the container is not running or has no stdio to attach to).
pub fn connect(dir: &Path) -> Result<UnixStream, ConnectError> {
    let (_dirfd, path) = short_path(dir, SOCKET)?;
    UnixStream::connect(&path).map_err(ConnectError::NotListening)
}

/// Connects, retrying while the monitor starts up (at most `timeout`).
///
/// # Errors
/// Still no monitor after `timeout`.
pub fn connect_retry(dir: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let start = std::time::Instant::now();
    loop {
        match connect(dir) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() >= timeout => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Sends HELLO for `opts`.
///
/// # Errors
/// The monitor is gone.
pub fn hello(stream: &mut UnixStream, opts: &Options) -> std::io::Result<()> {
    let mut flags = WANT_STDOUT | WANT_STDERR;
    if opts.stdin {
        flags |= WANT_STDIN;
    }
    if opts.stdin_once {
        flags |= STDIN_ONCE;
    }
    write_frame(stream, HELLO, &[flags])
}

/// Attaches our standard streams to the container over `stream` (HELLO already sent) until it
/// exits, the user detaches or the monitor goes away.
///
/// # Errors
/// Writing our own output failed.
pub fn attach(stream: UnixStream, opts: &Options) -> std::io::Result<Ended> {
    let stdin = std::io::stdin();
    let raw = if opts.tty && opts.stdin && crate::tty::is_tty(stdin.as_fd()) {
        crate::tty::RawMode::enter(stdin.as_fd()).ok()
    } else {
        None
    };
    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if opts.tty {
        if let Some((rows, cols)) = crate::tty::size(std::io::stdout().as_fd()) {
            let mut s = stream.try_clone()?;
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            let _ = write_frame(&mut s, RESIZE, &p);
        }
    }
    if opts.stdin {
        let mut out = stream.try_clone()?;
        let detached = Arc::clone(&detached);
        let mut keys = opts
            .tty
            .then(|| crate::tty::DetachKeys::new(opts.detach_keys.clone()));
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 8192];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = write_frame(&mut out, CLOSE, &[]);
                        return;
                    }
                    Ok(n) => n,
                };
                let (data, detach) = match keys.as_mut() {
                    Some(k) => k.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() && write_frame(&mut out, STDIN, &data).is_err() {
                    return;
                }
                if detach {
                    detached.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = out.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        });
    }
    let mut reader = std::io::BufReader::new(stream);
    let mut ended = Ended::Closed;
    loop {
        match read_frame(&mut reader) {
            Ok(Some((STDOUT, data))) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&data)?;
                out.flush()?;
            }
            Ok(Some((STDERR, data))) => {
                let mut err = std::io::stderr().lock();
                err.write_all(&data)?;
                err.flush()?;
            }
            Ok(Some((EXIT, code))) if code.len() == 4 => {
                ended = Ended::Exited(i32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    drop(raw);
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Ended::Detached);
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_frame(&mut buf, EXIT, &7i32.to_be_bytes()).unwrap();
        assert_eq!(&buf[..8], &[1, 0, 0, 0, 0, 0, 0, 5]);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, vec![0, 0, 0, 7])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let huge = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &huge[..]).is_err());
        // Truncated payload.
        assert!(read_frame(&mut &[1u8, 0, 0, 0, 0, 0, 0, 9, b'x'][..]).is_err());
    }

    #[test]
    fn hub_serves_output_and_input_over_the_socket() {
        let t = tempfile::tempdir().unwrap();
        let hub = Arc::new(Hub::default());
        hub.listen(t.path()).unwrap();
        let (pipe_r, pipe_w) = nix::unistd::pipe().unwrap();
        hub.set_input(Some(std::fs::File::from(pipe_w)), None);
        let mut s = connect(t.path()).unwrap();
        hello(
            &mut s,
            &Options {
                stdin: true,
                stdin_once: true,
                tty: false,
                detach_keys: vec![16, 17],
            },
        )
        .unwrap();
        assert!(hub.wait_for_client(Duration::from_secs(5)));
        hub.broadcast(STDOUT, b"out");
        hub.broadcast(STDERR, b"err");
        write_frame(&mut s, STDIN, b"typed").unwrap();
        write_frame(&mut s, CLOSE, &[]).unwrap();
        let mut input = String::new();
        std::fs::File::from(pipe_r)
            .read_to_string(&mut input)
            .unwrap();
        assert_eq!(input, "typed");
        hub.finish(3);
        let mut got = Vec::new();
        while let Some(f) = read_frame(&mut s).unwrap() {
            got.push(f);
        }
        assert_eq!(
            got,
            [
                (STDOUT, b"out".to_vec()),
                (STDERR, b"err".to_vec()),
                (EXIT, 3i32.to_be_bytes().to_vec())
            ]
        );
    }
}
