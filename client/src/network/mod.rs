//! Container networking as `berth run --network` and `-p`/`-P` ask: what is recorded in
//! `state.json` ([`Settings`]), and what the process owning a container does with it.
//!
//! With `bridge` (the default, as in Docker) the owner (the detached monitor, or the
//! foreground `berth run`) calls [`attach`] before the first start: it sets up the host bridge
//! `berth0` on first use ([`berth_runtime::network::setup_bridge`], under the allocation
//! file's lock so racing runs do it once), takes an address ([`ipam`]), binds the published
//! ports ([`proxy`]), records address and ports and writes the address into the container's
//! `/etc/hosts`. Each start then connects init's network namespace from the runtime's prestart
//! hook ([`Attachment::prestart`]: one veth pair over rtnetlink). The veth pair needs no
//! removal: its container end lives in the container's network namespace, which the kernel
//! destroys (with the pair) once the container's last process is gone; deleting it by hand
//! would only add 10-30 ms to every exit. A restart that finds the old host end still there
//! replaces it. The exit for good releases the address ([`release`], from the owner and from
//! `container::teardown`; implied when the owner dies) and [`Settings::forget`]s it.
//!
//! Other containers (`--link`, `--network container:NAME`) come through [`Peers`], which the
//! container layer implements: it calls this module, never the other way round.
//!
//! The subnet is the first of [`SUBNETS`] that no host route of another interface overlaps
//! (Docker's `docker0` has 172.17.0.0/16, podman's 10.88.0.0/16), chosen when the bridge is
//! first set up and kept while it exists.

pub mod connect;
pub mod dns;
pub mod ipam;
pub mod links;
pub mod peers;
pub mod plan;
pub mod ports;
pub mod proxy;
pub mod store;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::Context as _;
use berth_runtime::network::{self as net, Endpoint, Subnet};
use berth_runtime::run::PrestartError;
use serde::{Deserialize, Serialize};

use self::ipam::IpamFile;
pub use self::peers::{Peer, Peers};
pub use self::plan::{settings_for_run, Flags, RunNetwork, HOSTS};
use self::ports::PortBinding;
use crate::procfs::ProcessId;

/// The host bridge.
pub const BRIDGE: &str = "berth0";
/// Where per-host network state lives (tmpfs, like the bridge it describes).
pub const RUN_DIR: &str = "/run/berth/network";
/// Subnets the bridge may get, in order of preference.
pub const SUBNETS: &[&str] = &[
    "10.87.0.0/16",
    "10.86.0.0/16",
    "10.85.0.0/16",
    "10.84.0.0/16",
    "192.168.215.0/24",
];

/// One host address and port a container port is published on (Docker's
/// `NetworkSettings.Ports` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBinding {
    /// `0.0.0.0`, `::`, or the address asked for.
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    /// The port, as a string like Docker's.
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// A container's network, as recorded in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Settings {
    /// `bridge`, `none`, `host`, `container:ID` or a user network's name.
    pub network_mode: String,
    /// The user network's ID ([`store`]), when `network_mode` names one.
    #[serde(default, rename = "NetworkID", skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// `--network-alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--ip`: the address asked for on the user network, taken at every start (Docker's
    /// `IPAMConfig.IPv4Address`).
    #[serde(
        default,
        rename = "IPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<Ipv4Addr>,
    /// `--dns`: on a user network, where the embedded DNS server forwards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `--link`s, as Docker's `HostConfig.Links` (`/db:/web/db`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// What `-p`/`-P` asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_bindings: Vec<PortBinding>,
    /// The bridge, while attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The container's address, while attached.
    #[serde(default, rename = "IPAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<Ipv4Addr>,
    /// Its prefix length.
    #[serde(
        default,
        rename = "IPPrefixLen",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_prefix_len: Option<u8>,
    /// The bridge's address, the container's default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Published ports while attached: `80/tcp` -> host addresses and ports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, Vec<HostBinding>>,
    /// Ports the container exposes (the image's, `--expose`'s, `-p`'s), as `80/tcp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// Networks `network connect` added, connected in the current run ([`connect`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<connect::Connection>,
    /// Networks `network connect` asked for, kept across starts (Docker keeps them in the
    /// container's configuration); each start connects them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<connect::Requested>,
}

impl Settings {
    /// Whether the container gets a bridge endpoint (the default bridge or a user network).
    #[must_use]
    pub fn is_bridge(&self) -> bool {
        self.network_mode == "bridge" || self.network_id.is_some()
    }

    /// Forgets the addresses and ports once the container has exited for good (a stopped
    /// container has none, as in Docker); the networks asked for stay.
    pub fn forget(&mut self) {
        self.bridge = None;
        self.ip_address = None;
        self.ip_prefix_len = None;
        self.gateway = None;
        self.ports.clear();
        // A record from before `requested` existed: keep what was connected.
        for c in std::mem::take(&mut self.connected) {
            if !self.requested.iter().any(|r| r.network_id == c.network_id) {
                self.requested.push(connect::Requested::from(&c));
            }
        }
    }
}

/// The host end of a container's veth pair: `veth` and 11 hex digits of the ID (15 bytes, the
/// kernel's limit), so `rm` finds it without any other record.
#[must_use]
pub fn host_ifname(id: &str) -> String {
    format!("veth{}", &id[..11.min(id.len())])
}

pub(crate) fn ipam_file() -> IpamFile {
    IpamFile::new(Path::new(RUN_DIR), BRIDGE)
}

/// The bridge's subnet, setting the bridge up first when it is not: from the allocation
/// file, else the bridge's own address, else the first free one of [`SUBNETS`]. Called with
/// the allocation file locked.
pub(crate) fn ensure_bridge(ipam: &mut ipam::Ipam) -> anyhow::Result<(Subnet, u32)> {
    let recorded = ipam.subnet();
    if let (Some(subnet), Some(index)) = (recorded, net::link_up(BRIDGE)) {
        return Ok((subnet, index));
    }
    let subnet = match net::link_addr(BRIDGE)? {
        Some((addr, prefix)) => Subnet::of(addr, prefix),
        None => match recorded {
            Some(s) => s,
            None => {
                let candidates: Vec<Subnet> =
                    SUBNETS.iter().filter_map(|s| s.parse().ok()).collect();
                net::pick_subnet(&candidates, &net::host_routes(), BRIDGE).ok_or_else(|| {
                    anyhow::anyhow!(
                        "could not find an available, non-overlapping IPv4 address pool among \
                         the defaults to assign to the network"
                    )
                })?
            }
        },
    };
    if recorded != Some(subnet) {
        // Another subnet: the old allocations mean nothing on it.
        ipam.allocations.clear();
        ipam.last = None;
        ipam.subnet = Some(subnet.to_string());
    }
    let index = net::setup_bridge(BRIDGE, subnet)
        .with_context(|| format!("cannot set up the bridge `{BRIDGE}`"))?;
    Ok((subnet, index))
}

/// What the owner of a bridge container holds: its endpoint (the published ports are served
/// on threads until the process exits) and, on a user network, its embedded DNS server.
pub struct Attachment {
    /// Where the container connects.
    pub endpoint: Endpoint,
    /// On a user network: what the embedded DNS server answers from and forwards to.
    dns: Option<dns::Config>,
    /// The server of the current start (a restart replaces it).
    server: std::sync::Mutex<Option<dns::Server>>,
    /// The networks `network connect` added: connected at each start.
    connected: Option<Connected>,
    /// The data root, where those networks are defined.
    data_root: Option<std::path::PathBuf>,
    /// The container's ID, and the names other containers find it by on those networks.
    id: String,
    names: Vec<String>,
    /// This process, which owns the addresses.
    owner: Option<ProcessId>,
}

/// The networks `network connect` added to a container, as its owner reads and records them
/// ([`connect::Extra`], which the container layer implements).
pub type Connected = std::sync::Arc<dyn connect::Extra>;

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("endpoint", &self.endpoint)
            .field("dns", &self.dns.is_some())
            .finish_non_exhaustive()
    }
}

impl Attachment {
    /// The runtime's prestart hook: connects init's network namespace to the bridge and, on a
    /// user network, starts the embedded DNS server there (`127.0.0.11:53`) before the
    /// container's program runs.
    pub fn prestart(&self) -> impl FnMut(i32) -> Result<(), PrestartError> + '_ {
        move |pid| {
            let begun = std::time::Instant::now();
            net::connect(pid, &self.endpoint)
                .map_err(|e| PrestartError::from(format!("{:#}", anyhow::Error::new(e))))?;
            if let Some(config) = &self.dns {
                let mut server = self
                    .server
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // The previous start's, if any: its namespace is gone with its init.
                server.take();
                *server = Some(dns::start(pid, config.clone()).map_err(|e| {
                    PrestartError::from(format!(
                        "cannot start the embedded DNS server on {}:53: {e}",
                        dns::ADDRESS
                    ))
                })?);
            }
            if let (Some(extra), Some(data_root)) = (&self.connected, &self.data_root) {
                self.connect_extra(extra.as_ref(), data_root, pid)?;
            }
            let took_us = begun.elapsed().as_micros();
            tracing::debug!(pid, took_us, "network: connected");
            Ok(())
        }
    }
}

impl Attachment {
    /// The networks `network connect` added, in init `pid`'s namespace: those connected in this
    /// run come back with their addresses (a restart by the same owner, which still holds
    /// them); the others are connected as `network connect` does, and recorded.
    fn connect_extra(
        &self,
        extra: &dyn connect::Extra,
        data_root: &Path,
        pid: i32,
    ) -> Result<(), PrestartError> {
        let flat = |e: connect::InterfaceError| {
            PrestartError::from(format!("{:#}", anyhow::Error::new(e)))
        };
        let mut done = extra.connected();
        for conn in &done {
            connect::reconnect(data_root, pid, conn).map_err(flat)?;
        }
        for req in extra.requested() {
            if done.iter().any(|c| c.network_id == req.network_id) {
                continue;
            }
            let def = store::find(data_root, &req.network_id).map_err(|_| {
                PrestartError::from(format!(
                    "Error response from daemon: network {} not found",
                    req.network
                ))
            })?;
            let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
            let n = connect::next_index(&done);
            let conn = connect::connect(&self.id, &names, &req.aliases, pid, self.owner, &def, n)
                .map_err(flat)?;
            extra.record(&conn).map_err(PrestartError::from)?;
            done.push(conn);
        }
        Ok(())
    }
}

/// A network's bridge as [`attach`] needs it, set up first when it is not.
struct Bridge {
    name: String,
    index: u32,
    subnet: Subnet,
    gateway: Ipv4Addr,
    internal: bool,
}

/// Connects container `id` (directory `dir`, name `name`) as `settings` say, in the owner
/// process: for `bridge` or a user network, sets the bridge up if needed, allocates an
/// address (with the container's DNS names on a user network), binds and serves the published
/// ports, adds the address to `/etc/hosts` and fills in `settings` (address, ports) for the
/// caller to record in `state.json`. `None` for other modes. `connected` (from the container
/// layer) lists the networks `network connect` added while it runs: the prestart hook connects
/// them again on a restart, and the embedded DNS server answers their names. A build's RUN
/// container passes `None`.
///
/// # Errors
/// The network is gone; the bridge, an address or a port could not be had (nothing is left
/// allocated then).
pub fn attach(
    dir: &Path,
    id: &str,
    name: &str,
    settings: Option<&mut Settings>,
    connected: Option<Connected>,
) -> anyhow::Result<Option<Attachment>> {
    let Some(settings) = settings.filter(|s| s.is_bridge()) else {
        return Ok(None);
    };
    let begun = std::time::Instant::now();
    let owner = ProcessId::of(nix::unistd::getpid().as_raw());
    let user = match &settings.network_id {
        Some(net_id) => {
            // `<data-root>/containers/<id>`.
            let data_root = dir
                .parent()
                .and_then(Path::parent)
                .context("the container directory has no data root")?;
            let def = store::find(data_root, net_id).map_err(|_| {
                anyhow::anyhow!(
                    "Error response from daemon: network {} not found",
                    settings.network_mode
                )
            })?;
            Some(def)
        }
        None => None,
    };
    let hostname = fs_err::read_to_string(dir.join("hostname"))?
        .trim()
        .to_owned();
    let file = user
        .as_ref()
        .and_then(store::Definition::ipam)
        .unwrap_or_else(ipam_file);
    let (bridge, addr) = file.update(|ipam| {
        let bridge = match &user {
            None => {
                let (subnet, index) = ensure_bridge(ipam)?;
                Bridge {
                    name: BRIDGE.to_owned(),
                    index,
                    subnet,
                    gateway: subnet.gateway(),
                    internal: false,
                }
            }
            Some(def) => ensure_user_bridge(def, ipam)?,
        };
        let subnet = bridge.subnet;
        let addr = match settings.ipv4_address {
            Some(wanted) => ipam
                .allocate_at(subnet, wanted, id, owner, &ProcessId::alive)
                .ok_or_else(|| anyhow::anyhow!("Error response from daemon: Address already in use"))?,
            None => ipam
                .allocate(subnet, id, owner, &ProcessId::alive)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no available IPv4 addresses on this network's address pools: {} ({subnet})",
                        bridge.name
                    )
                })?,
        };
        if user.is_some() {
            let mut names: Vec<String> = [name, hostname.as_str(), &id[..12.min(id.len())]]
                .into_iter()
                .map(str::to_owned)
                .chain(settings.aliases.iter().cloned())
                .map(|n| n.to_ascii_lowercase())
                .collect();
            names.dedup();
            if let Some(a) = ipam.allocations.get_mut(&addr) {
                a.names = names;
            }
        }
        Ok((bridge, addr))
    })?;
    let published = match proxy::bind(&settings.port_bindings) {
        Ok(p) => p,
        Err(e) => {
            release(id);
            return Err(anyhow::anyhow!(
                "Error response from daemon: driver failed programming external connectivity \
                 on endpoint {name} ({id}): {e}"
            ));
        }
    };
    if let Err(e) = add_hosts_line(dir, addr) {
        release(id);
        return Err(e);
    }
    settings.bridge = Some(bridge.name.clone());
    settings.ip_address = Some(addr);
    settings.ip_prefix_len = Some(bridge.subnet.prefix);
    settings.gateway = Some(bridge.gateway);
    settings.ports.clear();
    for p in &published {
        settings
            .ports
            .entry(p.binding.key())
            .or_default()
            .push(HostBinding {
                host_ip: p.host.ip().to_string(),
                host_port: p.host.port().to_string(),
            });
    }
    proxy::serve(published, addr);
    // `<data-root>/containers/<id>`, for containers (a build's RUN has none).
    let data_root = dir.parent().and_then(Path::parent).map(Path::to_path_buf);
    let dns = user.as_ref().map(|_| {
        let table = file.clone();
        let (extra, root) = (connected.clone(), data_root.clone());
        dns::Config {
            // Names on the first network, then on those `network connect` added.
            lookup: std::sync::Arc::new(move |n: &str| {
                table.read().lookup(n, &ProcessId::alive).or_else(|| {
                    let (extra, root) = (extra.as_ref()?, root.as_ref()?);
                    extra.connected().iter().find_map(|c| {
                        let def = store::find(root, &c.network_id).ok()?;
                        def.ipam()?.read().lookup(n, &ProcessId::alive)
                    })
                })
            }),
            // An internal network has no way out: no forwarding (Docker's behaviour).
            upstreams: if bridge.internal {
                Vec::new()
            } else {
                plan::upstreams(&settings.dns)
            },
        }
    });
    tracing::debug!(%addr, took_us = begun.elapsed().as_micros(), "network: attached");
    Ok(Some(Attachment {
        endpoint: Endpoint {
            host_ifname: host_ifname(id),
            bridge_index: bridge.index,
            addr,
            subnet: bridge.subnet,
            gateway: bridge.gateway,
            container_ifname: net::CONTAINER_IFNAME.to_owned(),
            default_route: !bridge.internal,
        },
        dns,
        server: std::sync::Mutex::new(None),
        connected,
        data_root,
        id: id.to_owned(),
        names: connect::container_names(name, &hostname, id),
        owner,
    }))
}

/// A user network's bridge, set up again when it is not (after a reboot). Called with its
/// allocation file locked.
fn ensure_user_bridge(def: &store::Definition, ipam: &mut ipam::Ipam) -> anyhow::Result<Bridge> {
    let name = def.bridge.clone().context("the network has no bridge")?;
    let subnet = def.subnet().context("the network has no subnet")?;
    let gateway = def.gateway.unwrap_or_else(|| subnet.gateway());
    let index = match net::link_up(&name) {
        Some(index) => index,
        None => net::setup_network_bridge(&name, subnet, gateway, def.internal)
            .with_context(|| format!("cannot set up the bridge `{name}`"))?,
    };
    ipam.subnet = Some(subnet.to_string());
    ipam.reserved = Some(gateway);
    Ok(Bridge {
        name,
        index,
        subnet,
        gateway,
        internal: def.internal,
    })
}

/// Adds `ADDR\tHOSTNAME` to the container's `hosts` file, as Docker does.
fn add_hosts_line(dir: &Path, addr: Ipv4Addr) -> anyhow::Result<()> {
    let hostname = fs_err::read_to_string(dir.join("hostname"))?;
    let hosts = dir.join("hosts");
    let mut text = fs_err::read_to_string(&hosts)?;
    let line = format!("{addr}\t{}\n", hostname.trim());
    if !text.contains(&line) {
        text.push_str(&line);
        fs_err::write(&hosts, text)?;
    }
    Ok(())
}

/// Releases the addresses of container `id` on every network. Safe to call more than once,
/// and for containers that never had one.
pub fn release(id: &str) {
    let Ok(entries) = std::fs::read_dir(RUN_DIR) else {
        return;
    };
    let begun = std::time::Instant::now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(bridge) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| !n.starts_with('.'))
        else {
            continue;
        };
        let file = IpamFile::new(Path::new(RUN_DIR), bridge);
        // Read first: only files holding the container are locked and rewritten.
        if file.read().allocations.values().any(|a| a.container == id) {
            let _ = file.update(|ipam| Ok(ipam.release(id)));
        }
    }
    tracing::debug!(took_us = begun.elapsed().as_micros(), "network: released");
}

/// Writes the container's `hosts` and `resolv.conf` as `net` says.
///
/// # Errors
/// The file system.
pub fn write_etc_files(dir: &Path, net: &RunNetwork) -> std::io::Result<()> {
    fs_err::write(dir.join("hosts"), &net.hosts)?;
    fs_err::write(dir.join("resolv.conf"), &net.resolv_conf)?;
    Ok(())
}

/// `--network container:NAME`: the spec joins that container's network namespace.
///
/// # Errors
/// oci-spec refused the change.
pub fn join_netns(
    spec: &mut oci_spec::runtime::Spec,
    net: &RunNetwork,
) -> Result<(), oci_spec::OciSpecError> {
    use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType};
    let Some(path) = &net.netns else {
        return Ok(());
    };
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path(path.clone())
            .build()?,
    );
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
    Ok(())
}

/// The container's `/etc/resolv.conf` from the host's, as Docker makes it: a host using a
/// local resolver (systemd-resolved's `127.0.0.53`) gives its upstream file instead, loopback
/// nameservers are dropped (they cannot be reached from the container's namespace), and with
/// none left Google's public DNS is used.
#[must_use]
pub fn resolv_conf(host: &str, systemd_upstream: Option<&str>) -> String {
    let uses_stub = host
        .lines()
        .filter_map(nameserver)
        .any(|ns| ns == "127.0.0.53");
    let text = match systemd_upstream {
        Some(upstream) if uses_stub => upstream,
        _ => host,
    };
    let mut out: String = text
        .lines()
        .filter(|l| {
            nameserver(l).is_none_or(|ns| !ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    if !out.lines().any(|l| nameserver(l).is_some()) {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

fn nameserver(line: &str) -> Option<&str> {
    let mut f = line.split_whitespace();
    (f.next() == Some("nameserver")).then(|| f.next()).flatten()
}

/// `run`'s `resolv.conf` for a container with its own network namespace.
#[must_use]
pub fn container_resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    resolv_conf(&host, upstream.as_deref())
}

/// `berth port`'s and `ps`'s view: `(container port/proto, host address, host port)`.
#[must_use]
pub fn mappings(settings: &Settings) -> Vec<(String, String, String)> {
    settings
        .ports
        .iter()
        .flat_map(|(k, v)| {
            v.iter()
                .map(move |h| (k.clone(), h.host_ip.clone(), h.host_port.clone()))
        })
        .collect()
}

/// `ip:port`, with IPv6 addresses in brackets (Go's `net.JoinHostPort`).
#[must_use]
pub fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Docker's `ps` PORTS column (its `DisplayablePorts`): sorted by container port, address,
/// host port, protocol; exposed ports not published (`80/tcp`) and ports published on the
/// same number folded into ranges per address (`0.0.0.0:9000-9001->9000-9001/tcp`), the
/// others listed after them (`0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`).
#[must_use]
pub fn ps_ports(settings: &Settings) -> String {
    // (container port, address, host port, protocol)
    let mut v: Vec<(u16, String, u16, String)> = mappings(settings)
        .into_iter()
        .filter_map(|(key, ip, port)| {
            let (private, proto) = key.split_once('/')?;
            Some((
                private.parse().ok()?,
                ip,
                port.parse().ok()?,
                proto.to_owned(),
            ))
        })
        .collect();
    for key in &settings.exposed_ports {
        if let (false, Some((private, proto))) =
            (settings.ports.contains_key(key), key.split_once('/'))
        {
            if let Ok(private) = private.parse() {
                v.push((private, String::new(), 0, proto.to_owned()));
            }
        }
    }
    v.sort_by(|a, b| (a.0, &a.1, a.2, &a.3).cmp(&(b.0, &b.1, b.2, &b.3)));
    let group = |ip: &str, proto: &str, first: u16, last: u16| {
        let range = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        if ip.is_empty() {
            format!("{range}/{proto}")
        } else {
            format!("{}->{range}/{proto}", join_host_port(ip, &range))
        }
    };
    let mut groups: Vec<(String, String, u16, u16)> = Vec::new();
    let mut out = Vec::new();
    let mut others = Vec::new();
    for (private, ip, public, proto) in v {
        if !ip.is_empty() && public != private {
            others.push(format!(
                "{}->{private}/{proto}",
                join_host_port(&ip, &public.to_string())
            ));
            continue;
        }
        match groups.iter_mut().find(|g| g.0 == ip && g.1 == proto) {
            Some(g) if private == g.3 + 1 => g.3 = private,
            Some(g) => {
                out.push(group(&g.0, &g.1, g.2, g.3));
                (g.2, g.3) = (private, private);
            }
            None => groups.push((ip, proto, private, private)),
        }
    }
    out.extend(groups.iter().map(|g| group(&g.0, &g.1, g.2, g.3)));
    out.extend(others);
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_follows_docker() {
        let host = "search example.org\nnameserver 10.255.255.53\noptions ndots:1\n";
        assert_eq!(resolv_conf(host, None), host);
        // Loopback resolvers are dropped; with none left, Google's.
        let local = "nameserver 127.0.0.1\nnameserver ::1\nsearch lan\n";
        assert_eq!(
            resolv_conf(local, None),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let mixed = "nameserver 127.0.0.1\nnameserver 1.1.1.1\n";
        assert_eq!(resolv_conf(mixed, None), "nameserver 1.1.1.1\n");
        // systemd-resolved's stub: its upstream file.
        let stub = "nameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf(stub, Some("nameserver 192.0.2.53\n")),
            "nameserver 192.0.2.53\n"
        );
    }

    #[test]
    fn ports_column_and_host_port_join() {
        let mut s = Settings::default();
        s.ports.insert(
            "80/tcp".into(),
            vec![
                HostBinding {
                    host_ip: "0.0.0.0".into(),
                    host_port: "8080".into(),
                },
                HostBinding {
                    host_ip: "::".into(),
                    host_port: "8080".into(),
                },
            ],
        );
        s.ports.insert(
            "53/udp".into(),
            vec![HostBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "5353".into(),
            }],
        );
        assert_eq!(
            ps_ports(&s),
            "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        // Same-number ports fold into ranges, listed first.
        for port in ["9000", "9001", "9003"] {
            s.ports.insert(
                format!("{port}/tcp"),
                vec![HostBinding {
                    host_ip: "0.0.0.0".into(),
                    host_port: port.into(),
                }],
            );
        }
        assert_eq!(
            ps_ports(&s),
            "0.0.0.0:9000-9001->9000-9001/tcp, 0.0.0.0:9003->9003/tcp, \
             127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        // Exposed, not published: the bare port, consecutive ones as a range.
        s.exposed_ports = vec!["80/tcp".into(), "443/tcp".into(), "444/tcp".into()];
        // (Docker's order: a group is written out when a gap ends it, the open ones last.)
        assert_eq!(
            ps_ports(&s),
            "0.0.0.0:9000-9001->9000-9001/tcp, 443-444/tcp, 0.0.0.0:9003->9003/tcp, \
             127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(host_ifname(&"ab".repeat(32)), "vethabababababa");
    }
}
