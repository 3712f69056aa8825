//! Bridge networking, kernel side: the host bridge with its address, IP forwarding and
//! iptables rules ([`setup_bridge`]), and one veth pair per container whose peer becomes the
//! container's `eth0` with an address and a default route via the bridge ([`connect`]).
//!
//! ```text
//! host netns                                   container netns (init's)
//!   berth0 (bridge, GATEWAY/PREFIX, up)
//!     └─ veth<id[..11]> (up) ─────── veth ───────  eth0 (ADDR/PREFIX, up)
//!                                                  default via GATEWAY
//! iptables filter: FORWARD -j BERTH-FORWARD        (accept from the bridge, replies to it)
//! iptables nat:    POSTROUTING -j BERTH-POSTROUTING (MASQUERADE SUBNET leaving elsewhere)
//! ```
//!
//! User-defined networks get a bridge each ([`setup_network_bridge`], `berth-…`) with chains
//! of their own, isolated from one another and from `berth0` ([`iptables`]).
//!
//! Links, addresses and routes go over rtnetlink from this process ([`netlink`]): no program is
//! spawned per container. iptables runs only when the bridge is set up, through the host's
//! `iptables-restore`/`iptables` (the same tools, and so the same backend, as Docker's). Our
//! rules live in our own chains, jumped to from the end of `FORWARD` and `POSTROUTING`: Docker's
//! `DOCKER*` chains, its rules and the `FORWARD` policy are never touched.
//!
//! Address management (which container gets which address) and serializing concurrent set-ups
//! are the caller's: this module only applies what it is given.

pub mod iptables;
pub mod netlink;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sched::CloneFlags;

pub use self::iptables::{iptables_rules, network_rules, remove_network_rules};
use self::netlink::Netlink;

/// Our `filter` chain, jumped to from `FORWARD`.
pub const FORWARD_CHAIN: &str = "BERTH-FORWARD";
/// Our `nat` chain, jumped to from `POSTROUTING`.
pub const POSTROUTING_CHAIN: &str = "BERTH-POSTROUTING";
/// The container's end of its veth pair.
pub const CONTAINER_IFNAME: &str = "eth0";

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An rtnetlink request failed.
    #[error("cannot {op} `{name}`")]
    Netlink {
        /// What was asked (`create bridge`, `add address to`, …).
        op: &'static str,
        /// The link.
        name: String,
        /// The kernel's answer.
        #[source]
        errno: Errno,
    },
    /// The container's network namespace could not be entered.
    #[error("cannot enter the network namespace of process {pid}")]
    Namespace {
        /// Init's host PID.
        pid: i32,
        /// The cause.
        #[source]
        errno: Errno,
    },
    /// iptables refused or could not run.
    #[error("cannot set up iptables rules: `{command}` failed: {stderr}")]
    Iptables {
        /// The command line.
        command: String,
        /// What it printed (or why it could not run).
        stderr: String,
    },
    /// A sysctl could not be written.
    #[error("cannot write `{}`", path.display())]
    Sysctl {
        /// The `/proc/sys` file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, NetworkError>;

fn nl<'a>(op: &'static str, name: &'a str) -> impl FnOnce(Errno) -> NetworkError + 'a {
    move |errno| NetworkError::Netlink {
        op,
        name: name.to_owned(),
        errno,
    }
}

/// An IPv4 subnet: the network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// Prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr/prefix`.
    #[must_use]
    pub fn of(addr: Ipv4Addr, prefix: u8) -> Self {
        Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// The first host address, the bridge's (Docker's convention: `.1`).
    #[must_use]
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The broadcast address.
    #[must_use]
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Whether `addr` is in the subnet.
    #[must_use]
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two subnets share an address.
    #[must_use]
    pub fn overlaps(self, other: Self) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.network) & m == u32::from(other.network) & m
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        Ok(Self::of(addr, prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// The IPv4 routes of the host's main table (`/proc/net/route`): destination subnet and
/// interface.
#[must_use]
pub fn host_routes() -> Vec<(Subnet, String)> {
    parse_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
}

/// Parses `/proc/net/route` (addresses in hex, in network byte order as stored).
fn parse_routes(text: &str) -> Vec<(Subnet, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let m = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the raw network-order word as a native integer.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u8::try_from(m.count_ones()).ok()?;
            // The default route (prefix 0) overlaps everything; it does not claim addresses.
            (prefix > 0).then(|| (Subnet::of(dest, prefix), f[0].to_owned()))
        })
        .collect()
}

/// The first of `candidates` that no route of another interface than `bridge` overlaps.
#[must_use]
pub fn pick_subnet(
    candidates: &[Subnet],
    routes: &[(Subnet, String)],
    bridge: &str,
) -> Option<Subnet> {
    candidates.iter().copied().find(|c| {
        !routes
            .iter()
            .any(|(r, dev)| dev != bridge && r.overlaps(*c))
    })
}

/// The index of link `name` when it exists and is up: the bridge needs no set-up then.
#[must_use]
pub fn link_up(name: &str) -> Option<u32> {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).ok()?;
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
    if flags & 1 == 0 {
        return None;
    }
    nix::net::if_::if_nametoindex(name).ok()
}

/// The IPv4 address (and prefix) of link `name`, when it exists and has one.
///
/// # Errors
/// The netlink dump failed.
pub fn link_addr(name: &str) -> Result<Option<(Ipv4Addr, u8)>> {
    let Ok(index) = nix::net::if_::if_nametoindex(name) else {
        return Ok(None);
    };
    let mut sock = Netlink::open().map_err(nl("open a netlink socket for", name))?;
    let addrs = sock.addrs().map_err(nl("list the addresses of", name))?;
    Ok(addrs
        .into_iter()
        .find(|a| a.index == index)
        .map(|a| (a.addr, a.prefix)))
}

/// Sets up bridge `name` with the first address of `subnet`, IP forwarding, our iptables
/// chains (MASQUERADE for `subnet`) and brings it up, last, so [`link_up`] means "ready".
/// Idempotent: what exists is kept. The caller serializes concurrent calls.
///
/// # Errors
/// A refused netlink request, iptables or sysctl failure.
pub fn setup_bridge(name: &str, subnet: Subnet) -> Result<u32> {
    let (mut sock, index) = create_bridge(name, subnet, subnet.gateway())?;
    iptables::setup_default(name, subnet)?;
    sock.request(netlink::set_up(index))
        .map_err(nl("bring up", name))?;
    Ok(index)
}

/// [`setup_bridge`] for a user-defined network, whose bridge has address `gateway`: its own
/// chains ([`iptables::network_rules`]: isolated from the other Berth bridges; with
/// `internal`, nothing in or out and no MASQUERADE).
///
/// # Errors
/// A refused netlink request, iptables or sysctl failure.
pub fn setup_network_bridge(
    name: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    internal: bool,
) -> Result<u32> {
    let (mut sock, index) = create_bridge(name, subnet, gateway)?;
    iptables::setup_network(name, subnet, internal)?;
    sock.request(netlink::set_up(index))
        .map_err(nl("bring up", name))?;
    Ok(index)
}

/// Reloads the default bridge's rules when it exists (they gained the isolation from user
/// networks; a bridge set up by an older Berth has the old ones until then).
///
/// # Errors
/// iptables failed.
pub fn refresh_default_rules(name: &str) -> Result<()> {
    match link_addr(name)? {
        Some((addr, prefix)) => iptables::setup_default(name, Subnet::of(addr, prefix)),
        None => Ok(()),
    }
}

/// Deletes a user network's bridge and its iptables chains; what is already gone is fine.
///
/// # Errors
/// A refused netlink request other than "no such device".
pub fn remove_network_bridge(name: &str) -> Result<()> {
    iptables::remove_network_rules(name);
    disconnect(name)
}

fn create_bridge(name: &str, subnet: Subnet, gateway: Ipv4Addr) -> Result<(Netlink, u32)> {
    let mut sock = Netlink::open().map_err(nl("open a netlink socket for", name))?;
    match sock.request(netlink::new_bridge(name, random_mac())) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(nl("create bridge", name)(e)),
    }
    let index = nix::net::if_::if_nametoindex(name).map_err(nl("find", name))?;
    match sock.request(netlink::new_addr(index, gateway, subnet.prefix)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(nl("add an address to", name)(e)),
    }
    enable_forwarding()?;
    Ok((sock, index))
}

/// A random locally administered unicast MAC, fixed at creation so the bridge's address does
/// not follow its ports'.
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id());
    for (i, b) in mac.iter_mut().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        {
            *b = (seed >> (i * 8) ^ seed >> (i * 8 + 48)) as u8;
        }
    }
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

fn enable_forwarding() -> Result<()> {
    let path = PathBuf::from("/proc/sys/net/ipv4/ip_forward");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|source| NetworkError::Sysctl { path, source })
}

/// Runs `f` on a thread in the network namespace of process `pid` (the rest of this process
/// stays where it is).
///
/// # Errors
/// The namespace cannot be opened or entered; else `f`'s result.
pub fn in_netns<T: Send>(pid: i32, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
        NetworkError::Namespace {
            pid,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        }
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|errno| NetworkError::Namespace { pid, errno })?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetworkError::Namespace {
                pid,
                errno: Errno::EINTR,
            })
        })
    })
}

/// What [`connect`] gives a container.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The host end of the veth pair (at most 15 bytes).
    pub host_ifname: String,
    /// The bridge's index.
    pub bridge_index: u32,
    /// The container's address.
    pub addr: Ipv4Addr,
    /// The bridge's subnet.
    pub subnet: Subnet,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
    /// The interface in the container (`eth0`, `eth1` for a network connected later).
    pub container_ifname: String,
    /// Whether the container's default route goes via the bridge (not on `--internal`
    /// networks, nor for a second network).
    pub default_route: bool,
}

/// Connects the network namespace of process `pid` to the bridge: a veth pair, the host end
/// up in the bridge, the peer up as `eth0` (or the endpoint's name) with the endpoint's
/// address and (unless told otherwise) a default route via the bridge's address, and `lo` up. A stale host end of the same name is replaced.
///
/// # Errors
/// A refused netlink request.
pub fn connect(pid: i32, ep: &Endpoint) -> Result<()> {
    let name = ep.host_ifname.as_str();
    let mut sock = Netlink::open().map_err(nl("open a netlink socket for", name))?;
    let pid_u32 = u32::try_from(pid).unwrap_or(0);
    let peer = ep.container_ifname.as_str();
    let veth = || netlink::new_veth(name, ep.bridge_index, peer, pid_u32);
    match sock.request(veth()) {
        Err(Errno::EEXIST) => {
            // A previous run's end, not yet gone with its namespace.
            let _ = disconnect(name);
            sock.request(veth()).map_err(nl("create veth", name))?;
        }
        other => other.map_err(nl("create veth", name))?,
    }
    let (addr, subnet, gateway) = (ep.addr, ep.subnet, ep.gateway);
    let default_route = ep.default_route;
    in_netns(pid, move || {
        let mut sock = Netlink::open().map_err(nl("open a netlink socket for", peer))?;
        let index = nix::net::if_::if_nametoindex(peer).map_err(nl("find", peer))?;
        sock.request(netlink::set_up(index))
            .map_err(nl("bring up", peer))?;
        sock.request(netlink::new_addr(index, addr, subnet.prefix))
            .map_err(nl("add an address to", peer))?;
        if default_route {
            sock.request(netlink::new_default_route(index, gateway))
                .map_err(nl("add the default route via", peer))?;
        }
        // `lo` up now rather than in init: the embedded DNS server binds 127.0.0.11 before the
        // container's program runs (init's own `lo` up finds it up).
        if let Ok(lo) = nix::net::if_::if_nametoindex("lo") {
            sock.request(netlink::set_up(lo))
                .map_err(nl("bring up", "lo"))?;
        }
        Ok(())
    })
}

/// Deletes the host end of a container's veth pair (the peer goes with it); nothing to do
/// when it is already gone. It also goes by itself, asynchronously, with the container's
/// network namespace; deleting takes the kernel 10-30 ms.
///
/// # Errors
/// A refused request other than "no such device".
pub fn disconnect(host_ifname: &str) -> Result<()> {
    let mut sock = Netlink::open().map_err(nl("open a netlink socket for", host_ifname))?;
    match sock.request(netlink::del_link(host_ifname)) {
        Ok(()) | Err(Errno::ENODEV) => Ok(()),
        Err(e) => Err(nl("delete", host_ifname)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_arithmetic() {
        let s = subnet("10.87.3.4/16");
        assert_eq!(s.to_string(), "10.87.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 87, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 87, 255, 255));
        assert!(s.contains(Ipv4Addr::new(10, 87, 200, 1)));
        assert!(!s.contains(Ipv4Addr::new(10, 88, 0, 1)));
        assert!(s.overlaps(subnet("10.0.0.0/8")));
        assert!(subnet("10.0.0.0/8").overlaps(s));
        assert!(!s.overlaps(subnet("172.17.0.0/16")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/16", "x/8", "10.0.0.0/31"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_read_from_proc_and_the_first_free_subnet_is_picked() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
wg0\t0000570A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
berth0\t0000560A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_routes(text);
        assert_eq!(
            routes,
            vec![
                (subnet("172.17.0.0/16"), "docker0".to_owned()),
                (subnet("192.0.2.0/24"), "eth0".to_owned()),
                (subnet("10.87.0.0/16"), "wg0".to_owned()),
                (subnet("10.86.0.0/16"), "berth0".to_owned()),
            ]
        );
        let candidates = [subnet("10.87.0.0/16"), subnet("10.86.0.0/16")];
        // 10.87 is taken by wg0; 10.86's route is the bridge's own.
        assert_eq!(
            pick_subnet(&candidates, &routes, "berth0"),
            Some(subnet("10.86.0.0/16"))
        );
        assert_eq!(pick_subnet(&candidates[..1], &routes, "berth0"), None);
    }

    #[test]
    fn random_macs_are_local_unicast() {
        let mac = random_mac();
        assert_eq!(mac[0] & 0x03, 0x02);
    }
}
