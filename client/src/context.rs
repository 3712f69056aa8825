//! What every command gets: the store, the daemon configuration and the printer.

use std::path::{Path, PathBuf};

use berth_config::DaemonConfig;

use crate::printer::Printer;
use crate::store::Store;

/// Default data root for root (`/var/lib/berth`); other users get `~/.local/share/berth`.
#[must_use]
pub fn default_data_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/lib/berth")
    } else if let Some(home) = std::env::var_os("HOME") {
        Path::new(&home).join(".local/share/berth")
    } else {
        PathBuf::from("/var/lib/berth")
    }
}

/// Shared state of one `berth` invocation.
pub struct Ctx {
    /// The local image store.
    pub store: Store,
    /// `daemon.json` settings.
    pub daemon: DaemonConfig,
    /// Output.
    pub printer: Printer,
}
