//! The other containers a network plan looks at (`--link NAME`, `--network container:NAME`),
//! as the container layer shows them ([`Peers`]): this module never calls the container layer,
//! which calls it.
//!
//! May call nothing else of the crate.

use std::path::PathBuf;

use super::Settings;

/// Another container, as much of it as a network plan needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its directory (`hostname`, `hosts`, `resolv.conf`, `config.json`).
    pub dir: PathBuf,
    /// Whether it runs (Docker's `running`: restarting counts).
    pub running: bool,
    /// Its init's host PID while it runs.
    pub init_pid: Option<i32>,
    /// Its network settings.
    pub network: Option<Settings>,
}

/// Finds other containers by name or ID.
pub trait Peers {
    /// The container `name` (a name, ID or ID prefix).
    ///
    /// # Errors
    /// No such container (the container layer's error and message).
    fn find(&self, name: &str) -> anyhow::Result<Peer>;
}
