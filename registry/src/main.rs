//! `berth-registry` binary: arguments, logging, serving, graceful shutdown.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_config::registry::{AuthOverrides, Overrides};
use berth_config::RegistryConfig;
use clap::{Parser, Subcommand};

/// A self-hosted OCI Distribution v1.1 registry.
///
/// With no arguments it listens on 0.0.0.0:5000 and keeps data in /var/lib/berth-registry
/// (for root) or ~/.local/share/berth-registry.
#[derive(Parser, Debug)]
#[command(name = "berth-registry", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the registry API (the default command)
    Serve(ServeArgs),
    /// Manage the users of the htpasswd file (`[auth] htpasswd` or `--htpasswd`)
    #[command(subcommand)]
    User(UserCommand),
    /// Delete unreferenced blobs (and what `[[retention]]` removes); prints a JSON report
    ///
    /// Safe while a server serves the same directory: the server then does the work.
    Gc {
        /// Report what would be deleted; delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Data directory (default: the configuration's)
        #[arg(long, value_name = "DIR", env = "BERTH_REGISTRY_DATA_DIR", value_hint = clap::ValueHint::DirPath)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file
        #[arg(long, value_name = "FILE", env = "BERTH_REGISTRY_CONFIG", value_hint = clap::ValueHint::FilePath)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user, or set the password of an existing one (bcrypt)
    Add {
        /// User name
        name: String,
        /// Read the password from standard input (one line) instead of prompting
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        file: UserFile,
    },
    /// Remove a user
    Rm {
        /// User name
        name: String,
        #[command(flatten)]
        file: UserFile,
    },
}

#[derive(clap::Args, Debug)]
struct UserFile {
    /// htpasswd file (default: `[auth] htpasswd` of the configuration)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    htpasswd: Option<PathBuf>,
    /// TOML configuration file naming the htpasswd file
    #[arg(long, value_name = "FILE", env = "BERTH_REGISTRY_CONFIG", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Default)]
struct ServeArgs {
    /// Address to listen on, e.g. `127.0.0.1:5000` or `:5000`
    #[arg(long, value_name = "ADDR", env = "BERTH_REGISTRY_ADDR")]
    addr: Option<String>,
    /// Directory for blobs, manifests and upload sessions (created if missing)
    #[arg(long, value_name = "DIR", env = "BERTH_REGISTRY_DATA_DIR", value_hint = clap::ValueHint::DirPath)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see README); flags and env variables override it
    #[arg(long, value_name = "FILE", env = "BERTH_REGISTRY_CONFIG", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Refuse every write (push, delete)
    #[arg(long)]
    read_only: bool,
    /// Refuse DELETE of manifests, tags and blobs (the default without `[auth]`)
    #[arg(long)]
    no_delete: bool,
    /// Allow DELETE of manifests, tags and blobs (the default with `[auth]`)
    #[arg(long, conflicts_with = "no_delete")]
    delete: bool,
    /// Serve HTTPS with this PEM certificate chain (`[tls] cert`)
    #[arg(long, value_name = "FILE", requires = "tls_key", value_hint = clap::ValueHint::FilePath)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (`[tls] key`)
    #[arg(long, value_name = "FILE", requires = "tls_cert", value_hint = clap::ValueHint::FilePath)]
    tls_key: Option<PathBuf>,
    /// Require Basic credentials from this htpasswd file (`[auth] htpasswd`; bcrypt entries)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    htpasswd: Option<PathBuf>,
    /// Mirror the upstream registry at URL (repeatable; the first is the default upstream for
    /// names with neither `?ns=` nor a host prefix), e.g. `--mirror https://registry-1.docker.io`
    /// or `--mirror ghcr.io=https://ghcr.io`
    #[arg(long, value_name = "[REGISTRY=]URL")]
    mirror: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .init();
    let result = match command {
        Some(Command::User(u)) => user(u),
        Some(Command::Gc {
            dry_run,
            data_dir,
            config,
        }) => berth_registry::operate::gc_command(config.as_deref(), data_dir, dry_run).map(|r| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{r}");
        }),
        Some(Command::Serve(a)) => run(a),
        None => run(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  Caused by: {cause}");
                }
            }
            ExitCode::from(1)
        }
    }
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        addr: args.addr,
        data_dir: args.data_dir,
        read_only: args.read_only,
        no_delete: args.no_delete,
        delete: args.delete,
        auth: AuthOverrides {
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            htpasswd: args.htpasswd,
        },
        mirrors: args.mirror,
    };
    // Env variables already reached clap for ADDR/DATA_DIR; the loader reads the rest.
    let config_file = args.config.clone();
    let load = move || {
        let env = |k: &str| std::env::var(k).ok();
        RegistryConfig::load(config_file.as_deref(), &env, &overrides)
            .context("cannot load the registry configuration")
    };
    let config = load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking calls are short disk reads and writes (bounded per kind in
        // `service::slots`); nothing blocking waits for a client, so a small pool suffices and
        // the thread count stays bounded whatever clients do (tokio's default is 512).
        .max_blocking_threads(berth_registry::server::MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    let reload = berth_registry::reload::Reloader {
        load: Box::new(load),
        config_file: args.config,
        auth: None,
        tls: None,
    };
    runtime.block_on(serve(config, reload))
}

/// `user add` / `user rm`.
fn user(cmd: UserCommand) -> anyhow::Result<()> {
    use berth_registry::auth::users;
    let file_of = |f: UserFile| -> anyhow::Result<PathBuf> {
        if let Some(p) = f.htpasswd {
            return Ok(p);
        }
        let env = |k: &str| std::env::var(k).ok();
        let config = RegistryConfig::load(f.config.as_deref(), &env, &Overrides::default())
            .context("cannot load the registry configuration")?;
        config
            .auth
            .and_then(|a| a.htpasswd)
            .context("no htpasswd file: pass --htpasswd FILE or set [auth] htpasswd")
    };
    match cmd {
        UserCommand::Add {
            name,
            password_stdin,
            file,
        } => {
            let path = file_of(file)?;
            let password = users::read_password(&name, password_stdin)?;
            users::add(&path, &name, &password)
                .with_context(|| format!("cannot add `{name}` to {}", path.display()))?;
            tracing::info!(user = name, file = %path.display(), "user saved; a running registry reloads it within seconds");
        }
        UserCommand::Rm { name, file } => {
            let path = file_of(file)?;
            users::remove(&path, &name)?;
            tracing::info!(user = name, file = %path.display(), "user removed");
        }
    }
    Ok(())
}

/// The start-up warnings of issue 9: an open registry, or credentials in clear text.
fn warn_exposure(config: &RegistryConfig) {
    if config.auth.is_none() {
        tracing::warn!(
            addr = %config.addr,
            "no [auth] configured: anyone who can reach {} can push images{}. Add users with `berth-registry user add NAME` and `--htpasswd FILE`",
            config.addr,
            if config.delete_enabled { " and delete them" } else { "" }
        );
    } else if config.tls.is_none() && !config.addr.ip().is_loopback() {
        tracing::warn!(
            addr = %config.addr,
            "authentication is on without TLS on a non-loopback address: passwords and tokens cross the network in clear text. Add --tls-cert/--tls-key ([tls])"
        );
    }
}

async fn serve(
    config: RegistryConfig,
    mut reload: berth_registry::reload::Reloader,
) -> anyhow::Result<()> {
    let nofile = berth_registry::server::raise_nofile_limit();
    let limits = berth_registry::server::ServeLimits::from_config(&config.limits, nofile);
    let (registry, auth, app) = berth_registry::app_with_auth(config.clone())
        .with_context(|| format!("cannot use data directory `{}`", config.data_dir.display()))?;
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(
            berth_registry::tls::TlsAcceptor::new(t).context("cannot set up TLS")?,
        )),
        None => None,
    };
    reload.auth = auth;
    reload.tls = tls.clone();
    let reloader = tokio::spawn(reload.run());
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another registry using the port?",
                config.addr
            )
        })?;
    tracing::info!(
        addr = %listener.local_addr().unwrap_or(config.addr),
        data_dir = %config.data_dir.display(),
        read_only = config.read_only,
        delete_enabled = config.delete_enabled,
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        tls = config.tls.is_some(),
        auth = config.auth.is_some(),
        "berth-registry listening"
    );
    warn_exposure(&config);
    let _ops = berth_registry::operate::start(
        registry.clone(),
        listener.local_addr().unwrap_or(config.addr),
    )
    .await?;
    let purge = {
        let registry = registry.clone();
        let max_age = Duration::from_secs(config.upload_max_age_secs);
        let every = Duration::from_secs(config.upload_purge_interval_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let r = registry.clone();
                match tokio::task::spawn_blocking(move || r.purge_stale_uploads(max_age)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(purged = n, "removed stale upload sessions"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "purging upload sessions failed"),
                    Err(e) => tracing::warn!(error = %e, "purge task failed"),
                }
            }
        })
    };
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    };
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match tls {
            Some(tls) => Box::pin(berth_registry::server::serve(
                listener,
                app,
                TlsStreams(tls),
                limits,
                shutdown,
            )),
            None => Box::pin(berth_registry::server::serve(
                listener,
                app,
                berth_registry::server::Plain,
                limits,
                shutdown,
            )),
        };
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tokio::select! {
        result = server => result.context("server failed")?,
        () = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            // A stalled client must not keep the process alive forever (systemd would SIGKILL).
            // Upload sessions stay consistent: the client resumes from the status it is given.
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; exiting");
        }
    }
    purge.abort();
    reloader.abort();
    tracing::info!("berth-registry stopped");
    Ok(())
}

/// R1's serving loop takes any [`berth_registry::server::Acceptor`]; this one runs the TLS
/// handshake (bounded by the loop's header-read timeout and `tls::HANDSHAKE_TIMEOUT`).
#[derive(Clone)]
struct TlsStreams(Arc<berth_registry::tls::TlsAcceptor>);

impl berth_registry::server::Acceptor for TlsStreams {
    type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Stream>> + Send>>;

    fn accept(&self, tcp: tokio::net::TcpStream, _peer: std::net::SocketAddr) -> Self::Future {
        let acceptor = self.0.clone();
        Box::pin(async move { acceptor.accept(tcp).await })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
