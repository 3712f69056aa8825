//! Command-line types (clap derive only; no behaviour). Flags, defaults and help follow
//! Docker's CLI reference (`specs/docker-cli/`), so Docker users' habits carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A docker-style client for images and containers, with no daemon.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version = concat!("version ", env!("CARGO_PKG_VERSION")),
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print version information and quit
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// Root directory of persistent state (images, layers) [default: /var/lib/berth]
    #[arg(long, global = true, value_name = "DIR", env = "BERTH_DATA_ROOT", value_hint = clap::ValueHint::DirPath)]
    pub data_root: Option<PathBuf>,
    /// Daemon configuration file (Docker's `daemon.json` format) [default: /etc/berth/daemon.json]
    #[arg(long, global = true, value_name = "FILE", env = "BERTH_CONFIG", value_hint = clap::ValueHint::FilePath)]
    pub config_file: Option<PathBuf>,
    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `std::env::args`, exiting with clap's usage error on failure.
    #[must_use]
    pub fn parse_args() -> Self {
        match <Self as clap::Parser>::try_parse() {
            Ok(mut cli) => {
                cli.split_trailing();
                cli
            }
            Err(e) => without_hidden_suggestions(e).exit(),
        }
    }

    /// Parses `argv` (for tests).
    ///
    /// # Errors
    /// clap's usage error.
    pub fn try_parse_argv<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cli = <Self as clap::Parser>::try_parse_from(argv)?;
        cli.split_trailing();
        Ok(cli)
    }

    /// Fills the image and command of `run`/`create` from their trailing arguments.
    pub fn split_trailing(&mut self) {
        match &mut self.command {
            Command::Run(a)
            | Command::Create(a)
            | Command::Container(ContainerCommand::Run(a) | ContainerCommand::Create(a)) => {
                a.split_argv();
            }
            _ => {}
        }
    }
}

/// clap suggests hidden subcommands too (`contianer` → the internal `container-monitor`):
/// keeps only the ones users may type.
fn without_hidden_suggestions(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if let Some(ContextValue::Strings(names)) = e.get(ContextKind::SuggestedSubcommand) {
        let visible: Vec<String> = names
            .iter()
            .filter(|n| n.as_str() != "container-monitor")
            .cloned()
            .collect();
        e.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::Strings(visible),
        );
    }
    e
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Return low-level information on Berth objects
    Inspect(ObjectInspectArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Show the berth version information
    Version(VersionArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
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
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Internal: own a detached container (started by `run -d`)
    #[command(hide = true)]
    ContainerMonitor(MonitorArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Search a registry for images
    Search(SearchArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
}

/// `berth network …`
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
}

/// `network create`
#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network (`bridge`)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment (`10.90.0.0/16`)
    #[arg(long, value_name = "CIDR")]
    pub subnet: Vec<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long, value_name = "IP")]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// The network's name
    pub name: String,
}

/// `network ls`
#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Provide filter values (`driver=bridge`, `name=…`, `id=…`, `label=…`, `scope=local`,
    /// `type=custom|builtin`, `dangling=true`)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Pretty-print networks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// `network inspect`
#[derive(Args, Debug)]
pub struct NetworkInspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    pub verbose: bool,
    /// Networks
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `network connect`
#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// `network disconnect`
#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// `network rm`
#[derive(Args, Debug)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    /// Networks
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `network prune`
#[derive(Args, Debug)]
pub struct NetworkPruneArgs {
    /// Provide filter values (`label=…`, `until=…`)
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `berth volume …`
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

/// `volume create`
#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local", value_parser = ["local"])]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Volume name (random when left out)
    pub name: Option<String>,
}

/// `volume ls`
#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

/// `volume inspect`
#[derive(Args, Debug)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volumes
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// `volume rm`
#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    /// Volumes
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// `volume prune`
#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

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

/// `berth image …`
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
}

/// `berth system …`
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Start the containers whose restart policy asks for it after their monitor died or the
    /// host rebooted (run at boot by `berth-restore.service`)
    Restore,
}

/// `info`
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template (`{{json .}}`, `{{.DockerRootDir}}`)
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `version`
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template (`{{json .}}`, `{{.Client.Version}}`)
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `pull`
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG|@DIGEST]
    pub name: String,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Set platform if the image is multi-platform (os[/arch[/variant]])
    #[arg(long, env = "BERTH_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
}

/// `push`
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image to push: NAME[:TAG]
    pub name: String,
    /// Push all tags of the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
}

/// `tag`
#[derive(Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

/// `images`
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only list images of this repository (REPOSITORY[:TAG])
    pub repository: Option<String>,
    /// Show all images (default hides intermediate images; berth keeps none)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output (`dangling=true|false`, `reference=PATTERN`)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output: `table`, `json`, or a template like `{{.Repository}}:{{.Tag}}`
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rmi`
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Images to remove (names, IDs or ID prefixes)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image (even when several tags point at it)
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
}

/// `history`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Image
    pub image: String,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a template
    #[arg(long)]
    pub format: Option<String>,
}

/// `inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Images
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output using a template
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `image prune`
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `save`
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `load`
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

/// `import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Tarball to import: a file, `-` for STDIN, or an http(s) URL
    pub source: String,
    /// REPOSITORY[:TAG] for the new image
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, …)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform (os/arch) of the image
    #[arg(long)]
    pub platform: Option<String>,
}

/// `build`
///
/// Builds with Berth's own runtime, no daemon. RUN steps have no network unless `--network
/// host` (or `RUN --network=host`) is given. The cache is on unless `--no-cache`; `--progress
/// plain` says why each step hit or missed it.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context: a directory, or `-` for a tar archive or a Dockerfile on STDIN
    #[arg(value_name = "PATH | -", value_hint = clap::ValueHint::DirPath)]
    pub context: String,
    /// Name and optionally a tag in the "name:tag" format (repeatable)
    #[arg(short, long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; `-` reads it from STDIN)
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<String>,
    /// Set build-time variables (`NAME=VALUE`, or `NAME` to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (`KEY=VALUE`)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Type of progress output: `plain` also says why each step hit or missed the cache
    #[arg(long, value_name = "TYPE", default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Networking mode for RUN steps: `none` (berth's default), `host`, or `default` (= none)
    #[arg(long, value_name = "MODE", default_value = "default")]
    pub network: String,
    /// Platform of the image; only the host's (e.g. `linux/amd64`) can be built
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Secret for `RUN --mount=type=secret` (`id=NAME,src=FILE`)
    #[arg(long, value_name = "id=NAME,src=FILE")]
    pub secret: Vec<String>,
    /// Where the cache and the result go (boxed, so `build` stays a small variant of the
    /// command enums)
    #[command(flatten)]
    pub export: Box<BuildExportArgs>,
}

/// `build`: `--cache-from`, `--cache-to` and `-o`.
#[derive(Args, Debug)]
pub struct BuildExportArgs {
    /// External cache sources (`type=registry,ref=HOST/REPO:TAG`, or just the reference)
    ///
    /// Steps whose cache key is in the cache are served from it, their layers downloaded from
    /// the registry (through the configured mirrors, with the saved credentials) only when
    /// they are used. A cache reference that does not exist is only a warning.
    #[arg(
        long = "cache-from",
        value_name = "type=registry,ref=REF",
        help_heading = "Cache"
    )]
    pub cache_from: Vec<String>,
    /// Cache export destinations (`type=registry,ref=HOST/REPO:TAG[,mode=min|max]`)
    ///
    /// Pushes the cache of this build to the registry as one OCI manifest. `mode=min` (the
    /// default) exports the steps of the final stage and the stages it is built FROM;
    /// `mode=max` exports every stage built.
    #[arg(
        long = "cache-to",
        value_name = "type=registry,ref=REF[,mode=max]",
        help_heading = "Cache"
    )]
    pub cache_to: Vec<String>,
    /// Output destination (`type=oci|docker|tar|local,dest=PATH`; `PATH` alone is type=local)
    ///
    /// `type=oci` and `type=docker` write the image as one tar that is both an OCI image layout
    /// and a `docker load` archive (tagged with `-t` and `name=`); `type=tar` writes the final
    /// root file system as a tar, `type=local` unpacks it into the directory `dest`. A missing
    /// `dest` (or `-`) writes the tar to STDOUT. The image is kept in the store as well; it
    /// need not be tagged.
    #[arg(short, long, value_name = "type=TYPE,dest=PATH")]
    pub output: Vec<String>,
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

/// `search`
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Term to search for; `REGISTRY/term` searches that registry
    pub term: String,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a template
    #[arg(long)]
    pub format: Option<String>,
}

/// `login`
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port] (Docker Hub when omitted)
    pub server: Option<String>,
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or token (prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

/// `logout`
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port] (Docker Hub when omitted)
    pub server: Option<String>,
}

/// `system df`
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a template
    #[arg(long)]
    pub format: Option<String>,
}

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
    /// Memory limit (`BYTES[b|k|m|g]`, e.g. `64m`)
    #[arg(short = 'm', long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. `0.5`)
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
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
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container (-1: wait forever)
    #[arg(short, long, default_value_t = 10, allow_hyphen_values = true)]
    pub timeout: i64,
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
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short, long, default_value_t = 10, allow_hyphen_values = true)]
    pub timeout: i64,
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
