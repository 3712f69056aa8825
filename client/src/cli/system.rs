//! `berth system …`, `info`, `version`, `login`, `logout` and `system df`.
//!
//! clap derive types only; no behaviour. May use nothing but clap and the other `cli` modules.

use clap::{Args, Subcommand};

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
