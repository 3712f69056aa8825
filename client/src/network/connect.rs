//! `network connect` and `network disconnect`: one more interface (`eth1`, `eth2`, …) in a
//! container's network namespace, on a user network's bridge, with an address from that
//! network's allocation file, under the container's names and `--alias`es so the network's
//! other containers resolve it through their embedded DNS server. No default route goes
//! through it (the container keeps its first network's).
//!
//! As in Docker, the request outlives a run ([`Requested`], kept by the container layer): a
//! container that does not run is connected when it starts, and one that runs is connected at
//! once. The allocation's owner is the container's owner process, so the address lasts as long
//! as the container runs and goes with [`super::release`] when it exits for good; the next
//! start takes a new one. A restart by `--restart` (same owner) connects the interface again
//! with the same address ([`reconnect`], from the owner's prestart hook). The container's
//! embedded DNS server answers names on these networks too. The container layer reads and
//! records all this through [`Extra`].
//!
//! May call [`super::store`], [`super::ipam`], [`crate::procfs`] and `berth_runtime::network`.

use std::net::Ipv4Addr;

use berth_runtime::network::{self as net, Endpoint};
use serde::{Deserialize, Serialize};

use super::store::Definition;
use crate::procfs::ProcessId;

/// A container could not be connected to a network, or taken off it.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// The network has no bridge (it is not a user network).
    #[error("the network {0} has no bridge")]
    NoBridge(String),
    /// The bridge or an address could not be had, or the allocation file written.
    #[error(transparent)]
    Allocation(anyhow::Error),
    /// The kernel refused the container's interface on `network`.
    #[error("cannot connect the container to the network {network}")]
    Connect {
        /// The network's name.
        network: String,
        /// The kernel's refusal.
        #[source]
        source: net::NetworkError,
    },
    /// The kernel refused to delete the interface.
    #[error(transparent)]
    Disconnect(net::NetworkError),
}

/// One network a running container was connected to after it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Connection {
    /// The network's name.
    pub network: String,
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `--alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The container's address on it.
    #[serde(rename = "IPAddress")]
    pub ip_address: Ipv4Addr,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
    /// The interface in the container (`eth1`, …).
    pub interface: String,
    /// The host end of its veth pair.
    pub host_interface: String,
}

/// A network `network connect` asked for, kept across the container's starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Requested {
    /// The network's name.
    pub network: String,
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `--alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl From<&Connection> for Requested {
    fn from(c: &Connection) -> Self {
        Self {
            network: c.network.clone(),
            network_id: c.network_id.clone(),
            aliases: c.aliases.clone(),
        }
    }
}

/// The networks `network connect` added to a container, as its owner reads and records them
/// (the container layer implements this: the network module does not touch container state).
pub trait Extra: Send + Sync {
    /// Those connected in the current run, with their addresses and interfaces.
    fn connected(&self) -> Vec<Connection>;
    /// Those asked for, connected or not.
    fn requested(&self) -> Vec<Requested>;
    /// Records `conn`, connected at a start.
    ///
    /// # Errors
    /// The record cannot be written (the container layer's message).
    fn record(&self, conn: &Connection) -> Result<(), String>;
}

/// The names a container is known by on the networks `network connect` adds: its name, its
/// hostname (when it has one) and its short ID.
#[must_use]
pub fn container_names(name: &str, hostname: &str, id: &str) -> Vec<String> {
    let short = &id[..12.min(id.len())];
    [name, hostname, short]
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The lowest extra interface number (`eth<n>`, from 1) none of `connected` uses.
#[must_use]
pub fn next_index(connected: &[Connection]) -> usize {
    (1..)
        .find(|n| {
            let name = format!("eth{n}");
            !connected.iter().any(|c| c.interface == name)
        })
        .unwrap_or(1)
}

/// The host end of a container's `n`th extra interface: `vn`, 12 hex digits of the ID and `n`
/// in hex (15 bytes, the kernel's limit, for `n` < 16).
#[must_use]
pub fn host_ifname(id: &str, n: usize) -> String {
    format!("vn{}{n:x}", &id[..12.min(id.len())])
}

/// Connects container `id` (named `names[0]`, also known by the other `names` and `aliases`),
/// whose init is `init_pid` and whose owner is `owner`, to the user network `def`, as its
/// `n`th extra interface.
///
/// # Errors
/// The bridge cannot be set up, no address is free, or the kernel refused the interface
/// (nothing stays allocated then).
pub fn connect(
    id: &str,
    names: &[&str],
    aliases: &[String],
    init_pid: i32,
    owner: Option<ProcessId>,
    def: &Definition,
    n: usize,
) -> Result<Connection, InterfaceError> {
    let file = def
        .ipam()
        .ok_or_else(|| InterfaceError::NoBridge(def.name.clone()))?;
    let (bridge, addr) = file
        .update(|ipam| {
            let bridge = super::ensure_user_bridge(def, ipam)?;
            let addr = ipam
                .allocate(bridge.subnet, id, owner, &ProcessId::alive)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no available IPv4 addresses on this network's address pools: {} ({})",
                        bridge.name,
                        bridge.subnet
                    )
                })?;
            let mut all: Vec<String> = names
                .iter()
                .map(|n| (*n).to_owned())
                .chain(aliases.iter().cloned())
                .map(|n| n.to_ascii_lowercase())
                .collect();
            all.dedup();
            if let Some(a) = ipam.allocations.get_mut(&addr) {
                a.names = all;
            }
            Ok((bridge, addr))
        })
        .map_err(InterfaceError::Allocation)?;
    let endpoint = Endpoint {
        host_ifname: host_ifname(id, n),
        bridge_index: bridge.index,
        addr,
        subnet: bridge.subnet,
        gateway: bridge.gateway,
        container_ifname: format!("eth{n}"),
        default_route: false,
    };
    if let Err(source) = net::connect(init_pid, &endpoint) {
        let _ = file.update(|ipam| Ok(ipam.release(id)));
        return Err(InterfaceError::Connect {
            network: def.name.clone(),
            source,
        });
    }
    Ok(Connection {
        network: def.name.clone(),
        network_id: def.id.clone(),
        aliases: aliases.to_vec(),
        ip_address: addr,
        ip_prefix_len: bridge.subnet.prefix,
        gateway: bridge.gateway,
        interface: endpoint.container_ifname,
        host_interface: endpoint.host_ifname,
    })
}

/// Connects the new init `pid` of a restarted container again as `conn` recorded it: the same
/// interface, address and host end (the address is still allocated to the owner).
///
/// # Errors
/// The network is gone, its bridge cannot be set up, or the kernel refused the interface.
pub fn reconnect(
    data_root: &std::path::Path,
    pid: i32,
    conn: &Connection,
) -> Result<(), InterfaceError> {
    let def = super::store::find(data_root, &conn.network_id)
        .map_err(|e| InterfaceError::Allocation(e.into()))?;
    let file = def
        .ipam()
        .ok_or_else(|| InterfaceError::NoBridge(def.name.clone()))?;
    let bridge = file
        .update(|ipam| super::ensure_user_bridge(&def, ipam))
        .map_err(InterfaceError::Allocation)?;
    let endpoint = Endpoint {
        host_ifname: conn.host_interface.clone(),
        bridge_index: bridge.index,
        addr: conn.ip_address,
        subnet: bridge.subnet,
        gateway: conn.gateway,
        container_ifname: conn.interface.clone(),
        default_route: false,
    };
    net::connect(pid, &endpoint).map_err(|source| InterfaceError::Connect {
        network: def.name.clone(),
        source,
    })
}

/// Takes container `id` off the network `def` it was connected to as `conn`: the interface
/// goes, and its address is free again.
///
/// # Errors
/// The kernel refused to delete the interface, or the allocation file cannot be written.
pub fn disconnect(id: &str, def: &Definition, conn: &Connection) -> Result<(), InterfaceError> {
    net::disconnect(&conn.host_interface).map_err(InterfaceError::Disconnect)?;
    if let Some(file) = def.ipam() {
        file.update(|ipam| Ok(ipam.release(id)))
            .map_err(InterfaceError::Allocation)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(network: &str, interface: &str) -> Connection {
        Connection {
            network: network.into(),
            network_id: format!("{network}-id"),
            aliases: vec!["a".into()],
            ip_address: Ipv4Addr::new(10, 0, 0, 2),
            ip_prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            interface: interface.into(),
            host_interface: "vnx".into(),
        }
    }

    #[test]
    fn interface_numbers_fill_the_first_gap() {
        assert_eq!(next_index(&[]), 1);
        assert_eq!(next_index(&[conn("a", "eth1"), conn("b", "eth2")]), 3);
        assert_eq!(next_index(&[conn("b", "eth2")]), 1);
        assert_eq!(next_index(&[conn("a", "eth1"), conn("c", "eth3")]), 2);
    }

    #[test]
    fn names_skip_an_empty_hostname() {
        let id = "0123456789abcdef0123";
        assert_eq!(
            container_names("web", "box", id),
            ["web", "box", "0123456789ab"]
        );
        assert_eq!(container_names("web", "", id), ["web", "0123456789ab"]);
    }

    #[test]
    fn an_exit_forgets_addresses_and_keeps_what_was_asked_for() {
        let mut s = crate::network::Settings {
            connected: vec![conn("more", "eth1")],
            requested: vec![Requested::from(&conn("more", "eth1"))],
            ..Default::default()
        };
        s.forget();
        assert!(s.connected.is_empty());
        assert_eq!(s.requested, [Requested::from(&conn("more", "eth1"))]);
        // A state written before requests were kept: what was connected is asked for.
        let mut old = crate::network::Settings {
            connected: vec![conn("more", "eth1")],
            ..Default::default()
        };
        old.forget();
        assert_eq!(old.requested.len(), 1);
        assert_eq!(old.requested[0].aliases, ["a"]);
    }
}
