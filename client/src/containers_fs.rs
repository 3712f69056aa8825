//! A container's file system from the host side, for `export`, `commit` and `cp`: its merged
//! root ([`MergedRoot`]: the running container's mount, or a private temporary overlay mount
//! undone on drop), and, in submodules, how it is used without ever reaching host files while
//! the container renames things (CVE-2018-15664): [`resolve`] looks container paths up inside a
//! handle of the root, [`tree`] writes tar streams of a tree walked by handles (optionally
//! turning overlay whiteouts into OCI `.wh.` entries), and [`extract`] writes a tar stream into
//! the container relative to handles. Nothing here opens a container path by its host path
//! string.
//!
//! May call [`crate::container`] (state, lock, rootfs markers), [`crate::store`] (layer paths)
//! and `berth_runtime` (the overlay mount).

pub mod extract;
pub mod resolve;
pub mod tree;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::{mount_overlay, RootfsError};
use berth_runtime::syscall::{LinuxSyscall, MntFlags, MsFlags, Syscall as _, SyscallError};

pub use self::extract::{extract_in_root, ExtractError};
pub use self::resolve::{ResolveError, RootDir};
pub use self::tree::{append_tree, append_tree_at};
use crate::container::{self, Lock, LockError, State, Status};
use crate::store::{Store, StoreError};

/// The container's root file system cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The container's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The container's image is no longer in the store.
    #[error("the image of container {container} is gone")]
    ImageGone {
        /// The container's name.
        container: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A layer's diff ID in the store's records is no digest.
    #[error(transparent)]
    Digest(#[from] oci_spec::OciSpecError),
    /// The temporary mount point cannot be made.
    #[error(transparent)]
    MountPoint(#[from] io::Error),
    /// The overlay mount failed.
    #[error("cannot mount the container's root file system")]
    Mount(#[source] RootfsError),
    /// The temporary mount cannot be made private.
    #[error("cannot make the mount private")]
    Private(#[source] SyscallError),
}

/// What the mount functions return.
pub type Result<T> = std::result::Result<T, MountError>;

/// The overlay lower directories of the container's image, top layer first.
///
/// # Errors
/// The image is gone from the store.
pub fn lowers(store: &Store, state: &State) -> Result<Vec<PathBuf>> {
    let image = store
        .image(&state.image)
        .map_err(|source| MountError::ImageGone {
            container: state.name.clone(),
            source,
        })?;
    image
        .layers
        .iter()
        .rev()
        .map(|l| Ok(store.layer_path(&l.diff_id.parse()?).join("fs")))
        .collect()
}

/// Mounts the container's root file system at `<dir>/rootfs` unless it is mounted already
/// (a container started again after it exited).
///
/// # Errors
/// Missing layers, or the mount fails.
pub fn ensure_rootfs(store: &Store, dir: &Path, state: &State) -> Result<()> {
    if container::rootfs_ready(dir) {
        return Ok(());
    }
    mount_overlay(
        &LinuxSyscall,
        &lowers(store, state)?,
        &dir.join("upper"),
        &dir.join("work"),
        &dir.join("rootfs"),
    )
    .map_err(MountError::Mount)
}

/// The container's merged root file system, usable while this value lives. Holds the
/// container's lock, so it is not removed or restarted meanwhile.
pub struct MergedRoot {
    path: PathBuf,
    temporary: bool,
    _lock: Lock,
}

impl MergedRoot {
    /// The running container's mounted `rootfs/`, or else a private overlay mount of its layers
    /// and `upper/` at a temporary mount point under the store's `tmp/`.
    ///
    /// # Errors
    /// Missing image layers, or the mount fails.
    pub fn open(store: &Store, dir: &Path, state: &State) -> Result<Self> {
        let lock = Lock::take(dir)?;
        let state = container::load(dir).unwrap_or_else(|_| state.clone());
        let copied = container::rootfs_copied(dir);
        if copied || (state.status() == Status::Running && container::rootfs_mounted(dir)) {
            return Ok(Self {
                path: dir.join("rootfs"),
                temporary: false,
                _lock: lock,
            });
        }
        let lowers = lowers(store, &state)?;
        let path = store
            .root()
            .join("tmp")
            .join(format!("mnt-{}", uuid::Uuid::new_v4().simple()));
        fs_err::create_dir_all(&path)?;
        if let Err(e) = mount_overlay(
            &LinuxSyscall,
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &path,
        ) {
            let _ = fs_err::remove_dir(&path);
            return Err(MountError::Mount(e));
        }
        let root = Self {
            path,
            temporary: true,
            _lock: lock,
        };
        // Keep the mount out of other mount namespaces.
        LinuxSyscall
            .mount(None, &root.path, None, MsFlags::MS_PRIVATE, None)
            .map_err(MountError::Private)?;
        Ok(root)
    }

    /// The root's path on the host.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MergedRoot {
    fn drop(&mut self) {
        if self.temporary
            && LinuxSyscall
                .umount2(&self.path, MntFlags::MNT_DETACH)
                .is_ok()
        {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Runs `produce` on a thread writing into a pipe and `consume` on the read end.
///
/// # Errors
/// Either side's error (the consumer's first); the pipe cannot be made, or the producer
/// panicked (`the tar writer panicked`, as an I/O error).
pub fn piped<E>(
    produce: impl FnOnce(&mut dyn Write) -> std::result::Result<(), E> + Send + 'static,
    consume: impl FnOnce(&mut dyn Read) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<io::Error> + Send + 'static,
{
    let (mut r, mut w) = io::pipe()?;
    let t = std::thread::spawn(move || produce(&mut w));
    let consumed = consume(&mut r);
    drop(r);
    let produced = t
        .join()
        .map_err(|_| io::Error::other("the tar writer panicked"))?;
    consumed.and(produced)
}
