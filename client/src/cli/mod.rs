//! Command-line types (clap derive only; no behaviour). Flags, defaults and help follow
//! Docker's CLI reference (`specs/docker-cli/`), so Docker users' habits carry over.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod container;
mod image;
mod network;
mod run;
mod system;
mod volume;

pub use container::*;
pub use image::*;
pub use network::*;
pub use run::*;
pub use system::*;
pub use volume::*;

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
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
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
