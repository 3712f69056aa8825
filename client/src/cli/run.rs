//! `run` and `create` (the same flags).
//!
//! clap derive types only; no behaviour. May use nothing but clap and the other `cli` modules.

use std::path::PathBuf;

use clap::Args;

/// `run` (`-h` is the host name, as in Docker; help is `--help`)
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Automatically remove the container and its data when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Security options (`seccomp=unconfined`, `no-new-privileges[=true|false]`,
    /// `apparmor=…`, `label=…`)
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Pull image before running (`missing`: only when it is not in the store, `always`,
    /// `never`)
    #[arg(long, value_name = "POLICY", default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    /// Logging driver for the container (`json-file`, the default; `local`; `none`)
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options (`max-size=10m`, `max-file=3`)
    #[arg(long, value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Set platform if server is multi-platform capable (os[/arch[/variant]]): the image
    /// pulled for it, a local image of another platform refused
    #[arg(long, value_name = "PLATFORM", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Give extended privileges to this container (every capability and device, no seccomp
    /// filter, no masked paths)
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities (`NET_ADMIN`, `CAP_SYS_PTRACE`, `ALL`)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (`NET_RAW`, `ALL`)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Add a host device to the container (`/dev/fuse`, `/dev/sda:/dev/xvda:rwm`)
    #[arg(long, value_name = "HOST[:CONTAINER][:PERMS]")]
    pub device: Vec<String>,
    /// Set environment variables (`KEY=VALUE`, or `KEY` to take the host's value)
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: `<name|uid>[:<group|gid>]`)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Connect a container to a network (`bridge`: its own address on the `berth0` bridge;
    /// `none`: loopback only; `host`: the host's; a user network's name;
    /// `container:NAME`: another container's)
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Add network-scoped alias for the container (user networks)
    #[arg(long, alias = "net-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// IPv4 address on a user network (e.g., `172.30.100.104`), kept across restarts
    #[arg(long, value_name = "IPV4")]
    pub ip: Option<String>,
    /// Add link to another container (`NAME[:ALIAS]`, default bridge)
    #[arg(long, value_name = "NAME[:ALIAS]")]
    pub link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt", value_name = "OPT")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (`HOST:IP`, `HOST:host-gateway`)
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Ulimit options (`nofile=1024:2048`)
    #[arg(long, value_name = "TYPE=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Publish a container's port(s) to the host (`[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`)
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// `-m`, `--memory-swap`, `-c`, `--cpus`, `--pids-limit`.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Restart policy to apply when a container exits (`no`, `on-failure[:max-retries]`,
    /// `always`, `unless-stopped`)
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Bind mount a volume (`[NAME|/HOST:]/CONTAINER[:ro]`)
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount (`type=volume|bind,source=…,target=…[,readonly]`)
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mounts: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs directory (`/run`, `/run:rw,size=64m,mode=1777`; default options
    /// `rw,noexec,nosuid,nodev`)
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Set meta data on a container (`KEY=VALUE`, or `KEY` for an empty value)
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub label_file: Vec<PathBuf>,
    /// Write the container ID to the file (refused if the file exists)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub cidfile: Option<PathBuf>,
    /// Signal to stop the container (default: the image's `STOPSIGNAL`, else `SIGTERM`)
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container (default 10; -1 waits forever)
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Sysctl options (`KEY=VALUE`; namespaced ones only: `net.*` without `--network host`,
    /// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Add additional groups to join (a name from the image's `/etc/group`, or a GID)
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Size of /dev/shm (`BYTES[b|k|m|g]`; default 64m)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub shm_size: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// UTS namespace to use (`host`: the host's hostname; refused with `-h`)
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// IPC mode to use (`private` (default), `shareable`, `none`: no `/dev/shm`, `host`: the
    /// host's IPC namespace and `/dev/shm`)
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// The image, then the command and its arguments (replacing the image's CMD). As with
    /// Docker, everything after the image belongs to the command, flags included
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub argv: Vec<String>,
    /// The image (the first of `argv`; filled by [`Cli::split_trailing`])
    #[arg(skip)]
    pub image: String,
    /// The command (the rest of `argv`)
    #[arg(skip)]
    pub command: Vec<String>,
}

impl RunArgs {
    /// Splits [`RunArgs::argv`] into the image and the command.
    pub fn split_argv(&mut self) {
        let mut it = std::mem::take(&mut self.argv).into_iter();
        self.image = it.next().unwrap_or_default();
        self.command = it.collect();
    }
}

/// The resource flags `run`, `create` and `update` share, as typed.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// Memory limit (`BYTES[b|k|m|g]`, e.g. `64m`)
    #[arg(short = 'm', long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Number of CPUs (e.g. `0.5`)
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
}
