//! A minimal rtnetlink client: just the requests bridge networking needs (create a bridge or a
//! veth pair, add an address or a default route, set a link up, delete a link, list a link's
//! IPv4 addresses), encoded by hand on a `NETLINK_ROUTE` socket from nix.
//!
//! Each request asks for an acknowledgement and waits for it, so a failure comes back as the
//! kernel's errno. A socket works in the network namespace of the thread that opened it
//! ([`Netlink::open`]); [`super::in_netns`] opens one inside a container's namespace.
//!
//! Message layout (`linux/netlink.h`, `linux/rtnetlink.h`): a 16-byte `nlmsghdr`, a fixed
//! family header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`), then attributes (`rtattr`: 16-bit length
//! and type, payload, padded to 4 bytes), nested ones holding attributes in their payload.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const NLMSG_HDRLEN: usize = 16;

/// One request being built: header, family header, attributes.
#[derive(Debug)]
pub struct Message {
    buf: Vec<u8>,
    /// Offsets of the open nested attributes.
    nests: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        Self {
            buf,
            nests: Vec::new(),
        }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.buf.extend_from_slice(&[AF_UNSPEC, 0]);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + payload.len()).expect("attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn begin_nest(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    fn end_nest(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("a nest is open");
        let len = u16::try_from(self.buf.len() - start).expect("nest under 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// The encoded request with sequence number `seq`.
    #[must_use]
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        debug_assert!(self.nests.is_empty());
        let len = u32::try_from(self.buf.len()).expect("message under 4 GiB");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// `ip link add NAME [address MAC] type bridge`.
#[must_use]
pub fn new_bridge(name: &str, mac: [u8; 6]) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.ifinfo(0, 0, 0)
        .attr_str(IFLA_IFNAME, name)
        .attr(IFLA_ADDRESS, &mac)
        .begin_nest(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, b"bridge")
        .end_nest();
    m
}

/// `ip link add HOST up master BRIDGE type veth peer name PEER netns PID`: the host end up in
/// the bridge, the peer created directly in the network namespace of process `pid` (and left
/// down: asking for it up here fails with `ENOTCONN` on recent kernels; [`set_up`] it there).
#[must_use]
pub fn new_veth(host: &str, bridge_index: u32, peer: &str, pid: u32) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.ifinfo(0, IFF_UP, IFF_UP)
        .attr_str(IFLA_IFNAME, host)
        .attr_u32(IFLA_MASTER, bridge_index)
        .begin_nest(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, b"veth")
        .begin_nest(IFLA_INFO_DATA)
        .begin_nest(VETH_INFO_PEER);
    // The peer's payload starts with its own `ifinfomsg`.
    m.ifinfo(0, 0, 0)
        .attr_str(IFLA_IFNAME, peer)
        .attr_u32(IFLA_NET_NS_PID, pid)
        .end_nest()
        .end_nest()
        .end_nest();
    m
}

/// `ip link set dev INDEX up`.
#[must_use]
pub fn set_up(index: u32) -> Message {
    let mut m = Message::new(RTM_NEWLINK, 0);
    m.ifinfo(index_i32(index), IFF_UP, IFF_UP);
    m
}

/// `ip link del NAME`.
#[must_use]
pub fn del_link(name: &str) -> Message {
    let mut m = Message::new(RTM_DELLINK, 0);
    m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
    m
}

/// `ip addr add ADDR/PREFIX broadcast + dev INDEX`.
#[must_use]
pub fn new_addr(index: u32, addr: Ipv4Addr, prefix: u8) -> Message {
    let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    m.buf
        .extend_from_slice(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
    m.buf.extend_from_slice(&index.to_ne_bytes());
    let host_mask = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
    let broadcast = Ipv4Addr::from(u32::from(addr) | host_mask);
    m.attr(IFA_LOCAL, &addr.octets())
        .attr(IFA_ADDRESS, &addr.octets())
        .attr(IFA_BROADCAST, &broadcast.octets());
    m
}

/// `ip route add default via GATEWAY dev INDEX`.
#[must_use]
pub fn new_default_route(index: u32, gateway: Ipv4Addr) -> Message {
    let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    m.buf.extend_from_slice(&[
        AF_INET,
        0, // dst_len: default
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    m.buf.extend_from_slice(&0u32.to_ne_bytes());
    m.attr(RTA_GATEWAY, &gateway.octets())
        .attr_u32(RTA_OIF, index);
    m
}

/// `ip -4 addr show`: every IPv4 address (filtered by the caller).
#[must_use]
pub fn dump_addrs() -> Message {
    let mut m = Message::new(RTM_GETADDR, NLM_F_DUMP);
    // A dump ends with NLMSG_DONE, no acknowledgement.
    let flags = NLM_F_REQUEST | NLM_F_DUMP;
    m.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    m.buf.extend_from_slice(&[AF_INET, 0, 0, 0]);
    m.buf.extend_from_slice(&0u32.to_ne_bytes());
    m
}

fn index_i32(index: u32) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// An IPv4 address on a link, from [`Netlink::addrs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddr {
    /// The link's index.
    pub index: u32,
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

/// A `NETLINK_ROUTE` socket in the network namespace of the thread that opened it.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Opens and binds a socket.
    ///
    /// # Errors
    /// `socket` or `bind` failed.
    pub fn open() -> Result<Self, Errno> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Self { fd, seq: 0 })
    }

    /// Sends `msg` and waits for the kernel's acknowledgement.
    ///
    /// # Errors
    /// The kernel's errno (`EEXIST`, `ENODEV`, …), or a socket failure.
    pub fn request(&mut self, msg: Message) -> Result<(), Errno> {
        let seq = self.send(msg)?;
        self.receive(seq, &mut |_, _| {})
    }

    /// Every IPv4 address of the namespace.
    ///
    /// # Errors
    /// A socket failure.
    pub fn addrs(&mut self) -> Result<Vec<LinkAddr>, Errno> {
        let seq = self.send(dump_addrs())?;
        let mut out = Vec::new();
        self.receive(seq, &mut |kind, payload| {
            if kind == RTM_NEWADDR {
                if let Some(a) = parse_addr(payload) {
                    out.push(a);
                }
            }
        })?;
        Ok(out)
    }

    fn send(&mut self, msg: Message) -> Result<u32, Errno> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = msg.finish(self.seq);
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::empty())?;
        Ok(self.seq)
    }

    /// Reads replies to `seq` until its acknowledgement (or the end of a dump), handing each
    /// other message's type and payload to `each`.
    fn receive(&mut self, seq: u32, each: &mut dyn FnMut(u16, &[u8])) -> Result<(), Errno> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut rest = &buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32_at(rest, 0) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(Errno::EBADMSG);
                }
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let msg_seq = u32_at(rest, 8);
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align(len).min(rest.len())..];
                if msg_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(
                            payload
                                .get(..4)
                                .ok_or(Errno::EBADMSG)?
                                .try_into()
                                .map_err(|_| Errno::EBADMSG)?,
                        );
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    NLMSG_DONE => return Ok(()),
                    // A dump ends with NLMSG_DONE, a lone reply with its acknowledgement.
                    _ => each(kind, payload),
                }
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// An `RTM_NEWADDR` payload: `ifaddrmsg` then attributes; `IFA_LOCAL` is the address.
fn parse_addr(payload: &[u8]) -> Option<LinkAddr> {
    if payload.len() < 8 || payload[0] != AF_INET {
        return None;
    }
    let prefix = payload[1];
    let index = u32_at(payload, 4);
    let mut attrs = &payload[8..];
    let mut local = None;
    let mut address = None;
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        if value.len() == 4 {
            let ip = Ipv4Addr::new(value[0], value[1], value[2], value[3]);
            match kind {
                IFA_LOCAL => local = Some(ip),
                IFA_ADDRESS => address = Some(ip),
                _ => {}
            }
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    Some(LinkAddr {
        index,
        addr: local.or(address)?,
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = b;
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            out.push((
                u16::from_ne_bytes([rest[2], rest[3]]),
                rest[4..len].to_vec(),
            ));
            rest = &rest[align(len)..];
        }
        out
    }

    #[test]
    fn veth_request_nests_the_peer_with_its_namespace() {
        let b = new_veth("vethabc", 7, "eth0", 4242).finish(9);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_NEWLINK);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        assert_eq!(u32_at(&b, 8), 9);
        // ifinfomsg: flags and change are IFF_UP.
        assert_eq!(u32_at(&b, 16 + 8), IFF_UP);
        assert_eq!(u32_at(&b, 16 + 12), IFF_UP);
        let top = attrs(&b[32..]);
        assert_eq!(top[0], (IFLA_IFNAME, b"vethabc\0".to_vec()));
        assert_eq!(top[1], (IFLA_MASTER, 7u32.to_ne_bytes().to_vec()));
        assert_eq!(top[2].0, IFLA_LINKINFO);
        let info = attrs(&top[2].1);
        assert_eq!(info[0], (IFLA_INFO_KIND, b"veth".to_vec()));
        let data = attrs(&info[1].1);
        assert_eq!(data[0].0, VETH_INFO_PEER);
        let peer = &data[0].1;
        assert_eq!(u32_at(peer, 8), 0);
        let peer_attrs = attrs(&peer[16..]);
        assert_eq!(peer_attrs[0], (IFLA_IFNAME, b"eth0\0".to_vec()));
        assert_eq!(
            peer_attrs[1],
            (IFLA_NET_NS_PID, 4242u32.to_ne_bytes().to_vec())
        );
    }

    #[test]
    fn address_request_has_the_broadcast() {
        let b = new_addr(3, Ipv4Addr::new(10, 87, 0, 5), 16).finish(1);
        assert_eq!(&b[16..20], &[AF_INET, 16, 0, RT_SCOPE_UNIVERSE]);
        assert_eq!(u32_at(&b, 20), 3);
        let a = attrs(&b[24..]);
        assert_eq!(a[0], (IFA_LOCAL, vec![10, 87, 0, 5]));
        assert_eq!(a[2], (IFA_BROADCAST, vec![10, 87, 255, 255]));
        // And it parses back.
        let parsed = parse_addr(&b[16..]).unwrap();
        assert_eq!(
            parsed,
            LinkAddr {
                index: 3,
                addr: Ipv4Addr::new(10, 87, 0, 5),
                prefix: 16
            }
        );
    }

    #[test]
    fn route_request_is_a_default_route_via_the_gateway() {
        let b = new_default_route(2, Ipv4Addr::new(10, 87, 0, 1)).finish(1);
        assert_eq!(b[16], AF_INET);
        assert_eq!(b[17], 0);
        assert_eq!(b[20], RT_TABLE_MAIN);
        let a = attrs(&b[28..]);
        assert_eq!(a[0], (RTA_GATEWAY, vec![10, 87, 0, 1]));
        assert_eq!(a[1], (RTA_OIF, 2u32.to_ne_bytes().to_vec()));
    }
}
