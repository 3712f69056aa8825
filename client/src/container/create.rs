//! Creating a container from an image: its directory (an OCI bundle), root file system, `/etc`
//! files, volumes, OCI spec, `create.json` and `state.json`. What `run` and `create` share.
//!
//! Layout (one directory per container, like Docker's):
//! ```text
//! <data-root>/containers/<id>/
//!   config.json    the OCI runtime spec (the directory is an OCI bundle)
//!   rootfs/        overlay mount point (lower: the image's layers, top first)
//!   upper/ work/   overlay upper and work directories
//!   hostname hosts resolv.conf   bind-mounted at /etc/…
//!   create.json    what `run` was asked for ([`super::config`])
//!   state.json     id, name, image, status, owner and init PIDs, exit code ([`super::state`])
//!   lock           flock guarding state.json
//!   <id>-json.log  with a monitor: stdout/stderr in Docker's json-file format
//! ```
//!
//! [`create`] takes plain [`CreateOptions`] (the command converts its flags) and returns a
//! [`Created`] container that is removed again if it is dropped before being handed over to a
//! monitor ([`Created::hand_over`]) or run in the foreground ([`super::foreground`]).
//!
//! May call [`super::state`], [`super::lock`], [`super::names`], [`super::config`],
//! [`super::security`], [`super::ulimit`], [`crate::network`], [`crate::volumes`],
//! [`crate::envfile`], [`crate::reaper`], [`crate::store`] (layer paths) and `berth_runtime`
//! (overlay mount, layer copy, spec).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::{mount_overlay, RootfsError};
use berth_runtime::spec::{self, Network, ResourceLimits, RunOptions, SpecError};
use berth_runtime::syscall::{Errno, LinuxSyscall, MntFlags, Syscall};
use oci_spec::image::ImageConfiguration;

use super::lock::{self, Lock, LockError};
use super::names::{self, NameError};
use super::restart::RestartPolicy;
use super::state::{self, State, StateError, Status};
use crate::store::image::ImageRecord;
use crate::store::Store;

/// A container could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The names lock or the container's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `--name` is invalid or taken.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Writing `state.json`.
    #[error(transparent)]
    State(#[from] StateError),
    /// An `--env-file` cannot be read.
    #[error(transparent)]
    EnvFile(#[from] crate::envfile::EnvFileError),
    /// Writing `create.json`.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// Creating the container's files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The host name (for `--network host`).
    #[error(transparent)]
    Hostname(#[from] nix::errno::Errno),
    /// The overlay mount failed for a reason a copy would not fix.
    #[error("cannot mount the container's root file system")]
    Rootfs(#[source] RootfsError),
    /// overlayfs is unavailable and copying the layers failed.
    #[error("cannot copy the image's layers into the container's root file system")]
    CopyLayers(#[source] std::io::Error),
    /// A volume or bind mount cannot be set up (Docker's daemon wording).
    #[error("Error response from daemon: {0}")]
    Volumes(String),
    /// A `--device` cannot be read.
    #[error("Error response from daemon: {0}")]
    Device(String),
    /// Building the OCI spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A `--tmpfs` mount or `--read-only`.
    #[error(transparent)]
    Tmpfs(#[from] super::tmpfs::TmpfsError),
    /// A `--group-add` the image's `/etc/group` does not know (Docker's daemon wording).
    #[error("Error response from daemon: {0}")]
    Groups(String),
    /// A `--sysctl` the network mode does not allow.
    #[error(transparent)]
    Sysctl(#[from] super::sysctl::SysctlError),
    /// `--uts`/`--ipc` against `-h` or a sysctl, or the `/dev/shm` mount.
    #[error(transparent)]
    Namespaces(#[from] super::namespaces::ModeError),
    /// A capability or `--security-opt`.
    #[error(transparent)]
    Security(#[from] super::security::SecurityError),
    /// A `--ulimit`.
    #[error(transparent)]
    Ulimit(#[from] super::ulimit::UlimitError),
    /// The network plan (`--network`, `--link`, `-p`, `--dns`, …) cannot be made.
    #[error(transparent)]
    NetworkPlan(crate::network::plan::PlanError),
    /// An image layer's diff ID is no digest.
    #[error(transparent)]
    LayerDigest(oci_spec::OciSpecError),
    /// oci-spec refused joining the network namespace of `--network container:NAME`.
    #[error(transparent)]
    JoinNetns(oci_spec::OciSpecError),
    /// oci-spec refused a volume's or bind's mount.
    #[error(transparent)]
    Mounts(oci_spec::OciSpecError),
    /// `config.json` cannot be written.
    #[error(transparent)]
    SaveSpec(oci_spec::OciSpecError),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, CreateError>;

/// `run`'s network flags, owned (see [`crate::network::Flags`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// `--network`/`--net`.
    pub network: String,
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--expose`.
    pub expose: Vec<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--link`.
    pub links: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host`.
    pub add_hosts: Vec<String>,
}

/// What to create, with the flags already parsed and checked (no clap types).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image as the user named it.
    pub image: String,
    /// `--name` (a leading `/` is dropped); generated when `None`.
    pub name: Option<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--restart`.
    pub restart_policy: RestartPolicy,
    /// `--log-driver`, `--log-opt` over `daemon.json`'s defaults.
    pub log_config: super::log_config::LogConfig,
    /// `-m`, `--cpus`, `--pids-limit`.
    pub limits: ResourceLimits,
    /// The capabilities after `--cap-add`/`--cap-drop`/`--privileged`.
    pub capabilities: BTreeSet<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add` as given (for `create.json`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` as given (for `create.json`).
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--ulimit`.
    pub ulimits: Vec<String>,
    /// `--device`.
    pub devices: Vec<String>,
    /// `-v` and `--mount`, parsed.
    pub mounts: Vec<crate::volumes::MountSpec>,
    /// `-v` as given (for `create.json`).
    pub binds: Vec<String>,
    /// `--env-file`.
    pub env_files: Vec<PathBuf>,
    /// `-e`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// The command after the image.
    pub command: Vec<String>,
    /// `-h`.
    pub hostname: Option<String>,
    /// The network flags.
    pub network: NetworkOptions,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs`: destination and options as given (`""` when none), checked by
    /// [`super::tmpfs::parse`].
    pub tmpfs: BTreeMap<String, String>,
    /// `-l`/`--label` and `--label-file`, over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal` as given (checked).
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<i64>,
    /// `--sysctl`, checked by [`super::sysctl::parse`].
    pub sysctls: BTreeMap<String, String>,
    /// `--group-add` as given (names are looked up in the image's `/etc/group`).
    pub group_add: Vec<String>,
    /// `--shm-size` in bytes (`None`: Docker's 64 MiB).
    pub shm_size: Option<i64>,
    /// `--init`.
    pub init: bool,
    /// `--uts`, `--ipc`.
    pub namespaces: super::namespaces::Modes,
}

impl CreateOptions {
    /// The network flags as [`crate::network::settings_for_run`] takes them.
    fn network_flags<'a>(&'a self, name: &'a str) -> crate::network::Flags<'a> {
        let n = &self.network;
        crate::network::Flags {
            network: &n.network,
            publish: &n.publish,
            publish_all: n.publish_all,
            expose: &n.expose,
            hostname: self.hostname.as_deref(),
            name,
            aliases: &n.aliases,
            ip: n.ip.as_deref(),
            links: &n.links,
            dns: &n.dns,
            dns_search: &n.dns_search,
            dns_options: &n.dns_options,
            add_hosts: &n.add_hosts,
        }
    }
}

/// A new container ID: 64 hex digits, like Docker's.
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Refuses a `--name` Docker would refuse or another container already has; the caller holds
/// the names lock.
fn check_name(data_root: &Path, name: &str) -> std::result::Result<(), NameError> {
    names::check_valid(name, name)?;
    names::check_free(data_root, name.strip_prefix('/').unwrap_or(name), None)
}

/// The container directory, unmounted and (unless kept) removed on drop.
#[derive(Debug)]
pub struct ContainerDir {
    dir: PathBuf,
    mounted: bool,
    remove: bool,
}

impl ContainerDir {
    /// `<dir>/rootfs`.
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.mounted {
            // Lazy: a process that still holds the mount must not keep berth from cleaning up.
            if LinuxSyscall
                .umount2(&self.rootfs(), MntFlags::MNT_DETACH)
                .is_err()
            {
                // Never remove through a live mount.
                return;
            }
        }
        if self.remove {
            let _ = fs_err::remove_dir_all(&self.dir);
        }
    }
}

/// A container on disk, not yet in anyone's hands: dropping it removes it.
#[derive(Debug)]
pub struct Created {
    pub(super) guard: ContainerDir,
    pub(super) data_root: PathBuf,
    pub(super) state: State,
    pub(super) spec: oci_spec::runtime::Spec,
    pub(super) names_lock: Lock,
}

impl Created {
    /// The container's ID.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The container's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.guard.path()
    }

    /// Records `state.json` and releases the names lock, for a container a monitor will run
    /// (`keep_mounted`: from here on the monitor owns its mount and its removal) or that
    /// `start` will run later (its root file system is unmounted now; `start` mounts it again).
    /// Returns the directory.
    ///
    /// # Errors
    /// `state.json` cannot be written (the container is removed).
    pub fn hand_over(mut self, keep_mounted: bool) -> Result<PathBuf> {
        {
            let lock = Lock::take(self.guard.path())?;
            state::save(self.guard.path(), &self.state, &lock)?;
        }
        crate::reaper::done_creating(self.guard.path());
        let dir = self.guard.path().to_owned();
        self.guard.remove = false;
        if keep_mounted {
            self.guard.mounted = false;
        }
        // Drops the names lock, and unmounts unless kept.
        Ok(dir)
    }
}

/// Creates the container `opts` asks for from `image` (whose configuration is `config`).
///
/// # Errors
/// A name in use or invalid; a bad network, env file, volume, device, security or ulimit
/// option; the root file system or the spec cannot be made. Nothing is left behind.
pub fn create(
    printer: &crate::printer::Printer,
    store: &Store,
    opts: &CreateOptions,
    image: &ImageRecord,
    config: &ImageConfiguration,
) -> Result<Created> {
    let data_root = store.root();
    let containers = data_root.join("containers");
    // Held until the name is in state.json, so a concurrent `run`/`rename` cannot take it.
    let names_lock = lock::lock_names(data_root)?;
    if let Some(name) = &opts.name {
        check_name(data_root, name)?;
    }
    let name = opts
        .name
        .as_deref()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned());
    let name = name.unwrap_or_else(|| {
        let all = state::list(data_root);
        names::generate_name(&|n| all.iter().any(|(_, s)| s.name == n))
    });
    // Read before anything exists on disk, so a bad or endless file leaves nothing behind.
    let host_env = |k: &str| std::env::var(k).ok();
    let net = crate::network::settings_for_run(
        printer,
        data_root,
        &super::peers::Peers(data_root),
        &opts.network_flags(&name),
        config,
    )
    .map_err(CreateError::NetworkPlan)?;
    super::sysctl::check_network(&opts.sysctls, net.mode, net.netns.as_deref())?;
    opts.namespaces
        .check(opts.hostname.as_deref(), opts.sysctls.keys())?;
    // `--link`'s variables first: `-e` and `--env-file` may override them.
    let env = net
        .env
        .iter()
        .cloned()
        .chain(crate::envfile::read_all(&opts.env_files, &host_env)?)
        .chain(
            opts.env
                .iter()
                .filter_map(|e| spec::resolve_env_flag(e, host_env)),
        )
        .collect();
    let id = new_id();
    let (network, network_settings) = (net.mode, net.settings.clone());
    let hostname = match (&opts.hostname, network, &net.hostname) {
        _ if opts.namespaces.uts_host => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        (_, _, Some(theirs)) => theirs.clone(),
        (Some(h), _, None) => h.clone(),
        (None, Network::Host, None) => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        (None, Network::None | Network::Bridge, None) => id[..12].to_owned(),
    };
    let mut guard = ContainerDir {
        dir: containers.join(&id),
        mounted: false,
        remove: true,
    };
    let dir = guard.dir.clone();
    fs_err::create_dir_all(&dir)?;
    // Before anything is mounted: if this process dies before `state.json` exists, the next
    // berth invocation finds the directory and removes it (`crate::reaper`).
    crate::reaper::mark_creating(&dir)?;
    for sub in ["rootfs", "upper", "work"] {
        fs_err::create_dir_all(dir.join(sub))?;
    }
    mount_rootfs(store, image, &mut guard)?;

    fs_err::write(dir.join("hostname"), format!("{hostname}\n"))?;
    // A bridge container's address is added to `hosts` once it has one (`network::attach`).
    crate::network::write_etc_files(&dir, &net)?;
    let run_opts = RunOptions {
        hostname,
        env,
        workdir: opts.workdir.clone(),
        user: opts.user.clone(),
        entrypoint: opts.entrypoint.clone(),
        command: opts.command.clone(),
        network,
        etc_files: vec![
            (dir.join("hostname"), "/etc/hostname"),
            (dir.join("hosts"), "/etc/hosts"),
            (dir.join("resolv.conf"), "/etc/resolv.conf"),
        ],
    };
    let resolved = crate::volumes::resolve(data_root, &guard.rootfs(), &opts.mounts)
        .map_err(|e| CreateError::Volumes(format!("{e:#}")))?;
    let volume_names: Vec<String> = resolved.iter().filter_map(|r| r.volume.clone()).collect();
    let spec = match build_spec(&dir, &id, opts, config, &run_opts, &net, &resolved) {
        Ok(s) => s,
        Err(e) => {
            // Nothing records them yet: anonymous volumes made for this container go too.
            let _ = crate::container::volume_users::remove_anonymous(data_root, &volume_names);
            return Err(e);
        }
    };
    guard.remove = opts.auto_remove;
    let state = State {
        id,
        name,
        image: image.id.clone(),
        image_name: opts.image.clone(),
        command: spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        status: Status::Created,
        created: crate::timestamp::now_rfc3339(),
        auto_remove: opts.auto_remove,
        restart_policy: opts.restart_policy,
        log_config: opts.log_config.clone(),
        volumes: volume_names,
        tty: opts.tty,
        open_stdin: opts.interactive,
        network: Some(network_settings),
        ..State::default()
    };
    Ok(Created {
        guard,
        data_root: data_root.to_owned(),
        state,
        spec,
        names_lock,
    })
}

/// Mounts the image's layers as the container's root file system, or copies them when
/// overlayfs refuses the data root (e.g. it is itself on overlayfs).
fn mount_rootfs(store: &Store, image: &ImageRecord, guard: &mut ContainerDir) -> Result<()> {
    let dir = guard.dir.clone();
    let lowers: Vec<PathBuf> = image
        .layers
        .iter()
        .rev()
        .map(|l| {
            let diff_id = l.diff_id.parse().map_err(CreateError::LayerDigest)?;
            Ok(store.layer_path(&diff_id).join("fs"))
        })
        .collect::<Result<_>>()?;
    match mount_overlay(
        &LinuxSyscall,
        &lowers,
        &dir.join("upper"),
        &dir.join("work"),
        &guard.rootfs(),
    ) {
        Ok(()) => guard.mounted = true,
        Err(RootfsError::Syscall(e))
            if matches!(
                e.errno(),
                Some(Errno::EINVAL | Errno::ENODEV | Errno::EOPNOTSUPP | Errno::EPERM)
            ) =>
        {
            tracing::debug!("overlayfs unavailable ({e}); copying the image's layers");
            berth_runtime::rootfs_copy::copy_layers(&lowers, &guard.rootfs())
                .map_err(CreateError::CopyLayers)?;
            fs_err::write(dir.join(super::rootfs::ROOTFS_COPY_MARKER), "")?;
        }
        Err(e) => return Err(CreateError::Rootfs(e)),
    }
    Ok(())
}

/// Docker's `-t`: `process.terminal` and `TERM=xterm` unless the environment sets it.
fn set_terminal(spec: &mut oci_spec::runtime::Spec) {
    if let Some(mut p) = spec.process().clone() {
        p.set_terminal(Some(true));
        let mut env = p.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        p.set_env(Some(env));
        spec.set_process(Some(p));
    }
}

/// Builds the OCI spec and writes it (`config.json`) with `create.json`.
fn build_spec(
    dir: &Path,
    id: &str,
    opts: &CreateOptions,
    config: &ImageConfiguration,
    run_opts: &RunOptions,
    net: &crate::network::RunNetwork,
    resolved: &[crate::volumes::Resolved],
) -> Result<oci_spec::runtime::Spec> {
    let rootfs = dir.join("rootfs");
    let mut spec = spec::build(config.config().as_ref(), run_opts, &rootfs)?;
    if opts.tty {
        set_terminal(&mut spec);
    }
    super::security::set_capabilities(&mut spec, &opts.capabilities)?;
    if opts.privileged {
        super::security::unconfine(&mut spec);
    }
    super::security::apply_security_opts(&mut spec, &opts.security_opt)?;
    spec::apply_limits(&mut spec, &super::cgroup::path(id), &opts.limits)?;
    super::ulimit::apply(&mut spec, &opts.ulimits)?;
    crate::network::join_netns(&mut spec, net).map_err(CreateError::JoinNetns)?;
    for device in &opts.devices {
        spec::add_device(&mut spec, device).map_err(|e| match e {
            SpecError::DeviceInfo { .. } => CreateError::Device(e.to_string()),
            e => e.into(),
        })?;
    }
    if opts.privileged {
        spec::allow_all_devices(&mut spec)?;
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.extend(crate::volumes::oci_mounts(resolved).map_err(CreateError::Mounts)?);
    mounts.extend(super::tmpfs::oci_mounts(&opts.tmpfs)?);
    spec.set_mounts(Some(mounts));
    if opts.read_only {
        super::tmpfs::set_read_only(&mut spec)?;
    }
    super::sysctl::apply(&mut spec, &opts.sysctls);
    super::groups::add_groups(&mut spec, &rootfs, &opts.group_add)
        .map_err(|e| CreateError::Groups(e.to_string()))?;
    if let Some(size) = opts.shm_size {
        super::groups::set_shm_size(&mut spec, size);
    }
    opts.namespaces.apply(&mut spec)?;
    if opts.init {
        // Berth's runtime keeps init as PID 1 and forks the command under it.
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(
            berth_runtime::run::tiny_init::ANNOTATION.to_owned(),
            "true".to_owned(),
        );
        spec.set_annotations(Some(annotations));
    }
    spec.save(dir.join("config.json"))
        .map_err(CreateError::SaveSpec)?;
    super::config::save_create_config(dir, opts, config.config().as_ref())?;
    Ok(spec)
}
