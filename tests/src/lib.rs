//! Helpers shared by the end-to-end tests: build OCI images locally (no network), spawn
//! `berth-registry` and peer registries on free loopback ports, and check that peer tools exist.
//!
//! A missing prerequisite is a test failure with a message saying how to install it, never a
//! silent skip.
//!
//! Here: paths of the workspace and its binaries, `require`, free ports, `run`. By job, all
//! re-exported at the crate root: [`registry`] (berth-registry and distribution processes, blob
//! store checks), [`images`] (layers, busybox images, layouts), [`mod@http`] (requests, pushes),
//! [`peers`] (Docker tags and podman/buildah state of a test's own) and [`containers`] (the
//! container environment as root, cgroups, test addresses).

#![allow(clippy::missing_panics_doc)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Workspace root (parent of this crate).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Path of a workspace binary built by `cargo build` (debug unless `BERTH_PROFILE=release`).
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let profile = std::env::var("BERTH_PROFILE").unwrap_or_else(|_| "debug".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (tests/run does)",
        p.display()
    );
    p
}

/// Fails the test with an install hint when `tool` is not on PATH.
pub fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "required tool `{tool}` is missing; {hint} (tests/run installs it)"
    );
}

/// A free TCP port on 127.0.0.1.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sha256:<hex>` of bytes.
#[must_use]
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub mod containers;
pub mod http;
pub mod images;
pub mod peers;
pub mod registry;

pub use containers::*;
pub use http::*;
pub use images::*;
pub use peers::*;
pub use registry::*;
