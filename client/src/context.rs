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

/// The data root's mode: only its owner may enter. Layers and container upper directories
/// hold files that images and containers made (setuid binaries among them), and container
/// configs and logs hold `-e` secrets: another local user who could reach them could run such
/// a binary as its owner, or read the secrets.
pub const DATA_ROOT_MODE: u32 = 0o700;

/// Creates the data root with [`DATA_ROOT_MODE`] (its parents as usual), or tightens an
/// existing one that is looser; returns the notice to print when it had to tighten it.
///
/// # Errors
/// The directory cannot be created, read or changed.
pub fn secure_data_root(root: &Path) -> anyhow::Result<Option<String>> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DATA_ROOT_MODE).create(root) {
        Ok(()) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot create the data root `{}`", root.display())))
        }
    }
    let mode = fs_err::metadata(root)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs_err::set_permissions(root, std::fs::Permissions::from_mode(DATA_ROOT_MODE))?;
    Ok(Some(format!(
        "the data root `{}` was open to other users (mode {mode:04o}); it is now {DATA_ROOT_MODE:04o}",
        root.display()
    )))
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
