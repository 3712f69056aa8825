//! The `berth` client library: the local image store, the registry protocol, and the
//! docker-style commands. It may depend on `berth-runtime` and `berth-config`, never on the
//! registry.

#![deny(missing_docs)]

pub mod cli;
pub mod format;
pub mod reference;
pub mod store;

pub use reference::{Reference, ReferenceError};
