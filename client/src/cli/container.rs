//! Container commands other than `run`/`create`: `container …`, `ps`, `logs`, `start`, `stop`,
//! `kill`, `rm`, `restart`, `attach`, `exec`, `wait`, `port`, `rename`, `top`, `stats`, `export`,
//! `commit`, `cp`, `inspect` and the internal `container-monitor`.
//!
//! clap derive types only; no behaviour. May use nothing but clap and the other `cli` modules.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::RunArgs;

/// `berth container …`
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
}

/// `inspect` (any object)
#[derive(Args, Debug)]
pub struct ObjectInspectArgs {
    /// Names or IDs of containers, images or volumes
    #[arg(required = true, value_name = "NAME|ID")]
    pub objects: Vec<String>,
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Return JSON for specified type (`container`, `image` or `volume`)
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
}

/// `container inspect`
#[derive(Args, Debug)]
pub struct ContainerInspectArgs {
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// `rename`
#[derive(Args, Debug)]
pub struct RenameArgs {
    /// Container (name or ID)
    pub container: String,
    /// New name
    pub new_name: String,
}

/// `top`
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Container (name or ID)
    pub container: String,
    /// Options for `ps` (default `-ef`)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

/// `stats`
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Containers (default: all running ones)
    pub containers: Vec<String>,
}

/// `container prune`
#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. `until=<timestamp>`)
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Container (name or ID)
    pub container: String,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `commit`
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Container (name or ID)
    pub container: String,
    /// REPOSITORY[:TAG] for the new image
    pub reference: Option<String>,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
}

/// `cp`
#[derive(Args, Debug)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH, a local path, or `-` (a tar stream on STDIN)
    pub source: String,
    /// CONTAINER:DEST_PATH, a local path, or `-` (a tar stream on STDOUT)
    pub destination: String,
}

/// `ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (`id`, `name`, `exited`, `status`,
    /// `ancestor`, `before`, `since`, `volume`)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `logs`
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", allow_hyphen_values = true)]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. `2013-01-02T13:23:37Z`) or relative (e.g. `42m` for 42
    /// minutes)
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. `2013-01-02T13:23:37Z`) or relative (e.g. `42m` for 42
    /// minutes)
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Container
    pub container: String,
}

/// `stop`
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container (default: the container's `--stop-signal`, else the
    /// image's `STOPSIGNAL`, else `SIGTERM`)
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container (default: the container's
    /// `--stop-timeout`, else 10; -1: wait forever)
    #[arg(short, long, allow_hyphen_values = true)]
    pub timeout: Option<i64>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `port`
#[derive(Args, Debug)]
pub struct PortArgs {
    /// Container
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub private_port: Option<String>,
}

/// `pause`, `unpause`
#[derive(Args, Debug)]
pub struct PauseArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `update`
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Restart policy to apply when a container exits (`no`, `on-failure[:max-retries]`,
    /// `always`, `unless-stopped`)
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// `-m`, `--memory-swap`, `-c`, `--cpus`, `--pids-limit`.
    #[command(flatten)]
    pub resources: super::ResourceArgs,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `diff`
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Container
    pub container: String,
}

/// `wait`
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `start`
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `restart`
#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Signal to send to the container (default: the container's `--stop-signal`, else the
    /// image's `STOPSIGNAL`, else `SIGTERM`)
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container (default: the container's
    /// `--stop-timeout`, else 10; -1: wait forever)
    #[arg(short, long, allow_hyphen_values = true)]
    pub timeout: Option<i64>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `attach`
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Container
    pub container: String,
}

/// `exec`
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Set environment variables
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: `<name|uid>[:<group|gid>]`)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Container
    pub container: String,
    /// Command and arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `container-monitor` (internal)
#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// Wait (up to 10 s) for a client to attach before starting the container
    #[arg(long)]
    pub attach_wait: bool,
    /// Full container ID
    pub id: String,
}
