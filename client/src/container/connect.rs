//! `network connect` and `network disconnect`, with Docker's messages: one more user network
//! for a container, kept in its `state.json` across starts (`Requested`, Docker's container
//! configuration) and connected at once when it runs ([`crate::network::connect`]; the
//! address and interface go to `Connected`); a container that does not run gets it at its
//! next start, from its owner's prestart hook, which reads and records through
//! [`connected_networks`].
//!
//! May call [`super::state`] and [`crate::network`].

use std::path::Path;

use super::lock::Lock;
use super::state::{self, StateError, Status};
use crate::network::connect::{self, Connection};
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

/// The networks `network connect` added to the container in `dir`, as its owner reads them at
/// each start and on DNS misses and records those it connects ([`crate::network::Connected`]).
#[must_use]
pub fn connected_networks(dir: &Path) -> crate::network::Connected {
    std::sync::Arc::new(StateExtra(dir.to_owned()))
}

/// [`connect::Extra`] on the container's `state.json`.
struct StateExtra(std::path::PathBuf);

impl StateExtra {
    fn settings(&self) -> crate::network::Settings {
        state::load(&self.0)
            .ok()
            .and_then(|s| s.network)
            .unwrap_or_default()
    }
}

impl connect::Extra for StateExtra {
    fn connected(&self) -> Vec<Connection> {
        self.settings().connected
    }

    fn requested(&self) -> Vec<connect::Requested> {
        self.settings().requested
    }

    fn record(&self, conn: &Connection) -> Result<(), String> {
        state::update(&self.0, |s| {
            let n = s.network.get_or_insert_with(Default::default);
            n.connected.retain(|c| c.network_id != conn.network_id);
            n.connected.push(conn.clone());
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
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
        || current.connected.iter().any(|c| c.network_id == def.id)
        || current.requested.iter().any(|r| r.network_id == def.id);
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
    let requested = connect::Requested {
        network: def.name.clone(),
        network_id: def.id.clone(),
        aliases: aliases.to_vec(),
    };
    // Recorded first, under the container's lock. A container that runs has had its prestart
    // hook: it is connected here. One that does not gets it from its next start's hook (one
    // starting right now may have read its requests already, and gets it at the start after).
    let lock = Lock::take(&dir).map_err(StateError::from)?;
    let mut st = state::load(&dir)?;
    st.network
        .get_or_insert_with(Default::default)
        .requested
        .push(requested);
    state::save(&dir, &st, &lock)?;
    let running = st
        .init
        .filter(|i| st.status() == Status::Running && !st.restarting && i.alive());
    let Some(init) = running else {
        // Connected when it starts.
        return Ok(());
    };
    let hostname = fs_err::read_to_string(dir.join("hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let names = connect::container_names(&st.name, &hostname, &st.id);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let connected = st
        .network
        .as_ref()
        .map(|n| n.connected.clone())
        .unwrap_or_default();
    let n = connect::next_index(&connected);
    let result = connect::connect(&st.id, &names, aliases, init.pid, st.monitor, &def, n);
    let conn = match result {
        Ok(conn) => conn,
        Err(e) => {
            forget_request(&dir, &def.id, &lock);
            return Err(e.into());
        }
    };
    st = state::load(&dir)?;
    let n = st.network.get_or_insert_with(Default::default);
    n.connected.retain(|c| c.network_id != def.id);
    n.connected.push(conn);
    state::save(&dir, &st, &lock)?;
    Ok(())
}

/// `disconnect` from a network that was removed while the container asked for it (so its
/// start fails): the request goes; `missing` (no such network) when there is none.
fn forget_removed(
    data_root: &Path,
    network: &str,
    container: &str,
    missing: StoreError,
) -> Result<(), ConnectError> {
    let (dir, st) = state::find(data_root, container)?;
    let asked = st.network.as_ref().is_some_and(|n| {
        n.requested
            .iter()
            .any(|r| r.network == network || r.network_id == network)
    });
    if !asked {
        return Err(no_network(missing));
    }
    state::update(&dir, |s| {
        if let Some(n) = s.network.as_mut() {
            n.requested
                .retain(|r| r.network != network && r.network_id != network);
        }
    })?;
    Ok(())
}

/// Takes a request that could not be carried out back out of the state.
fn forget_request(dir: &Path, network_id: &str, lock: &Lock) {
    if let Ok(mut st) = state::load(dir) {
        if let Some(n) = st.network.as_mut() {
            n.requested.retain(|r| r.network_id != network_id);
        }
        let _ = state::save(dir, &st, lock);
    }
}

/// `network disconnect [-f] NETWORK CONTAINER`: the interface goes at once when it runs, and
/// the request goes (`-f` changes nothing).
///
/// # Errors
/// See [`ConnectError`].
pub fn disconnect(data_root: &Path, network: &str, container: &str) -> Result<(), ConnectError> {
    let def = match networks::find(data_root, network) {
        Ok(def) => def,
        Err(e) => return forget_removed(data_root, network, container, e),
    };
    let (dir, st) = state::find(data_root, container)?;
    let current = st.network.clone().unwrap_or_default();
    let conn = current.connected.iter().find(|c| c.network_id == def.id);
    let requested = current.requested.iter().any(|r| r.network_id == def.id);
    if conn.is_some() || requested {
        if let Some(conn) = conn {
            connect::disconnect(&st.id, &def, conn)?;
        }
        state::update(&dir, |s| {
            if let Some(n) = s.network.as_mut() {
                n.connected.retain(|c| c.network_id != def.id);
                n.requested.retain(|r| r.network_id != def.id);
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
