//! The `berth` client library. It may depend on `berth-runtime` and `berth-config`, never on the
//! registry. Work in progress (issue #3): so far only image reference parsing.

#![deny(missing_docs)]

pub mod reference;

pub use reference::{Reference, ReferenceError};
