//! `network connect` and `network disconnect` of a running container, with Docker's messages:
//! one more user network while it runs ([`crate::network::connect`]), recorded in its
//! `state.json` (`NetworkSettings.Connected`).
//!
//! May call [`super::state`] and [`crate::network`].

use std::path::Path;

use super::state::{self, StateError, Status};
use crate::network::store::{self as networks, StoreError};

/// The store's message, as Docker's daemon words it.
fn no_network(e: StoreError) -> ConnectError {
    ConnectError::Network(e.to_string())
}

/// A container could not be connected or disconnected (Docker's messages).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No such network (the store's message).
    #[error("Error response from daemon: {0}")]
    Network(String),
    /// No such container, or its state cannot be written.
    #[error(transparent)]
    State(#[from] StateError),
    /// It is on that network already.
    #[error("Error response from daemon: endpoint with name {container} already exists in network {network}")]
    AlreadyConnected {
        /// The container's name.
        container: String,
        /// The network's name.
        network: String,
    },
    /// It shares the host's or another container's network namespace.
    #[error("Error response from daemon: container sharing network namespace with another container or host cannot be connected to any other network")]
    SharedNamespace,
    /// It has no network (`--network none`).
    #[error("Error response from daemon: container cannot be connected to multiple networks with one of the networks in private (none) mode")]
    NoNetwork,
    /// Berth adds user networks only.
    #[error("Error response from daemon: berth connects a container to one network, given to `run --network` or `create --network`; `{container}` is on `{current}`")]
    Predefined {
        /// The container's name.
        container: String,
        /// Its network.
        current: String,
    },
    /// It does not run.
    #[error(
        "Error response from daemon: berth connects running containers only; `{0}` is not running"
    )]
    NotRunning(String),
    /// It is not on that network.
    #[error(
        "Error response from daemon: container {container} is not connected to network {network}"
    )]
    NotConnected {
        /// The container's ID.
        container: String,
        /// The network's name.
        network: String,
    },
    /// Berth keeps a container's first network.
    #[error("Error response from daemon: berth cannot disconnect `{container}` from `{network}`, the network it was created with; remove and re-create the container on another network")]
    FirstNetwork {
        /// The container's name.
        container: String,
        /// The network's name.
        network: String,
    },
    /// The interface or the address could not be set up or taken back.
    #[error(transparent)]
    Interface(#[from] crate::network::connect::InterfaceError),
}

/// What the owner of the container in `dir` reads, at each restart and on DNS misses, for the
/// networks `network connect` added while it runs ([`crate::network::Connected`]).
#[must_use]
pub fn connected_networks(dir: &Path) -> crate::network::Connected {
    let dir = dir.to_owned();
    std::sync::Arc::new(move || {
        state::load(&dir)
            .ok()
            .and_then(|s| s.network)
            .map(|n| n.connected)
            .unwrap_or_default()
    })
}

/// `network connect [--alias A] NETWORK CONTAINER`.
///
/// # Errors
/// See [`ConnectError`].
pub fn connect(
    data_root: &Path,
    network: &str,
    container: &str,
    aliases: &[String],
) -> Result<(), ConnectError> {
    let def = networks::find(data_root, network).map_err(no_network)?;
    let (dir, st) = state::find(data_root, container)?;
    let current = st.network.clone().unwrap_or_default();
    let already = current.network_id.as_deref() == Some(def.id.as_str())
        || (def.is_predefined() && current.network_mode == def.name)
        || current.connected.iter().any(|c| c.network_id == def.id);
    if already {
        return Err(ConnectError::AlreadyConnected {
            container: st.name,
            network: def.name,
        });
    }
    if current.network_mode == "host" || current.network_mode.starts_with("container:") {
        return Err(ConnectError::SharedNamespace);
    }
    if current.network_mode == "none" {
        return Err(ConnectError::NoNetwork);
    }
    if def.is_predefined() {
        return Err(ConnectError::Predefined {
            container: st.name,
            current: current.network_mode,
        });
    }
    let init = st
        .init
        .filter(|i| st.status() == Status::Running && !st.restarting && i.alive())
        .ok_or_else(|| ConnectError::NotRunning(st.name.clone()))?;
    let hostname = fs_err::read_to_string(dir.join("hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let short = st.short_id().to_owned();
    let mut names = vec![st.name.as_str(), short.as_str()];
    if !hostname.is_empty() {
        names.insert(1, hostname.as_str());
    }
    let n = 1 + current.connected.len();
    let conn =
        crate::network::connect::connect(&st.id, &names, aliases, init.pid, st.monitor, &def, n)?;
    state::update(&dir, |s| {
        s.network
            .get_or_insert_with(Default::default)
            .connected
            .push(conn);
    })?;
    Ok(())
}

/// `network disconnect [-f] NETWORK CONTAINER` (`-f` changes nothing: the interface always
/// goes at once).
///
/// # Errors
/// See [`ConnectError`].
pub fn disconnect(data_root: &Path, network: &str, container: &str) -> Result<(), ConnectError> {
    let def = networks::find(data_root, network).map_err(no_network)?;
    let (dir, st) = state::find(data_root, container)?;
    let current = st.network.clone().unwrap_or_default();
    if let Some(conn) = current.connected.iter().find(|c| c.network_id == def.id) {
        crate::network::connect::disconnect(&st.id, &def, conn)?;
        state::update(&dir, |s| {
            if let Some(n) = s.network.as_mut() {
                n.connected.retain(|c| c.network_id != def.id);
            }
        })?;
        return Ok(());
    }
    let on_it =
        current.network_id.as_deref() == Some(def.id.as_str()) || current.network_mode == def.name;
    if !on_it {
        return Err(ConnectError::NotConnected {
            container: st.id,
            network: def.name,
        });
    }
    Err(ConnectError::FirstNetwork {
        container: st.name,
        network: def.name,
    })
}
