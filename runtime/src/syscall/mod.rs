//! Every system call the runtime makes on behalf of a container goes through [`Syscall`], so the
//! container set-up steps (`rootfs`, `run`) can be unit-tested with [`FakeSyscall`], which records
//! its arguments and fails on request. [`LinuxSyscall`] is the real implementation (nix, `caps`).
//!
//! Process plumbing (`fork`, `waitpid`, pipes) is not part of the trait: it cannot be faked without
//! faking the process itself, and `run` keeps it in a few small functions tested end to end.

mod fake;
mod linux;

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

pub use caps::{CapSet, Capability as Cap, CapsHashSet};
pub use fake::{Call, FakeSyscall};
pub use linux::LinuxSyscall;
pub use nix::errno::Errno;
pub use nix::mount::{MntFlags, MsFlags};
pub use nix::sched::CloneFlags;
pub use nix::sys::resource::Resource;
pub use nix::sys::stat::{Mode, SFlag};

/// A failed system call.
#[derive(Debug, thiserror::Error)]
pub enum SyscallError {
    /// The kernel refused; `errno` says why.
    #[error("{op} {} failed", path.as_deref().map(Path::display).map(|d| format!("`{d}`")).unwrap_or_default())]
    Os {
        /// The call (`mount`, `pivot_root`, …).
        op: &'static str,
        /// The path it was about, if any.
        path: Option<PathBuf>,
        /// The kernel's answer.
        #[source]
        errno: Errno,
    },
    /// A capability call failed.
    #[error("{op} failed")]
    Caps {
        /// The call (`capset`, `PR_CAPBSET_DROP`).
        op: &'static str,
        /// The cause.
        #[source]
        source: caps::errors::CapsError,
    },
}

impl SyscallError {
    /// The errno, when the kernel gave one.
    #[must_use]
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Os { errno, .. } => Some(*errno),
            Self::Caps { .. } => None,
        }
    }
}

/// Result of a system call.
pub type Result<T> = std::result::Result<T, SyscallError>;

/// The system calls container set-up needs. Paths are absolute host paths (before `pivot_root`)
/// or container paths (after it).
pub trait Syscall {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> Result<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> Result<()>;
    /// Writes `value` to `/proc/sys/<key with dots as slashes>` (after `pivot_root`: the
    /// container's own `/proc`). The caller has checked the key (no `/`, no empty part).
    fn write_sysctl(&self, key: &str, value: &str) -> Result<()>;
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> Result<()>;
    /// mknod(2) followed by chmod(2), so the umask does not change `perm`.
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, major: u64, minor: u64) -> Result<()>;
    /// symlink(2): `link` points at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn set_no_new_privs(&self) -> Result<()>;
    /// setsid(2): a new session and process group, with no controlling terminal.
    fn setsid(&self) -> Result<()>;
    /// `prctl(PR_SET_KEEPCAPS, keep)`: keep the permitted set across the uid switch.
    fn set_keep_caps(&self, keep: bool) -> Result<()>;
    /// setgroups(2).
    fn setgroups(&self, gids: &[u32]) -> Result<()>;
    /// setresgid(2) with all three ids equal.
    fn setresgid(&self, gid: u32) -> Result<()>;
    /// setresuid(2) with all three ids equal.
    fn setresuid(&self, uid: u32) -> Result<()>;
    /// Drops every capability not in `keep` from the bounding set (`PR_CAPBSET_DROP`).
    fn drop_bounding_caps(&self, keep: &CapsHashSet) -> Result<()>;
    /// capset(2) for one set (effective, permitted, inheritable) or the ambient set.
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()>;
    /// getrlimit(2): (soft, hard).
    fn getrlimit(&self, resource: Resource) -> Result<(u64, u64)>;
    /// setrlimit(2).
    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> Result<()>;
    /// Marks every open descriptor `>= from` close-on-exec.
    fn set_cloexec_from(&self, from: i32) -> Result<()>;
    /// Brings the loopback interface up (a fresh network namespace starts with it down).
    fn loopback_up(&self) -> Result<()>;
    /// Gives the process a terminal like runc's console socket: opens a new pty in the
    /// container's `/dev/ptmx`, makes its slave (owned by `uid`:`gid`) the controlling terminal
    /// of the process's session (made by [`Syscall::setsid`] first) and descriptors 0, 1 and 2, and sends the master over the Unix socket
    /// `socket` (`SCM_RIGHTS`), so the host side can drive it.
    fn setup_console(&self, socket: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<()>;
    /// setns(2): joins the namespace open at `fd`.
    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> Result<()>;
    /// seccomp(2) `SECCOMP_SET_MODE_FILTER`: installs `program` on the calling thread (without
    /// `no_new_privs` this needs `CAP_SYS_ADMIN`).
    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<()>;
    /// execve(2); only returns on failure.
    fn execve(&self, path: &Path, argv: &[CString], envp: &[CString]) -> Result<Infallible>;
}

/// `errno` as an [`SyscallError::Os`].
pub(crate) fn os_err(op: &'static str, path: Option<&Path>, errno: Errno) -> SyscallError {
    SyscallError::Os {
        op,
        path: path.map(Path::to_owned),
        errno,
    }
}
