//! `berth build`: Dockerfiles built daemonless with Berth's own runtime.
//!
//! - [`dockerfile`]: the language (lexer, parser, word expansion); pure.
//! - [`ignore`]: `.dockerignore` matching; pure.
//! - [`context`]: the build context (a directory, or a tar unpacked into scratch space), with
//!   path checks (no `..` or symlink escapes) and content hashes of COPY sources.
//! - [`cache`]: cache keys and entries under `<data-root>/build-cache/`.
//! - [`remote_cache`]: the cache as a registry artifact (`--cache-to`/`--cache-from`): the
//!   format, and the imported entries the executor consults after the local cache.
//! - [`output`]: `-o` values, and for `type=tar|local` the image's flattened root file system.
//! - `executor`: stages and steps, Docker's classic output; `state`: the image being built
//!   (config, history, layers); `root`: overlay mounts of a state with a fresh upper dir;
//!   `layer`: an upper dir becomes a layer; `run_step` and `copy`: RUN and COPY/ADD;
//!   `stages`: which stages can build at once, and building them in parallel.
//!
//! This module may call the store, the archive code (layers in, whiteouts out) and
//! `berth_runtime` (spec, overlay, run); never the registry protocol (base images are pulled by
//! `commands::build` before the build starts; layers of an imported cache come through the
//! caller's [`remote_cache::Imported::fetch`]) and never the printer: progress lines go to the
//! caller's sink.

pub mod cache;
pub mod context;
mod copy;
pub mod dockerfile;
mod executor;
pub mod ignore;
mod layer;
mod meta;
pub mod output;
pub mod remote_cache;
mod root;
mod run_step;
mod stages;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use self::executor::{build, external_images};
use self::remote_cache::Imported;
use crate::archive::ArchiveError;
use crate::store::StoreError;

/// Result type of the build module.
pub type Result<T> = std::result::Result<T, BuildError>;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    /// A word could not be expanded.
    #[error("Dockerfile line {line}: {source}")]
    Expand {
        /// Line of the instruction.
        line: usize,
        /// Cause.
        #[source]
        source: dockerfile::expand::ExpandError,
    },
    /// An instruction is valid syntax but cannot be carried out as written.
    #[error("Dockerfile line {line}: {message}")]
    Invalid {
        /// Line of the instruction.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `--target` names no stage.
    #[error("failed to reach build target {target} in Dockerfile")]
    Target {
        /// The name.
        target: String,
    },
    /// A COPY/ADD source resolves outside the context (`..`, or a symlink pointing out).
    #[error("forbidden path outside the build context: {path}")]
    OutsideContext {
        /// The source as written.
        path: String,
    },
    /// A COPY/ADD source does not exist (or `.dockerignore` excludes it).
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {path}: file does not exist")]
    NotFound {
        /// The source as written.
        path: String,
    },
    /// A RUN exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The argv, joined with spaces.
        command: String,
        /// Its exit code.
        code: i32,
        /// Its output, kept for `-q` (shown live otherwise).
        output: Vec<String>,
    },
    /// The runtime could not run a RUN step.
    #[error("cannot run `{command}`")]
    Runtime {
        /// The argv, joined with spaces.
        command: String,
        /// Cause.
        #[source]
        source: berth_runtime::run::RunError,
    },
    /// A base image is not in the store (the caller pulls bases before building).
    #[error(
        "pull access denied for {image}, repository does not exist or may require 'docker login'"
    )]
    NoImage {
        /// The reference.
        image: String,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing a layer failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// File system work failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Setting up a step failed (spec, mounts, user lookup).
    #[error("{what}")]
    Setup {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: anyhow::Error,
    },
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn setup(what: impl Into<String>) -> impl FnOnce(anyhow::Error) -> Self {
        let what = what.into();
        move |source| Self::Setup { what, source }
    }

    /// The exit code `berth build` should end with: a failed RUN's own code, else 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::RunFailed { code, .. } => u8::try_from(*code).unwrap_or(1).max(1),
            _ => 1,
        }
    }
}

/// The network of RUN steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildNetwork {
    /// The default bridge `berth0`, as `berth run` (and Docker's builder) give: an address of
    /// its own, outbound traffic masqueraded, the host's resolvers.
    Bridge,
    /// Only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// What to build, and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The Dockerfile's name inside the context, if it is there (kept despite `.dockerignore`).
    pub dockerfile_name: Option<String>,
    /// Full references to tag the result with.
    pub tags: Vec<String>,
    /// `--build-arg` values (a name alone takes the value from the environment).
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label`s for the final image.
    pub labels: Vec<(String, String)>,
    /// `--network` of RUN steps.
    pub network: BuildNetwork,
    /// `--progress plain`: say why each step hit or missed the cache.
    pub plain: bool,
    /// `-q`: RUN output only when a step fails.
    pub quiet: bool,
    /// `SOURCE_DATE_EPOCH`: timestamps in the config and (clamped) in layers.
    pub source_date_epoch: Option<i64>,
    /// `--secret id=…,src=…`: id → host file.
    pub secrets: BTreeMap<String, PathBuf>,
}

/// A file downloaded for `ADD <url>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The `Last-Modified` header, in seconds since the epoch.
    pub last_modified: Option<i64>,
}

/// Downloads the URL into the file (created by the callee); the caller removes the file.
pub type Download<'a> =
    dyn Fn(&str, &std::path::Path) -> anyhow::Result<Downloaded> + Send + Sync + 'a;

/// What a build may fetch over the network, supplied by the caller: the build module itself
/// never opens a connection (the registry client and the HTTP stack belong to commands).
#[derive(Default)]
pub struct Network<'a> {
    /// `--cache-from` entries and the fetcher of their layers.
    pub cache: Imported<'a>,
    /// Downloads `ADD <url>` sources; without it such an ADD fails.
    pub download: Option<Box<Download<'a>>>,
}

impl std::fmt::Debug for Network<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("cache", &self.cache)
            .field("download", &self.download.is_some())
            .finish()
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// `sha256:<hex>` image ID.
    pub id: String,
    /// Steps served from the cache, and all steps.
    pub cached: usize,
    /// All steps.
    pub steps: usize,
    /// Every step's cache key and resulting state, in build order (for `--cache-to`).
    pub records: Vec<remote_cache::StepRecord>,
    /// The target stage and the stages it is built `FROM` (what `--cache-to mode=min` exports).
    pub lineage: Vec<usize>,
}
