//! Berth's container runtime library. Empty until the runtime issue (#4) lands; it exists so the
//! workspace has its fixed layout and `client` can depend on it.

#![deny(missing_docs)]
