//! `<dir>/create.json`: the Docker `Config` values `run` was given that the OCI spec cannot tell
//! back (`Entrypoint` vs `Cmd`, `User` and `WorkingDir` as written, `Binds`, labels, `Tmpfs`,
//! the stop signal and timeout, …), for `inspect`, `stop`, `ps --filter` and
//! `container prune --filter label=…`.
//!
//! May call [`super::state`] (the command a container from an older Berth recorded).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use serde::{Deserialize, Serialize};

use super::create::CreateOptions;
use super::state::State;

/// `create.json` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Writing it.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Serializing it.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `<dir>/create.json`: what `run` was asked for, in Docker's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateConfig {
    /// `--entrypoint`, else the image's.
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name, else the image's `Cmd` (none with `--entrypoint`).
    pub cmd: Option<Vec<String>>,
    /// `-u`, else the image's `User`.
    pub user: String,
    /// `-w`, else the image's `WorkingDir`.
    pub working_dir: String,
    /// The image's labels.
    pub labels: BTreeMap<String, String>,
    /// `-v` flags as given.
    pub binds: Option<Vec<String>>,
    /// `--network`.
    pub network_mode: String,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--cap-add` as given.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `--cap-drop` as given.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--device` as given.
    #[serde(default)]
    pub devices: Vec<String>,
    /// `--security-opt` as given.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// `--read-only`.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `--tmpfs`: destination to options as given.
    #[serde(default)]
    pub tmpfs: BTreeMap<String, String>,
    /// `--stop-signal`, else the image's `StopSignal`.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    /// `--sysctl`.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// `--group-add` as given.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// `--shm-size` (`None`: Docker's default).
    #[serde(default)]
    pub shm_size: Option<i64>,
    /// `--init`.
    #[serde(default)]
    pub init: bool,
    /// `--uts` (`""` or `host`).
    #[serde(default, rename = "UTSMode")]
    pub uts_mode: String,
    /// `--ipc` (`private`, `shareable`, `none`, `host`; `""` from an older Berth).
    #[serde(default)]
    pub ipc_mode: String,
}

/// Path of `create.json` in a container directory.
fn create_path(dir: &Path) -> PathBuf {
    dir.join("create.json")
}

/// Records `create.json` for a container `run` creates from `image` with `args`.
///
/// # Errors
/// I/O.
pub fn save_create_config(
    dir: &Path,
    args: &CreateOptions,
    image: Option<&ImageConfig>,
) -> Result<(), ConfigError> {
    let entrypoint = match args.entrypoint.as_deref() {
        Some("") => None,
        Some(e) => Some(vec![e.to_owned()]),
        None => image.and_then(|c| c.entrypoint().clone()),
    };
    let cmd = if !args.command.is_empty() {
        Some(args.command.clone())
    } else if args.entrypoint.is_some() {
        None
    } else {
        image.and_then(|c| c.cmd().clone())
    };
    let config = CreateConfig {
        entrypoint,
        cmd,
        user: args
            .user
            .clone()
            .or_else(|| image.and_then(|c| c.user().clone()))
            .unwrap_or_default(),
        working_dir: args
            .workdir
            .clone()
            .or_else(|| image.and_then(|c| c.working_dir().clone()))
            .unwrap_or_default(),
        // As Docker: the flags' labels over the image's.
        labels: image
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .chain(args.labels.clone())
            .collect(),
        binds: (!args.binds.is_empty()).then(|| args.binds.clone()),
        network_mode: args.network.network.clone(),
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        devices: args.devices.clone(),
        security_opt: args.security_opt.clone(),
        readonly_rootfs: args.read_only,
        tmpfs: args.tmpfs.clone(),
        stop_signal: args
            .stop_signal
            .clone()
            .or_else(|| image.and_then(|c| c.stop_signal().clone())),
        stop_timeout: args.stop_timeout,
        sysctls: args.sysctls.clone(),
        group_add: args.group_add.clone(),
        shm_size: args.shm_size,
        init: args.init,
        uts_mode: if args.namespaces.uts_host { "host" } else { "" }.to_owned(),
        ipc_mode: args.namespaces.ipc.name().to_owned(),
    };
    fs_err::write(create_path(dir), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// `create.json`, or what the spec tells when it is missing (a container from an older Berth):
/// the whole argv as `Cmd`.
pub fn load_create_config(dir: &Path, state: &State) -> CreateConfig {
    fs_err::read(create_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| CreateConfig {
            cmd: Some(state.command.clone()),
            network_mode: "none".into(),
            ..CreateConfig::default()
        })
}
