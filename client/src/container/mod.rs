//! The container service layer: everything Berth knows and does about containers, below the
//! commands and above the runtime.
//!
//! Jobs, one module each: [`state`] (`state.json`, [`State`], [`Status`], [`find`], [`list`]),
//! [`lock`] (the per-container and names `flock`s), [`cgroup`] (where its cgroups are), [`names`] (name rules and generated names),
//! [`logs`] (json-file logs), [`log_config`] (`--log-driver`, `--log-opt`, rotation), [`restart`] (`--restart`), [`rootfs`] (the root file system on the
//! host and [`teardown`]), [`signal`], [`wait`], [`images`] (which images containers use, asked
//! by `rmi` and `image prune`), [`volume_users`] (which containers use a volume), [`peers`]
//! (other containers as the network plan sees them), [`config`] (`create.json`), and the spec
//! edits of [`security`], [`ulimit`], [`tmpfs`] (`--tmpfs`, `--read-only`), [`sysctl`],
//! [`groups`] (`--group-add`, `--shm-size`) and [`namespaces`] (`--uts`, `--ipc`). Operations, one module each: [`create`],
//! [`foreground`] (run in this process), [`start`] (and `restart`), [`attach`], [`exec`],
//! [`stop`], [`kill`], [`rm`], [`pause`] (and `unpause`), [`update`], [`diff`], [`connect`] (`network connect`/`disconnect`), [`rename`], and the
//! queries [`ps`] (with [`ps_filter`]), [`inspect`], [`read_logs`], [`top`], [`stats`], [`port`]
//! and [`wait`], and the file system operations [`cp`], [`export`] and [`commit`]. [`monitor`] is
//! the process that owns a detached container.
//!
//! Commands (`crate::commands`) call this layer; it never calls them, and never sees clap's
//! types. It may call `berth_runtime`, [`crate::procfs`], [`crate::timestamp`],
//! [`crate::network`], [`crate::volumes`], [`crate::reaper`], [`crate::store`] (layer paths,
//! image sizes, `commit`'s image), [`crate::archive`] (`commit`'s layer),
//! [`crate::reference`], [`crate::filters`], [`crate::envfile`], [`crate::containers_fs`] and
//! the process plumbing ([`crate::attach`], [`crate::relay`], [`crate::sigproxy`],
//! [`crate::tty`]). The dependency on [`crate::network`] and [`crate::volumes`] points one way:
//! they never call this layer. Where they need other containers, this layer answers: [`peers`]
//! implements [`crate::network::Peers`] (`--link`, `--network container:NAME`) and
//! [`volume_users`] tells [`crate::volumes::remove`] who uses a volume.

pub mod cgroup;
pub mod diff;
pub mod images;
pub mod lock;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod namespaces;
pub mod pause;
pub mod peers;
pub mod restart;
pub mod rootfs;
pub mod security;
pub mod signal;
pub mod state;
pub mod sysctl;
pub mod tmpfs;
pub mod ulimit;
pub mod volume_users;
pub mod wait;

// One module per operation: plain option structs in, plain results and a typed error out.
pub mod attach;
pub mod commit;
pub mod config;
pub mod connect;
pub mod cp;
pub mod create;
pub mod exec;
pub mod export;
pub mod foreground;
pub mod groups;
pub mod inspect;
pub mod kill;
pub mod log_config;
pub mod port;
pub mod ps;
pub mod ps_filter;
pub mod read_logs;
pub mod rename;
pub mod rm;
pub mod start;
pub mod stats;
pub mod stop;
pub mod top;
pub mod update;

pub use connect::connected_networks;
pub use lock::{lock_names, Lock, LockError};
pub use logs::{copy_log, log_path, padded_time, parse_log, parse_tail, tail, LogEntry};
pub use names::generate_name;
pub use restart::{
    mark_stopped_by_user, restart_delay, RestartPolicy, RestartPolicyError, RESTART_DELAY_MAX,
    RESTART_DELAY_MIN, RESTART_RESET_AFTER,
};
pub use rootfs::{rootfs_copied, rootfs_mounted, rootfs_ready, teardown, ROOTFS_COPY_MARKER};
pub use signal::{parse_signal, signal, SignalError};
pub use state::{find, list, load, root, save, update, State, StateError, Status, EXIT_OWNER_GONE};
pub use wait::{wait_exit, wait_owner};
