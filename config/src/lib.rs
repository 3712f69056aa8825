//! Typed configuration shared by the Berth binaries.
//!
//! This crate owns parsing and validation only; it performs no I/O beyond reading the file it is
//! given and the process environment. Every other crate may depend on it; it depends on none of
//! them.

#![deny(missing_docs)]

pub mod daemon;
pub mod registry;
pub mod registry_auth;
pub mod registry_limits;
pub mod registry_mirror;
pub mod registry_ops;

pub use daemon::{DaemonConfig, DaemonConfigError};
pub use registry::{RegistryConfig, RegistryConfigError};
