//! Berth's container runtime library: builds an OCI runtime spec from an image config
//! ([`spec`]), sets up the root file system ([`rootfs`]) and runs the container's process in its
//! own namespaces ([`run`]), runs more processes in them ([`exec`]), limited by its cgroups
//! ([`cgroups`]), connected to a bridge ([`network`]); [`detach`] runs work in a detached
//! process that reports back once it runs. Every system call goes through
//! [`syscall::Syscall`].
//!
//! It knows nothing of the image store: callers pass paths (layer directories, the bundle) and
//! an [`oci_spec::runtime::Spec`]. It may call `oci-spec`, `nix`, `caps`; never `berth-client`.

#![deny(missing_docs)]

pub use oci_spec;

pub mod cgroups;
pub mod cloned_binary;
pub mod console;
pub mod detach;
pub mod exec;
pub mod network;
pub mod rootfs;
pub mod rootfs_copy;
pub mod run;
pub mod seccomp;
pub mod spec;
pub mod syscall;
pub mod user;
