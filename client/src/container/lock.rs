//! Exclusive `flock`s: one per container directory (guarding its `state.json`) and the names
//! lock beside `containers/`. Calls nothing else in the crate.

use std::path::{Path, PathBuf};

/// A lock file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file cannot be opened (the container is gone).
    #[error("cannot lock `{}`", path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `flock` failed.
    #[error("flock")]
    Flock(#[source] nix::errno::Errno),
}

/// An exclusive `flock` on a container's `lock` file, released on drop.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl Lock {
    /// Blocks until the container directory `dir` is ours.
    ///
    /// # Errors
    /// The lock file cannot be opened (the container is gone).
    pub fn take(dir: &Path) -> Result<Self, LockError> {
        Self::take_file(&dir.join("lock"))
    }

    /// Blocks until the lock file `path` (created if missing) is ours.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn take_file(path: &Path) -> Result<Self, LockError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| LockError::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut f = f;
        loop {
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
                Ok(l) => return Ok(Self(l)),
                Err((back, nix::errno::Errno::EINTR)) => f = back,
                Err((_, e)) => return Err(LockError::Flock(e)),
            }
        }
    }
}

/// The names lock (`<data-root>/containers.lock`, beside `containers/` so that directory holds
/// only containers): `run` and `rename` hold it from their uniqueness check until the name is
/// in `state.json`.
///
/// # Errors
/// The file cannot be created or locked.
pub fn lock_names(data_root: &Path) -> Result<Lock, LockError> {
    Lock::take_file(&data_root.join("containers.lock"))
}
