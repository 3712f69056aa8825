//! Published ports: a userland proxy like Docker's `docker-proxy`, on threads of the process
//! that owns the container (the detached monitor, or the foreground `berth run`), so it lives
//! exactly as long as the container can be reached and needs no iptables rule per container.
//!
//! [`bind`] binds every host socket first, so a port in use fails the start with Docker's
//! `Bind for 0.0.0.0:8080 failed: port is already allocated` before anything runs; [`serve`]
//! then forwards: TCP connection by connection (one thread per direction), UDP datagram by
//! datagram with one upstream socket per client, dropped after [`UDP_IDLE`] without traffic.
//! A host address left out means `0.0.0.0` and, when the host has IPv6, `::` (IPv6-only socket),
//! as Docker does.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::ports::{PortBinding, Proto};

/// How long a UDP client's upstream socket lives without traffic (docker-proxy's).
pub const UDP_IDLE: Duration = Duration::from_secs(90);
/// How long connecting to the container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Random host ports tried before giving up when `::` has the port `0.0.0.0` got.
const RANDOM_TRIES: usize = 20;

/// Why a port could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The port is taken (Docker's wording).
    #[error("Bind for {addr} failed: port is already allocated")]
    InUse {
        /// Host address and port.
        addr: SocketAddr,
    },
    /// Any other failure to listen (Docker's wording).
    #[error("Error starting userland proxy: listen {net} {addr}: bind: {reason}")]
    Listen {
        /// `tcp4`, `udp6`, ...
        net: String,
        /// Host address and port.
        addr: SocketAddr,
        /// The system's message, lower case.
        reason: String,
    },
    /// `sctp` (Docker's userland proxy refuses it too).
    #[error("Error starting userland proxy: protocol not supported")]
    Protocol,
}

/// A bound host socket.
#[derive(Debug)]
enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// One published port: a host socket and where it forwards to.
#[derive(Debug)]
pub struct Published {
    /// The container's port and protocol.
    pub binding: PortBinding,
    /// The host address and port bound.
    pub host: SocketAddr,
    socket: Bound,
}

fn net_name(proto: Proto, addr: &SocketAddr) -> String {
    format!("{proto}{}", if addr.is_ipv4() { 4 } else { 6 })
}

fn bind_one(proto: Proto, addr: SocketAddr) -> Result<Bound, PublishError> {
    let fail = |e: io::Error| match e.kind() {
        io::ErrorKind::AddrInUse => PublishError::InUse { addr },
        _ => PublishError::Listen {
            net: net_name(proto, &addr),
            addr,
            reason: os_reason(&e),
        },
    };
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let ty = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
        Proto::Sctp => return Err(PublishError::Protocol),
    };
    let socket = Socket::new(domain, ty.cloexec(), None).map_err(fail)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(fail)?;
    }
    if proto == Proto::Tcp {
        socket.set_reuse_address(true).map_err(fail)?;
    }
    socket.bind(&addr.into()).map_err(fail)?;
    Ok(match proto {
        Proto::Tcp => {
            socket.listen(1024).map_err(fail)?;
            Bound::Tcp(socket.into())
        }
        _ => Bound::Udp(socket.into()),
    })
}

/// `cannot assign requested address`: the OS message without its `(os error N)`, lower case
/// as Go prints it.
fn os_reason(e: &io::Error) -> String {
    e.raw_os_error().map_or_else(
        || e.to_string(),
        |n| nix::errno::Errno::from_raw(n).desc().to_lowercase(),
    )
}

fn local_port(b: &Bound) -> u16 {
    match b {
        Bound::Tcp(l) => l.local_addr().map_or(0, |a| a.port()),
        Bound::Udp(s) => s.local_addr().map_or(0, |a| a.port()),
    }
}

/// Whether a failure to bind `::` only says the host has no IPv6 (then `0.0.0.0` is enough).
fn no_ipv6(e: &PublishError) -> bool {
    matches!(e, PublishError::Listen { addr, .. } if addr.is_ipv6())
}

/// Binds the host sockets of one binding on `port` (0: a free one), every address of `ips`;
/// all or nothing.
fn bind_all(
    b: &PortBinding,
    ips: &[IpAddr],
    mut port: u16,
) -> Result<Vec<Published>, PublishError> {
    let mut out: Vec<Published> = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let addr = SocketAddr::new(*ip, port);
        match bind_one(b.proto, addr) {
            Ok(socket) => {
                port = local_port(&socket);
                out.push(Published {
                    binding: b.clone(),
                    host: SocketAddr::new(*ip, port),
                    socket,
                });
            }
            // Only the implicit `::` may be missing.
            Err(e) if i > 0 && b.host_ip.is_none() && no_ipv6(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Binds the host sockets of every binding: nothing is forwarded until [`serve`].
///
/// # Errors
/// The first binding that cannot be bound (the sockets bound so far are closed).
pub fn bind(bindings: &[PortBinding]) -> Result<Vec<Published>, PublishError> {
    let mut out = Vec::new();
    for b in bindings {
        let ips = match b.host_ip {
            Some(ip) => vec![ip],
            None => vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ],
        };
        let (first, last) = b.host_ports;
        let bound = if first == 0 {
            // A free port for the first address; the others may have it taken: try again.
            let mut tries = 0;
            loop {
                match bind_all(b, &ips, 0) {
                    Err(PublishError::InUse { .. }) if tries < RANDOM_TRIES => tries += 1,
                    other => break other?,
                }
            }
        } else {
            // The first free port of the range.
            let mut result = Err(PublishError::InUse {
                addr: SocketAddr::new(ips[0], first),
            });
            for port in first..=last {
                result = bind_all(b, &ips, port);
                if !matches!(result, Err(PublishError::InUse { .. })) {
                    break;
                }
            }
            result?
        };
        out.extend(bound);
    }
    Ok(out)
}

/// Starts forwarding every published port to `container`'s address, on threads that run
/// until the process exits.
pub fn serve(published: Vec<Published>, container: Ipv4Addr) {
    for p in published {
        let target = SocketAddr::new(IpAddr::V4(container), p.binding.container_port);
        match p.socket {
            Bound::Tcp(listener) => {
                std::thread::spawn(move || serve_tcp(&listener, target));
            }
            Bound::Udp(socket) => {
                std::thread::spawn(move || serve_udp(socket, target));
            }
        }
    }
}

fn serve_tcp(listener: &TcpListener, target: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        std::thread::spawn(move || {
            // The container may not listen (yet): the client sees the connection close.
            if let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
                splice_tcp(client, upstream);
            }
        });
    }
}

/// Copies both ways until each side has sent everything, passing half-closes on.
fn splice_tcp(client: TcpStream, upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || copy_then_shutdown(upstream2, client2));
    copy_then_shutdown(client, upstream);
    let _ = back.join();
}

fn copy_then_shutdown(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn serve_udp(socket: UdpSocket, target: SocketAddr) {
    let socket = Arc::new(socket);
    let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let existing = clients.lock().ok().and_then(|m| m.get(&client).cloned());
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Ok(u) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                    continue;
                };
                if u.connect(target).is_err() || u.set_read_timeout(Some(UDP_IDLE)).is_err() {
                    continue;
                }
                let u = Arc::new(u);
                if let Ok(mut m) = clients.lock() {
                    m.insert(client, Arc::clone(&u));
                }
                let (u2, socket2, clients2) =
                    (Arc::clone(&u), Arc::clone(&socket), Arc::clone(&clients));
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65_535];
                    // Replies until the client has been quiet for UDP_IDLE.
                    while let Ok(n) = u2.recv(&mut buf) {
                        let _ = socket2.send_to(&buf[..n], client);
                    }
                    if let Ok(mut m) = clients2.lock() {
                        m.remove(&client);
                    }
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn binding(port: u16, proto: Proto, ip: &str, host: (u16, u16)) -> PortBinding {
        PortBinding {
            container_port: port,
            proto,
            host_ip: Some(ip.parse().unwrap()),
            host_ports: host,
        }
    }

    #[test]
    fn a_taken_port_is_reported_in_dockers_words() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind(&[binding(80, Proto::Tcp, "127.0.0.1", (port, port))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // A range skips it.
        let got = bind(&[binding(80, Proto::Tcp, "127.0.0.1", (port, port + 1))]);
        if let Ok(got) = got {
            assert_eq!(got[0].host.port(), port + 1);
        }
        let err = bind(&[binding(80, Proto::Tcp, "192.0.2.200", (0, 0))]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "Error starting userland proxy: listen tcp4 192.0.2.200:0: bind: cannot assign requested address"
            ),
            "{err}"
        );
        let err = bind(&[binding(80, Proto::Sctp, "127.0.0.1", (0, 0))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error starting userland proxy: protocol not supported"
        );
    }

    #[test]
    fn tcp_and_udp_are_forwarded_both_ways() {
        // A TCP echo server standing in for the container.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let server_port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for c in server.incoming() {
                let mut c = c.unwrap();
                let mut s = String::new();
                c.read_to_string(&mut s).unwrap();
                c.write_all(format!("echo:{s}").as_bytes()).unwrap();
            }
        });
        let udp_server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = udp_server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                let (n, from) = udp_server.recv_from(&mut buf).unwrap();
                udp_server.send_to(&buf[..n], from).unwrap();
            }
        });
        let published = bind(&[
            binding(server_port, Proto::Tcp, "127.0.0.1", (0, 0)),
            binding(udp_port, Proto::Udp, "127.0.0.1", (0, 0)),
        ])
        .unwrap();
        let (tcp_host, udp_host) = (published[0].host, published[1].host);
        assert_ne!(tcp_host.port(), 0);
        serve(published, Ipv4Addr::LOCALHOST);

        let mut c = TcpStream::connect(tcp_host).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "echo:hello");

        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        u.send_to(b"ping", udp_host).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, udp_host);
    }
}
