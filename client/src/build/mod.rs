//! `berth build`: Dockerfiles built daemonless with Berth's own runtime.
//!
//! - [`dockerfile`]: the language (lexer, parser, word expansion); pure.
//! - [`ignore`]: `.dockerignore` matching; pure.
//!
//! This module may call the store, the archive code (layers in, whiteouts out) and
//! `berth_runtime` (spec, overlay, run); never the registry protocol (base images are pulled by
//! `commands::build` before the build starts) and never the printer directly.

pub mod dockerfile;
pub mod ignore;
