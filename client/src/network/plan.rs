//! What `run`'s network flags ask for, checked and worked out before anything exists on disk:
//! the mode (`bridge`, `host`, `none`, a user network, `container:NAME`), published ports,
//! `--network-alias`, `--link`, `--dns*`, `--add-host`, and from them the container's
//! `/etc/hosts` and `/etc/resolv.conf` and the link environment ([`RunNetwork`]).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_runtime::spec::Network;

use super::peers::Peers;
use super::ports::{self, PortBinding};
use super::{store, Settings};

/// Docker's `/etc/hosts` for a container with its own network namespace (a bridge container's
/// address is added by [`super::attach`]).
pub const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// `run`'s network, worked out.
#[derive(Debug, Clone)]
pub struct RunNetwork {
    /// The runtime's mode (`container:NAME` is `None` plus [`Self::netns`]).
    pub mode: Network,
    /// What `state.json` records.
    pub settings: Settings,
    /// `container:NAME`: the network namespace to join.
    pub netns: Option<PathBuf>,
    /// `container:NAME`: that container's host name.
    pub hostname: Option<String>,
    /// `--link`'s environment (Docker's `ALIAS_PORT_*`, `ALIAS_NAME`, `ALIAS_ENV_*`).
    pub env: Vec<String>,
    /// The container's `/etc/hosts` (its own address is added once it has one).
    pub hosts: String,
    /// The container's `/etc/resolv.conf`.
    pub resolv_conf: String,
}

/// `run`'s network flags cannot be planned (Docker's messages).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A `-p` or `--expose` value.
    #[error(transparent)]
    Ports(#[from] super::ports::PortsError),
    /// A `--link`.
    #[error(transparent)]
    Link(#[from] super::links::LinkError),
    /// A `--dns` that is no IP address.
    #[error("invalid argument \"{0}\" for \"--dns\" flag: {0} is not an ip address")]
    Dns(String),
    /// An `--add-host` that is not `HOST:IP`.
    #[error("invalid argument \"{0}\" for \"--add-host\" flag: bad format for add-host: \"{0}\"")]
    AddHostFormat(String),
    /// An `--add-host` whose IP does not parse.
    #[error("invalid argument \"{raw}\" for \"--add-host\" flag: invalid IP address in add-host: \"{ip}\"")]
    AddHostIp {
        /// The flag's value.
        raw: String,
        /// Its IP part.
        ip: String,
    },
    /// `--network NAME` names no network.
    #[error("Error response from daemon: {0}")]
    Network(super::store::StoreError),
    /// `--ip` that is no IPv4 address.
    #[error("invalid IPv4 address: {0}")]
    Ip(String),
    /// `--ip` outside a user network.
    #[error("Error response from daemon: user specified IP address is supported on user defined networks only")]
    IpOutsideUserNetwork,
    /// `--ip` on a user network whose subnet was picked, not given.
    #[error("Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets")]
    IpWithoutUserSubnet,
    /// `--ip` outside the network's subnet, or one of its reserved addresses.
    #[error(
        "Error response from daemon: no configured subnet or ip-range contain the IP address {0}"
    )]
    IpOutsideSubnet(std::net::Ipv4Addr),
    /// `--network-alias` outside a user network.
    #[error("Error response from daemon: network-scoped alias is supported only for containers in user defined networks")]
    AliasOutsideUserNetwork,
    /// A flag that needs a network namespace of our own, with `--network container:NAME`.
    #[error("conflicting options: {0}")]
    Conflict(&'static str),
    /// The container of `--network container:NAME` cannot be found (the container layer's
    /// error).
    #[error(transparent)]
    Peer(anyhow::Error),
    /// The container of `--network container:NAME` does not run.
    #[error("Error response from daemon: cannot join network of a non running container: {0}")]
    PeerNotRunning(String),
    /// The files of the container of `--network container:NAME`.
    #[error(transparent)]
    PeerFiles(#[from] std::io::Error),
    /// `host-gateway`: the default bridge cannot be set up.
    #[error(transparent)]
    HostGateway(anyhow::Error),
}

/// The network flags of `run` (a view of the container layer's options, so this module
/// depends neither on it nor on clap).
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    /// `--network`/`--net`.
    pub network: &'a str,
    /// `-p`.
    pub publish: &'a [String],
    /// `-P`.
    pub publish_all: bool,
    /// `--expose`.
    pub expose: &'a [String],
    /// `-h`.
    pub hostname: Option<&'a str>,
    /// `--name` (for `--link`'s `ALIAS_NAME`).
    pub name: &'a str,
    /// `--network-alias`.
    pub aliases: &'a [String],
    /// `--ip`.
    pub ip: Option<&'a str>,
    /// `--link`.
    pub links: &'a [String],
    /// `--dns`.
    pub dns: &'a [String],
    /// `--dns-search`.
    pub dns_search: &'a [String],
    /// `--dns-option`.
    pub dns_options: &'a [String],
    /// `--add-host`.
    pub add_hosts: &'a [String],
}

/// `run`'s `--network`, `-p`, `-P`, `--expose` and the DNS, hosts and link flags.
/// Published ports need a bridge: with `host` they are dropped with Docker's warning, with
/// `none` silently, as Docker does.
///
/// # Errors
/// An unknown network; a malformed `-p`, `--expose`, `--dns`, `--add-host` or `--link`; flags
/// Docker refuses together (its messages).
pub fn settings_for_run(
    printer: &crate::printer::Printer,
    data_root: &Path,
    peers: &dyn Peers,
    flags: &Flags<'_>,
    image: &oci_spec::image::ImageConfiguration,
) -> Result<RunNetwork, PlanError> {
    let mut exposed: Vec<_> = image
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| ports::parse_exposed_key(k))
        .collect();
    for e in flags.expose {
        exposed.extend(ports::parse_expose(e)?);
    }
    let bindings = ports::bindings(flags.publish, flags.publish_all, &exposed)?;
    let mut exposed_ports: Vec<String> = exposed
        .iter()
        .map(|(port, proto)| format!("{port}/{proto}"))
        .chain(bindings.iter().map(PortBinding::key))
        .collect();
    exposed_ports.sort_by(|a, b| ports::natural_cmp(a, b));
    exposed_ports.dedup();
    for d in flags.dns {
        d.parse::<IpAddr>().map_err(|_| PlanError::Dns(d.clone()))?;
    }
    let extra_hosts = flags
        .add_hosts
        .iter()
        .map(|h| parse_add_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(other) = flags.network.strip_prefix("container:") {
        return container_mode(peers, flags, other);
    }
    let mut settings = Settings {
        network_mode: flags.network.to_owned(),
        dns: flags.dns.to_vec(),
        ..Settings::default()
    };
    let (mode, user) = match flags.network {
        "host" => {
            if !flags.publish.is_empty() {
                printer.warn("Published ports are discarded when using host network mode");
            }
            (Network::Host, None)
        }
        "none" => (Network::None, None),
        "bridge" | "default" => {
            settings.network_mode = "bridge".to_owned();
            settings.port_bindings = bindings;
            (Network::Bridge, None)
        }
        name => {
            let def = store::find(data_root, name).map_err(PlanError::Network)?;
            match def.driver.as_str() {
                "host" => (Network::Host, None),
                "null" => (Network::None, None),
                _ if def.is_predefined() => {
                    settings.port_bindings = bindings;
                    (Network::Bridge, None)
                }
                _ => {
                    settings.port_bindings = bindings;
                    settings.network_id = Some(def.id.clone());
                    settings.network_mode = def.name.clone();
                    (Network::Bridge, Some(def))
                }
            }
        }
    };
    if mode != Network::Bridge {
        exposed_ports.clear();
    }
    settings.exposed_ports = exposed_ports;
    if !flags.aliases.is_empty() {
        if user.is_none() {
            return Err(PlanError::AliasOutsideUserNetwork);
        }
        settings.aliases = flags.aliases.to_vec();
    }
    if let Some(ip) = flags.ip {
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| PlanError::Ip(ip.to_owned()))?;
        let def = user.as_ref().ok_or(PlanError::IpOutsideUserNetwork)?;
        if !def.user_subnet {
            return Err(PlanError::IpWithoutUserSubnet);
        }
        let subnet = def.subnet().ok_or(PlanError::IpOutsideSubnet(ip))?;
        let gateway = def.gateway.unwrap_or_else(|| subnet.gateway());
        let usable = subnet.contains(ip)
            && ip != subnet.network
            && ip != subnet.broadcast()
            && ip != gateway;
        if !usable {
            return Err(PlanError::IpOutsideSubnet(ip));
        }
        settings.ipv4_address = Some(ip);
    }
    let mut hosts = if mode == Network::Host {
        fs_err::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        HOSTS.to_owned()
    };
    for (host, ip) in &extra_hosts {
        let ip = match ip {
            Some(ip) => ip.to_string(),
            None => host_gateway()?.to_string(),
        };
        hosts.push_str(&format!("{ip}\t{host}\n"));
    }
    let mut env = Vec::new();
    for link in flags.links {
        let l = super::links::resolve(peers, link, flags.name)?;
        hosts.push_str(&l.hosts_line);
        // Docker sets the environment of links on the default bridge only.
        if user.is_none() {
            env.extend(l.env);
        }
        settings.links.push(l.record);
    }
    let resolv_conf = if mode == Network::Host
        && flags.dns.is_empty()
        && flags.dns_search.is_empty()
        && flags.dns_options.is_empty()
    {
        fs_err::read_to_string("/etc/resolv.conf").unwrap_or_default()
    } else {
        let host = if mode == Network::Host {
            fs_err::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            super::container_resolv_conf()
        };
        resolv_conf_for(
            &host,
            user.is_some(),
            flags.dns,
            flags.dns_search,
            flags.dns_options,
        )
    };
    Ok(RunNetwork {
        mode,
        settings,
        netns: None,
        hostname: None,
        env,
        hosts,
        resolv_conf,
    })
}

/// `--network container:NAME`: the other container's namespace, host name, hosts and
/// resolv.conf, with Docker's refusals of flags that would need a namespace of our own.
fn container_mode(
    peers: &dyn Peers,
    flags: &Flags<'_>,
    other: &str,
) -> Result<RunNetwork, PlanError> {
    let conflict = PlanError::Conflict;
    if flags.hostname.is_some() {
        return Err(conflict("hostname and the network mode"));
    }
    if !flags.publish.is_empty() || flags.publish_all {
        return Err(conflict(
            "port publishing and the container type network mode",
        ));
    }
    if !flags.expose.is_empty() {
        return Err(conflict(
            "port exposing and the container type network mode",
        ));
    }
    if !flags.dns.is_empty() || !flags.dns_search.is_empty() || !flags.dns_options.is_empty() {
        return Err(conflict("dns and the network mode"));
    }
    if !flags.add_hosts.is_empty() {
        return Err(conflict("custom host-to-IP mapping and the network mode"));
    }
    if !flags.links.is_empty() {
        return Err(conflict(
            "container type network can't be used with links. This would result in undefined \
             behavior",
        ));
    }
    if !flags.aliases.is_empty() {
        return Err(PlanError::AliasOutsideUserNetwork);
    }
    let state = peers.find(other).map_err(PlanError::Peer)?;
    let dir = &state.dir;
    let init = state.init_pid.filter(|_| state.running);
    let Some(init) = init else {
        return Err(PlanError::PeerNotRunning(other.to_owned()));
    };
    let hostname = fs_err::read_to_string(dir.join("hostname"))?
        .trim()
        .to_owned();
    Ok(RunNetwork {
        mode: Network::None,
        settings: Settings {
            network_mode: format!("container:{}", state.id),
            ..Settings::default()
        },
        netns: Some(PathBuf::from(format!("/proc/{init}/ns/net"))),
        hostname: Some(hostname),
        env: Vec::new(),
        hosts: fs_err::read_to_string(dir.join("hosts")).unwrap_or_else(|_| HOSTS.to_owned()),
        resolv_conf: fs_err::read_to_string(dir.join("resolv.conf")).unwrap_or_default(),
    })
}

/// `--add-host HOST:IP` (or `HOST=IP`); `None` for `host-gateway`.
///
/// # Errors
/// Docker's messages.
pub fn parse_add_host(raw: &str) -> Result<(String, Option<IpAddr>), PlanError> {
    let bad = || PlanError::AddHostFormat(raw.to_owned());
    let (host, ip) = raw
        .split_once('=')
        .or_else(|| raw.split_once(':'))
        .ok_or_else(bad)?;
    if host.trim().is_empty() || ip.is_empty() {
        return Err(bad());
    }
    if ip == "host-gateway" {
        return Ok((host.to_owned(), None));
    }
    let trimmed = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = trimmed.parse().map_err(|_| PlanError::AddHostIp {
        raw: raw.to_owned(),
        ip: ip.to_owned(),
    })?;
    Ok((host.to_owned(), Some(ip)))
}

/// `host-gateway`: the default bridge's address (as Docker's `docker0` one), the bridge set
/// up first when it is not.
fn host_gateway() -> Result<Ipv4Addr, PlanError> {
    super::ipam_file()
        .update(|ipam| {
            let (subnet, _) = super::ensure_bridge(ipam)?;
            Ok(subnet.gateway())
        })
        .map_err(PlanError::HostGateway)
}

/// The container's `resolv.conf`: from `host` (already filtered for a container:
/// [`super::resolv_conf`]), each of `--dns`, `--dns-search`, `--dns-option` replacing its
/// part when given; on a user network the nameserver is the embedded DNS server
/// (`127.0.0.11`, `options ndots:0`, as Docker), which forwards to the others.
#[must_use]
pub fn resolv_conf_for(
    host: &str,
    embedded: bool,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let field = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(key)).then(|| f.map(str::to_owned).collect::<Vec<_>>())
            })
            .flatten()
            .collect()
    };
    if !embedded && dns.is_empty() && search.is_empty() && options.is_empty() {
        return host.to_owned();
    }
    let nameservers = if embedded {
        vec![super::dns::ADDRESS.to_string()]
    } else if dns.is_empty() {
        field("nameserver")
    } else {
        dns.to_vec()
    };
    let search = if search.is_empty() {
        field("search")
    } else {
        search.iter().filter(|s| *s != ".").cloned().collect()
    };
    let mut options = if options.is_empty() {
        field("options")
    } else {
        options.to_vec()
    };
    if embedded && !options.iter().any(|o| o.starts_with("ndots:")) {
        options.insert(0, "ndots:0".to_owned());
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Upstream resolvers of a user-network container's embedded DNS server: `--dns`, else the
/// host's (loopback ones skipped, systemd-resolved's real upstreams read:
/// [`super::container_resolv_conf`]).
#[must_use]
pub fn upstreams(dns: &[String]) -> Vec<std::net::SocketAddr> {
    let servers: Vec<String> = if dns.is_empty() {
        super::container_resolv_conf()
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some("nameserver")).then(|| f.next().map(str::to_owned))?
            })
            .collect()
    } else {
        dns.to_vec()
    };
    servers
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_follows_docker() {
        assert_eq!(
            parse_add_host("db:10.0.0.5").unwrap(),
            ("db".into(), Some("10.0.0.5".parse().unwrap()))
        );
        assert_eq!(
            parse_add_host("db=10.0.0.5").unwrap(),
            ("db".into(), Some("10.0.0.5".parse().unwrap()))
        );
        assert_eq!(
            parse_add_host("v6:[::1]").unwrap().1,
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            parse_add_host("gw:host-gateway").unwrap(),
            ("gw".into(), None)
        );
        let e = parse_add_host("nocolon").unwrap_err().to_string();
        assert!(e.contains("bad format for add-host: \"nocolon\""), "{e}");
        let e = parse_add_host("db:nope").unwrap_err().to_string();
        assert!(
            e.contains("invalid IP address in add-host: \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn resolv_conf_flags_replace_their_part() {
        let host = "search lan\nnameserver 192.0.2.1\noptions edns0\n";
        assert_eq!(resolv_conf_for(host, false, &[], &[], &[]), host);
        assert_eq!(
            resolv_conf_for(host, false, &["198.51.100.1".into()], &[], &[]),
            "search lan\nnameserver 198.51.100.1\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf_for(
                host,
                false,
                &[],
                &["example.org".into()],
                &["ndots:2".into()]
            ),
            "search example.org\nnameserver 192.0.2.1\noptions ndots:2\n"
        );
        // User networks: the embedded server, whatever `--dns` says (it forwards there).
        assert_eq!(
            resolv_conf_for(host, true, &["198.51.100.1".into()], &[], &[]),
            "search lan\nnameserver 127.0.0.11\noptions ndots:0 edns0\n"
        );
    }

    #[test]
    fn upstreams_skip_loopback() {
        let got = upstreams(&["127.0.0.1".into(), "192.0.2.53".into(), "x".into()]);
        assert_eq!(got, vec!["192.0.2.53:53".parse().unwrap()]);
    }
}
