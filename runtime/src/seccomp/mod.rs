//! Seccomp: moby's default profile for a container's capability set as the spec's
//! `linux.seccomp` ([`docker_profile`]), and that section compiled to BPF programs
//! ([`compile()`]) that init installs
//! ([`crate::syscall::Syscall::seccomp`]) before it drops its capabilities, as runc does when
//! `noNewPrivileges` is off (installing a filter then needs `CAP_SYS_ADMIN`).
//!
//! The profile is moby's `seccomp/default.json` (now in the `moby/profiles` repository,
//! formerly `moby/moby` `profiles/seccomp/`), evaluated the way moby's `setupSeccomp` does for
//! this architecture, the container's bounding capabilities and the host kernel: an allow-list,
//! everything else fails with `EPERM`; `socket` only for the address families moby allows
//! (not `AF_VSOCK`, `AF_ALG`, nor removed families); `personality` with the harmless personas;
//! `clone` without namespace flags and `clone3` failing with `ENOSYS` (so libcs fall back to
//! `clone`) unless `CAP_SYS_ADMIN`; `ptrace`-like calls (`pidfd_getfd`, `kcmp`, ...) only with
//! `CAP_SYS_PTRACE`; and so on per capability.
//!
//! A copy of moby's file is the test fixture `runtime/tests/fixtures/moby-seccomp-default.json`
//! (github.com/moby/profiles, `seccomp/default.json` at commit
//! `02e898b137aed1024e232d59bcb05e6179b72177`, 2026, date of the commit not recorded;
//! Apache-2.0, Copyright The Moby Authors); the unit tests evaluate it as moby does and compare
//! it with ours syscall by syscall (name, action, errno, arguments).
//!
//! Differences from Docker, all in the compiled filter, none in the section (runc or crun
//! running the same bundle apply moby's profile exactly):
//! - `seccompiler` checks one architecture per program: a 32-bit (`i386`) syscall in a
//!   container on x86_64 kills the process, and x32 syscalls fail with `EPERM`, where
//!   libseccomp applies the same rules to the `SCMP_ARCH_X86` and `SCMP_ARCH_X32` sub-arches.
//! - Rules whose action is neither `allow` nor the default (moby's `clone3` → `ENOSYS`) go
//!   into a second program; see [`compile()`].
//!
//! It may call `oci-spec`, `seccompiler` and `syscalls`; it is called by [`crate::spec`] (the
//! section) and [`crate::run`] (installing it).

mod compile;
mod profile;
#[cfg(test)]
mod tests;

pub use compile::compile;
pub use profile::{docker_default, docker_profile, KernelVersion};

/// Errors building or compiling a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// oci-spec refused a value.
    #[error("invalid seccomp section")]
    Oci(#[from] oci_spec::OciSpecError),
    /// The section asks for something this runtime cannot express.
    #[error("unsupported seccomp {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// seccompiler refused the rules.
    #[error("cannot compile the seccomp filter: {0:?}")]
    Compile(seccompiler::BackendError),
    /// The host kernel's version (for moby's `minKernel` conditions) cannot be read.
    #[error("cannot read the kernel version from {path}")]
    KernelVersion {
        /// The file read.
        path: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SeccompError>;

/// `EPERM`, Docker's answer to a syscall outside the profile.
const EPERM: u32 = 1;
/// `ENOSYS`, for `clone3`.
const ENOSYS: u32 = 38;
