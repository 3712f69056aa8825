//! Why a container could not run, and Docker's exit statuses for it: [`RunError`] for the
//! caller, [`InitError`] for the steps inside the container before `execve`.

use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::rootfs::RootfsError;
use crate::syscall::{Errno, SyscallError};

use super::PrestartError;

/// Docker's code when the runtime itself fails.
pub const EXIT_RUNTIME: i32 = 125;
/// Docker's code when the command cannot be invoked.
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// Docker's code when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The container's init failed before `execve`; `code` is Docker's exit status for it.
    #[error("{message}")]
    Start {
        /// 125, 126 or 127.
        code: i32,
        /// What init reported.
        message: String,
    },
    /// The spec asks for something this runtime does not do yet.
    #[error("unsupported spec: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// fork, pipe or wait failed.
    #[error("cannot start the container process")]
    Process(#[source] SyscallError),
    /// The container's cgroups could not be set up.
    #[error("cannot set up the container's cgroups")]
    Cgroup(#[source] CgroupError),
    /// `exec` into a container whose init is gone.
    #[error("container is not running (its process {pid} is gone)")]
    NotRunning {
        /// init's host PID as recorded.
        pid: i32,
    },
    /// The caller's prestart hook failed ([`run_with_prestart`]); its message says why.
    #[error("{0}")]
    Prestart(PrestartError),
}

impl RunError {
    /// Docker's exit status for this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Start { code, .. } => *code,
            _ => EXIT_RUNTIME,
        }
    }
}

/// Why init stopped before `execve`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Setting up the root file system failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A set-up call failed.
    #[error(transparent)]
    Syscall(#[from] SyscallError),
    /// The seccomp section cannot be compiled.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The working directory could not be created.
    #[error("cannot create the working directory `{}`", path.display())]
    Cwd {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec has no `process`.
    #[error("the spec has no process")]
    NoProcess,
    /// `--init` could not fork the command.
    #[error("cannot start the init process")]
    Init {
        /// The cause.
        #[source]
        errno: Errno,
    },
    /// A `linux.sysctl` key that is not a dotted name under `/proc/sys`.
    #[error("invalid sysctl key `{0}`")]
    Sysctl(String),
    /// A namespaced `linux.sysctl` key without that namespace of its own: it would change the
    /// host's value (runc's check and words).
    #[error("sysctl \"{key}\" is not allowed in the host's {namespace} namespace")]
    SysctlHostNamespace {
        /// The key.
        key: String,
        /// `ipc`, `network` or `uts`.
        namespace: &'static str,
    },
    /// `process.terminal` without a console socket to send the pty to.
    #[error("a terminal was requested but no console socket was given")]
    NoConsole,
    /// `exec`'s working directory does not exist in the container.
    #[error("chdir to cwd (\"{}\") set in config.json failed: no such file or directory", path.display())]
    ExecCwd {
        /// The directory.
        path: PathBuf,
    },
    /// An argument or variable contains a NUL byte.
    #[error("argument or environment variable contains a NUL byte")]
    Nul,
    /// Docker's wording for a bare name not found in `PATH`.
    #[error("exec: \"{name}\": executable file not found in $PATH")]
    NotFound {
        /// argv\[0\].
        name: String,
    },
    /// execve failed.
    #[error("exec: \"{}\": {}", path.display(), errno.desc().to_lowercase())]
    Exec {
        /// The resolved path.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
}

impl InitError {
    /// Docker's exit status for this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. }
            | Self::Exec {
                errno: Errno::ENOENT,
                ..
            } => EXIT_NOT_FOUND,
            Self::Exec { .. } | Self::ExecCwd { .. } => EXIT_CANNOT_INVOKE,
            _ => EXIT_RUNTIME,
        }
    }
}

/// Result of [`init`].
pub type InitResult<T> = std::result::Result<T, InitError>;
