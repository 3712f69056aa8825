//! The `berth` client library: the local image store, the registry protocol, and the
//! docker-style commands. It may depend on `berth-runtime` and `berth-config`, never on the
//! registry.

#![deny(missing_docs)]

pub mod archive;
pub mod attach;
pub mod build;
pub mod cli;
pub mod commands;
pub mod container;
pub mod containers_fs;
pub mod context;
pub mod envfile;
pub mod filters;
pub mod format;
pub mod network;
pub mod printer;
pub mod procfs;
pub mod reaper;
pub mod reference;
pub mod relay;
pub mod remote;
pub mod sigproxy;
pub mod store;
pub mod timestamp;
pub mod tty;
pub mod volumes;

pub use reference::{Reference, ReferenceError};

/// The exit status a command asks for instead of 0/1: the container's own for `run`, or
/// Docker's 125/126/127. Attached as the outermost context of an error (then `main` prints the
/// rest of the chain) or returned alone (then nothing is printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Something the user can do about an error, shown as `hint:` lines under it.
pub trait Hint {
    /// The hint, if this error has one.
    fn hint(&self) -> Option<String>;
}

/// Hints from every error in `e`'s chain that has one.
#[must_use]
pub fn hints(e: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    for cause in e.chain() {
        if let Some(h) = cause
            .downcast_ref::<store::StoreError>()
            .and_then(Hint::hint)
        {
            out.push(h);
        }
        if let Some(h) = cause
            .downcast_ref::<remote::RemoteError>()
            .and_then(Hint::hint)
        {
            out.push(h);
        }
    }
    out
}

impl Hint for store::StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::UnsafeEntry { .. } => {
                Some("the image's layer is malformed or hostile; it was not unpacked".into())
            }
            Self::DigestMismatch { .. } => Some(
                "the content was corrupted in transit or at the source; nothing was stored".into(),
            ),
            Self::Lock { .. } => Some(
                "another `berth` holds the store lock, or the data root is not writable".into(),
            ),
            _ => None,
        }
    }
}
