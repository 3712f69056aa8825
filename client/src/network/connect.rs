//! `network connect` and `network disconnect` of a running container: one more interface
//! (`eth1`, `eth2`, …) in its network namespace, on a user network's bridge, with an address
//! from that network's allocation file, under the container's names and `--alias`es so the
//! network's other containers resolve it through their embedded DNS server. No default route
//! goes through it (the container keeps its first network's).
//!
//! The allocation's owner is the container's owner process, so it lasts as long as the
//! container runs and goes with [`super::release`] when it exits for good. The interface goes
//! with the container's network namespace; a restart (`--restart`) connects it again with the
//! same address ([`reconnect`], from the owner's prestart hook), and the container's embedded
//! DNS server answers names on these networks too.
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
