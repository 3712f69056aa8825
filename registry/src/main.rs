//! `berth-registry` binary: arguments, logging, serving, graceful shutdown.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use berth_config::registry::Overrides;
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
    /// Refuse DELETE of manifests, tags and blobs
    #[arg(long)]
    no_delete: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .init();
    match run(args) {
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
        ..Overrides::default()
    };
    // Env variables already reached clap for ADDR/DATA_DIR; the loader reads the rest.
    let env = |k: &str| std::env::var(k).ok();
    let config = RegistryConfig::load(args.config.as_deref(), &env, &overrides)
        .context("cannot load the registry configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: RegistryConfig) -> anyhow::Result<()> {
    let (registry, app) = berth_registry::app(config.clone())
        .with_context(|| format!("cannot use data directory `{}`", config.data_dir.display()))?;
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
        "berth-registry listening"
    );
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
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    });
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
    tracing::info!("berth-registry stopped");
    Ok(())
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
