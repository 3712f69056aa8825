//! Image commands: `image …`, `pull`, `push`, `tag`, `images`, `rmi`, `history`, `inspect`,
//! `image prune`, `save`, `load`, `import`, `build` and `search`.
//!
//! clap derive types only; no behaviour. May use nothing but clap and the other `cli` modules.

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
/// Builds with Berth's own runtime, no daemon. RUN steps are on the default bridge, as with
/// Docker (`--network none` or `RUN --network=none` for none). The cache is on unless
/// `--no-cache`; `--progress plain` says why each step hit or missed it.
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
    /// Networking mode for RUN steps: `default` (the bridge, as `bridge`), `none` or `host`
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
