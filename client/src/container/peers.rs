//! Other containers as the network plan sees them ([`crate::network::Peers`]): `--link NAME`
//! and `--network container:NAME` look them up through this, so `crate::network` never calls
//! the container layer.
//!
//! May call [`super::state`] and [`crate::network`] (the trait and its view).

use std::path::Path;

use super::state::{self, Status};
use crate::network::Peer;

/// The containers of a data root.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a>(pub &'a Path);

impl crate::network::Peers for Peers<'_> {
    fn find(&self, name: &str) -> anyhow::Result<Peer> {
        let (dir, state) = state::find(self.0, name)?;
        let running = state.status() == Status::Running;
        Ok(Peer {
            init_pid: state.init.filter(|_| running).map(|i| i.pid),
            running,
            network: state.network,
            id: state.id,
            name: state.name,
            dir,
        })
    }
}
