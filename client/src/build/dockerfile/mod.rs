//! The Dockerfile language: [`parse`] turns text into stages of typed [`Instruction`]s.
//!
//! [`lexer`] handles directives, comments, continuations and heredocs; [`parser`] gives each
//! instruction its flags and forms; [`expand`] holds the word rules (quotes, escapes,
//! variables) the executor applies later, since values depend on `ARG`/`ENV` state at build
//! time. Pure code: no I/O, no store, no runtime. Errors name the line and column.

pub mod expand;
pub mod lexer;
pub mod parser;

pub use self::lexer::Heredoc;
pub use self::parser::parse;

/// A syntax error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile parse error on line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// A new error at `line`:`column`.
    #[must_use]
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// `# syntax=`, which berth ignores (it has one frontend); the caller prints a note.
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and in a stage after a bare
    /// `ARG NAME` there.
    pub meta_args: Vec<Instruction>,
    /// Build stages in order.
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The index of stage `name` (a name given with `AS`, lowercase, or a number).
    #[must_use]
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse().ok().filter(|i| *i < self.stages.len()))
    }

    /// Instructions counted as Docker's classic builder counts steps: each `FROM` and each
    /// instruction of the stages up to and including `last`.
    #[must_use]
    pub fn step_count(&self, last: usize) -> usize {
        self.meta_args.len()
            + self.stages[..=last]
                .iter()
                .map(|s| 1 + s.instructions.len())
                .sum::<usize>()
    }
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `FROM` line (for `Step N/M :` output).
    pub from: Instruction,
    /// The base: an image reference, a previous stage's name, or `scratch` (unexpanded).
    pub base: String,
    /// `AS name`, lowercase.
    pub name: Option<String>,
    /// `--platform=` (unexpanded).
    pub platform: Option<String>,
    /// The rest of the stage.
    pub instructions: Vec<Instruction>,
}

/// An instruction with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of its keyword.
    pub line: usize,
    /// 1-based column of its keyword.
    pub column: usize,
    /// The instruction as written, continuations joined (`RUN echo a &&   echo b`).
    pub original: String,
    /// What it is.
    pub kind: Kind,
}

/// Exec form (`["a", "b"]`) or shell form (`a b`) of `RUN`, `CMD`, `ENTRYPOINT`, `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    /// A JSON array of strings.
    Exec(Vec<String>),
    /// Text for the shell (`SHELL`, default `/bin/sh -c`).
    Shell(String),
}

/// `RUN --mount=type=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Read-only (by default) view of the context or of a stage/image.
    Bind,
    /// A directory kept between builds.
    Cache,
    /// A file of `--secret`.
    Secret,
    /// A fresh tmpfs.
    Tmpfs,
}

/// A parsed `--mount` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=` (default `bind`).
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `from=`: a stage or image.
    pub from: Option<String>,
    /// `id=` (cache and secret).
    pub id: Option<String>,
    /// `ro` / `readonly` (bind's default), `rw` / `readwrite`.
    pub readonly: Option<bool>,
    /// `sharing=shared|private|locked` (cache).
    pub sharing: Option<String>,
    /// `mode=` (octal), `uid=`, `gid=`.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `required` (secret).
    pub required: bool,
    /// `size=` (tmpfs), as written.
    pub size: Option<String>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: CommandForm,
    /// `--mount` flags in order.
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<Heredoc>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources (unexpanded); a heredoc source is `<<NAME`.
    pub sources: Vec<String>,
    /// Destination (unexpanded).
    pub dest: String,
    /// `--from=stage|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=` (octal).
    pub chmod: Option<String>,
    /// `--link` (accepted; the layer is independent of its parent anyway).
    pub link: bool,
    /// `ADD --checksum=sha256:…` of a URL source.
    pub checksum: Option<String>,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [OPTIONS] CMD ...`.
    Check {
        /// The command.
        command: CommandForm,
        /// `--interval`, nanoseconds.
        interval: Option<i64>,
        /// `--timeout`, nanoseconds.
        timeout: Option<i64>,
        /// `--start-period`, nanoseconds.
        start_period: Option<i64>,
        /// `--start-interval`, nanoseconds.
        start_interval: Option<i64>,
        /// `--retries`.
        retries: Option<i64>,
    },
}

/// What an instruction does, with its arguments unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `FROM` (only as [`Stage::from`]).
    From,
    /// `RUN`.
    Run(Run),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Copy),
    /// `ENV k=v ...` (or `ENV k v`): raw key and value words.
    Env(Vec<(String, String)>),
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `EXPOSE` words.
    Expose(Vec<String>),
    /// `CMD`.
    Cmd(CommandForm),
    /// `ENTRYPOINT`.
    Entrypoint(CommandForm),
    /// `LABEL k=v ...`.
    Label(Vec<(String, String)>),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL [...]`.
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `ONBUILD INSTRUCTION`: the trigger text with its keyword upper-cased.
    OnBuild(String),
    /// `MAINTAINER` (deprecated; sets the author).
    Maintainer(String),
}

impl Kind {
    /// The keyword, upper case.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::From => "FROM",
            Self::Run(_) => "RUN",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Env(_) => "ENV",
            Self::Arg(_) => "ARG",
            Self::Workdir(_) => "WORKDIR",
            Self::User(_) => "USER",
            Self::Expose(_) => "EXPOSE",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Label(_) => "LABEL",
            Self::Volume(_) => "VOLUME",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::OnBuild(_) => "ONBUILD",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }
}
