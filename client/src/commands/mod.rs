//! One module per command; [`dispatch`] maps the CLI onto them.

pub mod attach;
pub mod build;
mod build_url;
pub mod commit;
pub mod container_inspect;
pub mod container_prune;
pub mod cp;
pub mod df;
pub mod diff;
pub mod exec;
pub mod export;
pub mod history;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rename;
pub mod rm;
pub mod rmi;
pub mod run;
mod run_checks;
pub mod save;
pub mod search;
pub mod start;
pub mod stats;
pub mod stop;
pub mod tag;
pub mod top;
pub mod update;
pub mod volume;
pub mod wait;

use crate::cli::{
    Command, ContainerCommand as C, ImageCommand, NetworkCommand, SystemCommand, VolumeCommand,
};
use crate::context::Ctx;
use crate::reference::Reference;
use crate::store::ImageRecord;

/// Finds a local image by name (`busybox`, `busybox:1.36`, `ghcr.io/org/app:v1`), full ID, or
/// unique ID prefix, as Docker does.
///
/// # Errors
/// Docker's `No such image: …` when nothing matches.
pub fn find_image(ctx: &Ctx, arg: &str) -> anyhow::Result<ImageRecord> {
    let full = Reference::parse(arg).ok().map(|r| r.to_string());
    Ok(ctx.store.resolve(arg, full.as_deref())?)
}

/// `run`'s and `create`'s `--pull` (and `--platform`) before anything else; a failed pull exits
/// 125 as Docker's does.
async fn pull_for_run(ctx: &Ctx, a: &crate::cli::RunArgs) -> anyhow::Result<()> {
    let pulled = pull::for_run(ctx, &a.image, &a.pull, a.platform.as_deref()).await;
    exit_with(pulled.map(|()| 0))
}

/// Docker's prune confirmation: `warning`, then `[y/N]` on a terminal. True to go ahead; with
/// `force` no question is asked. Without a terminal and without `force` it refuses.
///
/// # Errors
/// No terminal to ask on; stdin unreadable.
pub fn confirm(warning: &str, force: bool) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{warning} Refusing without confirmation: pass `--force` when not on a terminal"
        );
    }
    #[allow(clippy::print_stderr)]
    {
        eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Docker's way with several objects (`stop a b c`): each is handled even when another fails;
/// `act` returns the line to print for it (`None`: nothing). The failures, one per line, fail
/// the command.
///
/// # Errors
/// Every object `act` failed on.
pub fn each(
    ctx: &Ctx,
    names: &[String],
    mut act: impl FnMut(&str) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for name in names {
        match act(name) {
            Ok(Some(line)) => ctx.printer.data(&line),
            Ok(None) => {}
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

/// Short (12 hex) form of an image ID.
#[must_use]
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

/// Maps a container's exit status, or the reason it could not run, to `berth`'s exit (Docker's
/// 125/126/127 for failures): `run`, `create`, `start -a`, `attach` and `exec`.
///
/// # Errors
/// A non-zero status, or the failure with its exit code attached.
pub fn exit_with(result: anyhow::Result<i32>) -> anyhow::Result<()> {
    use berth_runtime::run::{RunError, EXIT_RUNTIME};
    match result {
        Ok(0) => Ok(()),
        Ok(code) => Err(crate::Exit(u8::try_from(code).unwrap_or(255)).into()),
        Err(e) if e.downcast_ref::<crate::Exit>().is_some() => Err(e),
        Err(e) => {
            let run_error = e.downcast_ref::<RunError>().or_else(|| {
                e.downcast_ref::<crate::container::start::StartError>()
                    .and_then(crate::container::start::StartError::run_error)
                    .or_else(|| {
                        e.downcast_ref::<crate::container::attach::AttachError>()
                            .and_then(crate::container::attach::AttachError::run_error)
                    })
                    .or_else(|| {
                        e.downcast_ref::<crate::container::foreground::ForegroundError>()
                            .and_then(crate::container::foreground::ForegroundError::run_error)
                    })
            });
            let code = run_error.map_or(EXIT_RUNTIME, RunError::exit_code);
            Err(e.context(crate::Exit(u8::try_from(code).unwrap_or(125))))
        }
    }
}

/// Runs one command.
///
/// # Errors
/// Whatever the command reports; `main` prints it with its causes and hints.
pub async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    // No daemon restarts containers whose monitor died: every invocation checks (cheap when
    // there is nothing to do), except the monitor itself and the explicit restore.
    if !matches!(
        command,
        Command::ContainerMonitor(_) | Command::System(SystemCommand::Restore)
    ) {
        start::restore(ctx, false)?;
    }
    match command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(ctx, &a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(ctx, &a).await,
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(ctx, &a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(ctx, &a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(ctx, &a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(ctx, &a),
        Command::Inspect(a) => inspect::run_objects(ctx, &a),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(ctx, &a),
        Command::Image(ImageCommand::Prune(a)) => prune::run(ctx, &a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(ctx, &a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(ctx, &a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(ctx, &a).await,
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::run(ctx, &a).await,
        Command::Run(a) | Command::Container(C::Run(a)) => {
            pull_for_run(ctx, &a).await?;
            run::run(ctx, &a)
        }
        Command::Create(a) | Command::Container(C::Create(a)) => {
            pull_for_run(ctx, &a).await?;
            run::create(ctx, &a)
        }
        Command::Start(a) | Command::Container(C::Start(a)) => start::start(ctx, &a),
        Command::Restart(a) | Command::Container(C::Restart(a)) => start::restart(ctx, &a),
        Command::Attach(a) | Command::Container(C::Attach(a)) => attach::run(ctx, &a),
        Command::Exec(a) | Command::Container(C::Exec(a)) => exec::run(ctx, &a),
        Command::Ps(a) | Command::Container(C::Ls(a)) => ps::run(ctx, &a),
        Command::Logs(a) | Command::Container(C::Logs(a)) => logs::run(ctx, &a),
        Command::Stop(a) | Command::Container(C::Stop(a)) => stop::run(ctx, &a),
        Command::Kill(a) | Command::Container(C::Kill(a)) => kill::run(ctx, &a),
        Command::Rm(a) | Command::Container(C::Rm(a)) => rm::run(ctx, &a),
        Command::Wait(a) | Command::Container(C::Wait(a)) => wait::run(ctx, &a),
        Command::Port(a) | Command::Container(C::Port(a)) => port::run(ctx, &a),
        Command::Diff(a) | Command::Container(C::Diff(a)) => diff::run(ctx, &a),
        Command::Update(a) | Command::Container(C::Update(a)) => update::run(ctx, &a),
        Command::Pause(a) | Command::Container(C::Pause(a)) => pause::run(ctx, &a, true),
        Command::Unpause(a) | Command::Container(C::Unpause(a)) => pause::run(ctx, &a, false),
        Command::ContainerMonitor(a) => monitor::run(ctx, &a),
        Command::Export(a) | Command::Container(C::Export(a)) => export::run(ctx, &a),
        Command::Commit(a) | Command::Container(C::Commit(a)) => commit::run(ctx, &a),
        Command::Cp(a) | Command::Container(C::Cp(a)) => cp::run(ctx, &a),
        Command::Container(C::Inspect(a)) => container_inspect::run(ctx, &a),
        Command::Rename(a) | Command::Container(C::Rename(a)) => rename::run(ctx, &a),
        Command::Top(a) | Command::Container(C::Top(a)) => top::run(ctx, &a),
        Command::Stats(a) | Command::Container(C::Stats(a)) => stats::run(ctx, &a),
        Command::Container(C::Prune(a)) => container_prune::run(ctx, &a),
        Command::Search(a) => search::run(ctx, &a).await,
        Command::Login(a) => login::run(ctx, &a).await,
        Command::Logout(a) => logout::run(ctx, &a),
        Command::System(SystemCommand::Df(a)) => df::run(ctx, &a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::info(ctx, &a),
        Command::Version(a) => info::version(ctx, &a),
        Command::System(SystemCommand::Restore) => start::restore(ctx, true),
        Command::Volume(VolumeCommand::Create(a)) => volume::create(ctx, &a),
        Command::Volume(VolumeCommand::Ls(a)) => volume::ls(ctx, &a),
        Command::Volume(VolumeCommand::Inspect(a)) => volume::inspect(ctx, &a),
        Command::Volume(VolumeCommand::Rm(a)) => volume::rm(ctx, &a),
        Command::Volume(VolumeCommand::Prune(a)) => volume::prune(ctx, &a),
        Command::Network(NetworkCommand::Create(a)) => network::create(ctx, &a),
        Command::Network(NetworkCommand::Ls(a)) => network::ls(ctx, &a),
        Command::Network(NetworkCommand::Inspect(a)) => network::inspect(ctx, &a),
        Command::Network(NetworkCommand::Connect(a)) => network::connect(ctx, &a),
        Command::Network(NetworkCommand::Disconnect(a)) => network::disconnect(ctx, &a),
        Command::Network(NetworkCommand::Rm(a)) => network::rm(ctx, &a),
        Command::Network(NetworkCommand::Prune(a)) => network::prune(ctx, &a),
    }
}
