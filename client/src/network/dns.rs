//! The embedded DNS server of containers on user-defined networks: `127.0.0.11:53` (UDP and
//! TCP) inside the container's network namespace, as Docker's. It answers `A` queries for the
//! names of the containers on the same networks (name, `--network-alias`, `--hostname`, short
//! ID), from the networks' allocation files read on each query ([`super::ipam`]), and forwards
//! every other query, unchanged, to the upstream resolvers (`--dns`, else the host's).
//!
//! No daemon and no process of its own: the server is a thread of the process that owns the
//! container (the monitor, or the foreground `run`), like the published ports' proxies. The
//! thread enters the container's network namespace (`setns` affects only the calling thread),
//! binds there, and serves until the container's init exits (a pidfd polled beside the
//! sockets) or the owner stops it. Forwarded queries leave from the container's namespace, so
//! they follow its routes (none out of an `--internal` network: there they fail at once, and
//! the client gets `SERVFAIL`).
//!
//! Messages are handled by hand (RFC 1035 §4): only the header and the one question are
//! read; an answer is the question echoed with one `A` record; anything else goes upstream as
//! the raw packet. This is all the server needs, without an async DNS stack in every owner.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;

/// Where the server listens inside the container.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Docker's TTL for container names.
const TTL: u32 = 600;
/// How long one upstream may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Looks a name (lower case, no trailing dot) up among the containers of the networks.
pub type Lookup = Arc<dyn Fn(&str) -> Option<Ipv4Addr> + Send + Sync>;

/// What the server answers from and forwards to.
#[derive(Clone)]
pub struct Config {
    /// Container names.
    pub lookup: Lookup,
    /// Upstream resolvers, tried in order; none: forwarding is off (`--internal`).
    pub upstreams: Vec<SocketAddr>,
}

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct Server {
    stop: Arc<AtomicBool>,
    wake: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Closing the pipe's write end wakes the poll.
        self.wake.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the server in the network namespace of process `pid` (the container's init, whose
/// `lo` is up); returns once it listens.
///
/// # Errors
/// The namespace cannot be entered, or `127.0.0.11:53` cannot be bound there.
pub fn start(pid: i32, config: Config) -> io::Result<Server> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::other("bad PID"))?,
        rustix::process::PidfdFlags::empty(),
    )?;
    let (wake_r, wake_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            let bound = nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)
                .and_then(|()| {
                    let addr = SocketAddr::from((ADDRESS, 53));
                    Ok((UdpSocket::bind(addr)?, TcpListener::bind(addr)?))
                });
            match bound {
                Ok((udp, tcp)) => {
                    let _ = tx.send(Ok(()));
                    serve(&udp, &tcp, &pidfd, &wake_r, &stop2, &config);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(Server {
            stop,
            wake: Some(wake_w),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("the DNS server thread died")),
    }
}

fn serve(
    udp: &UdpSocket,
    tcp: &TcpListener,
    pidfd: &OwnedFd,
    wake: &OwnedFd,
    stop: &AtomicBool,
    config: &Config,
) {
    let _ = tcp.set_nonblocking(true);
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [
            PollFd::new(udp.as_fd(), PollFlags::POLLIN),
            PollFd::new(tcp.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        if ready(2) || ready(3) {
            // Init exited (its namespace must not outlive it because of us), or stop.
            return;
        }
        if ready(0) {
            if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let query = buf[..n].to_vec();
                match answer(&query, config) {
                    Reply::Local(msg) => {
                        let _ = udp.send_to(&msg, peer);
                    }
                    Reply::Forward => {
                        if let Ok(sock) = udp.try_clone() {
                            let config = config.clone();
                            // Threads made here stay in the container's namespace.
                            let _ = std::thread::Builder::new().spawn(move || {
                                let msg = forward_udp(&query, &config.upstreams)
                                    .unwrap_or_else(|| servfail(&query));
                                let _ = sock.send_to(&msg, peer);
                            });
                        }
                    }
                }
            }
        }
        if ready(1) {
            while let Ok((stream, _)) = tcp.accept() {
                let config = config.clone();
                let _ = std::thread::Builder::new().spawn(move || serve_tcp(stream, &config));
            }
        }
    }
}

fn serve_tcp(mut stream: TcpStream, config: &Config) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let Some(query) = read_tcp_message(&mut stream) else {
            return;
        };
        let msg = match answer(&query, config) {
            Reply::Local(m) => m,
            Reply::Forward => forward_tcp(&query, &config.upstreams)
                .or_else(|| forward_udp(&query, &config.upstreams))
                .unwrap_or_else(|| servfail(&query)),
        };
        if write_tcp_message(&mut stream, &msg).is_err() {
            return;
        }
    }
}

fn read_tcp_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).ok()?;
    Some(msg)
}

fn write_tcp_message(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::other("message too long"))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    stream.write_all(&out)
}

fn forward_udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = query.get(..2)?;
    for up in upstreams {
        let Ok(sock) = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))) else {
            continue;
        };
        let _ = sock.set_read_timeout(Some(UPSTREAM_TIMEOUT));
        if sock.connect(up).is_err() || sock.send(query).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        while let Ok(n) = sock.recv(&mut buf) {
            if n >= 12 && &buf[..2] == id {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

fn forward_tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let Ok(mut s) = TcpStream::connect_timeout(up, UPSTREAM_TIMEOUT) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(UPSTREAM_TIMEOUT));
        if write_tcp_message(&mut s, query).is_ok() {
            if let Some(m) = read_tcp_message(&mut s) {
                return Some(m);
            }
        }
    }
    None
}

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// Send this.
    Local(Vec<u8>),
    /// Send the query upstream.
    Forward,
}

/// The one question of a query: name (lower case, no trailing dot), type, class, and where
/// the question ends.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    end: usize,
}

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;

fn question(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 {
        return None;
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    let opcode = (msg[2] >> 3) & 0x0f;
    if qdcount != 1 || opcode != 0 || msg[2] & 0x80 != 0 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            // No compression in a question we answer.
            return None;
        }
        let label = msg.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(pos + 2)?, *msg.get(pos + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: pos + 4,
    })
}

/// The reply header and question for `query` with `rcode` and `ancount` answers to follow.
fn reply_head(query: &[u8], q_end: usize, rcode: u8, ancount: u16) -> Vec<u8> {
    let mut out = query[..q_end].to_vec();
    // QR, the query's opcode and RD; AA (we are the authority for container names); RA.
    out[2] = 0x80 | (query[2] & 0x79) | 0x04;
    out[3] = 0x80 | rcode;
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..8].copy_from_slice(&ancount.to_be_bytes());
    out[8..12].fill(0);
    out
}

fn answer(query: &[u8], config: &Config) -> Reply {
    let Some(q) = question(query) else {
        return if config.upstreams.is_empty() {
            Reply::Local(servfail(query))
        } else {
            Reply::Forward
        };
    };
    let found = if q.qclass == CLASS_IN {
        (config.lookup)(&q.name)
    } else {
        None
    };
    match found {
        Some(ip) if q.qtype == TYPE_A => {
            let mut out = reply_head(query, q.end, 0, 1);
            out.extend_from_slice(&[0xc0, 0x0c]);
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&ip.octets());
            Reply::Local(out)
        }
        // A container name has no other records (Docker: IPv6 off, an empty answer).
        Some(_) => Reply::Local(reply_head(query, q.end, 0, 0)),
        None if config.upstreams.is_empty() => Reply::Local(servfail(query)),
        None => Reply::Forward,
    }
}

/// `SERVFAIL` for `query` (its question echoed when it has one).
fn servfail(query: &[u8]) -> Vec<u8> {
    match question(query) {
        Some(q) => reply_head(query, q.end, 2, 0),
        None if query.len() >= 12 => {
            let mut out = query[..12].to_vec();
            out[2] = 0x80 | (query[2] & 0x79);
            out[3] = 0x80 | 2;
            out[4..12].fill(0);
            out
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE_AAAA: u16 = 28;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).unwrap());
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn config(upstreams: Vec<SocketAddr>) -> Config {
        Config {
            lookup: Arc::new(|n| (n == "web").then_some(Ipv4Addr::new(10, 90, 0, 2))),
            upstreams,
        }
    }

    #[test]
    fn container_names_are_answered_with_one_a_record() {
        let q = query(0x1234, "Web", TYPE_A);
        let Reply::Local(r) = answer(&q, &config(vec![])) else {
            panic!()
        };
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "QR");
        assert_eq!(r[2] & 0x01, 0x01, "RD echoed");
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 90, 0, 2]);
        assert_eq!(&r[12..q.len()], &q[12..]);
        // AAAA of a container: empty NOERROR.
        let Reply::Local(r) = answer(&query(7, "web", TYPE_AAAA), &config(vec![])) else {
            panic!()
        };
        assert_eq!((r[3] & 0x0f, r[7]), (0, 0));
    }

    #[test]
    fn other_names_go_upstream_or_fail_without_one() {
        let up = vec![SocketAddr::from(([192, 0, 2, 53], 53))];
        assert_eq!(
            answer(&query(1, "example.org", TYPE_A), &config(up)),
            Reply::Forward
        );
        let Reply::Local(r) = answer(&query(1, "example.org", TYPE_A), &config(vec![])) else {
            panic!()
        };
        assert_eq!(r[3] & 0x0f, 2, "SERVFAIL");
        assert_eq!(servfail(&[1, 2]), Vec::<u8>::new());
        assert_eq!(question(&[0; 5]), None);
    }

    #[test]
    fn udp_forwarding_relays_the_upstreams_answer() {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = upstream.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, peer) = upstream.recv_from(&mut buf).unwrap();
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80;
            upstream.send_to(&r, peer).unwrap();
        });
        let q = query(99, "example.org", TYPE_A);
        let r = forward_udp(&q, &[addr]).unwrap();
        assert_eq!(&r[..2], &q[..2]);
        t.join().unwrap();
    }
}
