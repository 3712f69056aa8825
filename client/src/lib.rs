//! The `berth` client library. Empty until the client issue (#3) lands; it exists so the workspace
//! has its fixed layout. It may depend on `berth-runtime` and `berth-config`, never on the registry.

#![deny(missing_docs)]
