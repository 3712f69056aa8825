//! `port`: the published ports of a running container, from its `state.json` (none when it
//! does not run), all or those of one container port.
//!
//! May call [`super::state`] and [`crate::network`] (the mappings); the lines are the
//! command's.

use std::path::Path;

use super::state::{self, StateError, Status};

/// The ports could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The asked port is not a number (Docker's CLI wording).
    #[error("Error: invalid port ({0}): strconv.ParseUint: parsing \"{0}\": invalid syntax")]
    InvalidPort(String),
    /// Nothing publishes the asked port.
    #[error("Error: No public port '{port}' published for {container}")]
    NotPublished {
        /// The port as asked (`80`, `80/tcp`).
        port: String,
        /// The container as the user named it.
        container: String,
    },
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, PortError>;

/// Which ports (`port`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct PortOptions {
    /// The container's name or ID.
    pub container: String,
    /// `PRIVATE_PORT[/PROTO]`; none for every port.
    pub private_port: Option<String>,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The container's port, `80/tcp`.
    pub port: String,
    /// The host address, `0.0.0.0:8080` or `[::]:8080`.
    pub host: String,
}

/// The container's published ports, in `state.json`'s order.
///
/// # Errors
/// No such container; an invalid port; the port is not published.
pub fn port(data_root: &Path, opts: &PortOptions) -> Result<Vec<Mapping>> {
    let (_, state) = state::find(data_root, &opts.container)?;
    let mappings = match (&state.network, state.status()) {
        (Some(n), Status::Running) => crate::network::mappings(n),
        _ => Vec::new(),
    };
    let all = mappings.into_iter().map(|(port, ip, host_port)| Mapping {
        host: crate::network::join_host_port(&ip, &host_port),
        port,
    });
    let Some(want) = &opts.private_port else {
        return Ok(all.collect());
    };
    let (port, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    if port.parse::<u16>().is_err() {
        return Err(PortError::InvalidPort(port.to_owned()));
    }
    let key = format!("{port}/{proto}");
    let hits: Vec<Mapping> = all.filter(|m| m.port == key).collect();
    if hits.is_empty() {
        return Err(PortError::NotPublished {
            port: want.clone(),
            container: opts.container.clone(),
        });
    }
    Ok(hits)
}
