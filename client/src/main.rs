//! `berth` binary: parse arguments, load daemon.json, open the store, run the command, print
//! errors as `error:` / `Caused by:` / `hint:` and exit 0 (success), 1 (failure), 2 (usage).

use std::process::ExitCode;

use anyhow::Context as _;
use berth_client::cli::{Cli, Command};
use berth_client::context::{default_data_root, Ctx};
use berth_client::printer::Printer;
use berth_client::store::Store;
use berth_config::daemon::{DaemonConfig, DEFAULT_PATH, DOCKER_PATH};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if enters_containers(&cli.command) {
        // CVE-2019-5736: the processes that enter the container must not be forks of the
        // host's binary; this re-executes from a sealed copy (and returns only on failure).
        if let Err(e) = berth_runtime::cloned_binary::ensure() {
            return report(
                &anyhow::Error::new(e).context("cannot run from a sealed copy of the berth binary"),
            );
        }
    }
    if cli.debug {
        tracing_subscriber::fmt()
            .with_env_filter("berth=debug,berth_client=debug")
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Commands whose own process forks into a container: a foreground `run`, `exec` and the
/// monitor. (`run -d`, `-i`, `-t`, `start` hand the container to a monitor.)
fn enters_containers(command: &Command) -> bool {
    use berth_client::cli::ContainerCommand as C;
    match command {
        Command::Run(a) | Command::Container(C::Run(a)) => !(a.detach || a.interactive || a.tty),
        Command::Exec(_) | Command::Container(C::Exec(_)) | Command::ContainerMonitor(_) => true,
        _ => false,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let printer = Printer::new(false, cli.debug);
    let daemon = match &cli.config_file {
        Some(p) => DaemonConfig::load(p, true),
        None => {
            let docker = std::env::var_os("BERTH_DOCKER_DAEMON_JSON")
                .map_or_else(|| DOCKER_PATH.into(), std::path::PathBuf::from);
            DaemonConfig::load_default(DEFAULT_PATH.as_ref(), &docker)
        }
    }
    .with_context(|| {
        let p = cli.config_file.as_deref().unwrap_or(DEFAULT_PATH.as_ref());
        format!("cannot use daemon config `{}`", p.display())
    })?;
    if daemon.from_docker {
        printer.debug(&format!(
            "{DEFAULT_PATH} does not exist: using the registry settings of {}",
            daemon
                .source
                .as_deref()
                .unwrap_or(DOCKER_PATH.as_ref())
                .display()
        ));
    }
    for w in &daemon.warnings {
        printer.warn(w);
    }
    let root = cli
        .data_root
        .clone()
        .or_else(|| daemon.data_root.clone())
        .unwrap_or_else(default_data_root);
    match berth_client::context::secure_data_root(&root) {
        Ok(Some(notice)) => printer.warn(&notice),
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    let store = Store::open(&root)
        .with_context(|| format!("cannot open the data root `{}`", root.display()))?;
    let ctx = Ctx {
        store,
        daemon,
        printer,
    };
    berth_client::commands::dispatch(&ctx, cli.command).await
}

#[allow(clippy::print_stderr)]
fn report(e: &anyhow::Error) -> ExitCode {
    // A command may choose its exit status (`run` returns the container's).
    let (code, skip) = match e.downcast_ref::<berth_client::Exit>() {
        Some(exit) => (exit.0, 1),
        None => (1, 0),
    };
    let mut chain = e.chain().skip(skip);
    if let Some(first) = chain.next() {
        eprintln!("error: {first}");
        for cause in chain {
            eprintln!("  Caused by: {cause}");
        }
        for hint in berth_client::hints(e) {
            eprintln!("hint: {hint}");
        }
    }
    ExitCode::from(code)
}
