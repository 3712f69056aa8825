//! `berth run`: create a container from a local image and run it in the foreground.
//!
//! Layout (one directory per container, like Docker's):
//! ```text
//! <data-root>/containers/<id>/
//!   config.json    the OCI runtime spec (the directory is an OCI bundle)
//!   rootfs/        overlay mount point (lower: the image's layers, top first)
//!   upper/ work/   overlay upper and work directories
//!   hostname hosts resolv.conf   bind-mounted at /etc/…
//!   state.json     id, name, image, status, exit code (written when the container exits)
//! ```
//! `--rm` removes the directory after the exit. Exit status follows Docker: the container's,
//! 125 when Berth fails, 126/127 when the command cannot be invoked / is not found.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::rootfs::mount_overlay;
use berth_runtime::run::{RunError, EXIT_RUNTIME};
use berth_runtime::spec::{self, Network, RunOptions};
use berth_runtime::syscall::{LinuxSyscall, MntFlags, Syscall};
use oci_spec::image::ImageConfiguration;

use crate::cli::RunArgs;
use crate::context::Ctx;

/// Docker's `/etc/hosts` for a container without a bridge network.
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Runs the container; `berth run`'s exit status is the container's (Docker's 125/126/127 when
/// it could not be run), passed to `main` as [`crate::Exit`].
///
/// # Errors
/// A non-zero container status, or the reason it could not run, with its exit code attached.
pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<()> {
    match run_container(ctx, args) {
        Ok(0) => Ok(()),
        Ok(code) => Err(crate::Exit(u8::try_from(code).unwrap_or(255)).into()),
        Err(e) => {
            let code = e
                .downcast_ref::<RunError>()
                .map_or(EXIT_RUNTIME, RunError::exit_code);
            Err(e.context(crate::Exit(u8::try_from(code).unwrap_or(125))))
        }
    }
}

/// A new container ID: 64 hex digits, like Docker's.
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Refuses a `--name` another container already has.
fn check_name(containers: &Path, name: &str) -> anyhow::Result<()> {
    let Ok(entries) = fs_err::read_dir(containers) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let state = e.path().join("state.json");
        let Ok(text) = fs_err::read_to_string(&state) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if v["Name"] == name {
            anyhow::bail!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\"",
                v["Id"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The container directory, unmounted and (with `--rm`) removed on drop.
struct ContainerDir {
    dir: PathBuf,
    mounted: bool,
    remove: bool,
}

impl ContainerDir {
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.mounted {
            // Lazy: a process that still holds the mount must not keep berth from cleaning up.
            if LinuxSyscall
                .umount2(&self.rootfs(), MntFlags::MNT_DETACH)
                .is_err()
            {
                // Never remove through a live mount.
                return;
            }
        }
        if self.remove {
            let _ = fs_err::remove_dir_all(&self.dir);
        }
    }
}

fn run_container(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<i32> {
    let image = super::find_image(ctx, &args.image)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&ctx.store.read_blob(&image.id.parse()?)?)
            .with_context(|| format!("cannot read the config of image `{}`", args.image))?;
    let containers = ctx.store.root().join("containers");
    if let Some(name) = &args.name {
        check_name(&containers, name)?;
    }
    let id = new_id();
    let network = if args.network == "host" {
        Network::Host
    } else {
        Network::None
    };
    let hostname = match (&args.hostname, network) {
        (Some(h), _) => h.clone(),
        (None, Network::Host) => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        (None, Network::None) => id[..12].to_owned(),
    };
    let mut guard = ContainerDir {
        dir: containers.join(&id),
        mounted: false,
        remove: true,
    };
    let dir = guard.dir.clone();
    for sub in ["rootfs", "upper", "work"] {
        fs_err::create_dir_all(dir.join(sub))?;
    }
    let lowers: Vec<PathBuf> = image
        .layers
        .iter()
        .rev()
        .map(|l| Ok(ctx.store.layer_path(&l.diff_id.parse()?).join("fs")))
        .collect::<anyhow::Result<_>>()?;
    mount_overlay(
        &LinuxSyscall,
        &lowers,
        &dir.join("upper"),
        &dir.join("work"),
        &guard.rootfs(),
    )
    .context("cannot mount the container's root file system")?;
    guard.mounted = true;

    fs_err::write(dir.join("hostname"), format!("{hostname}\n"))?;
    match network {
        Network::Host => fs_err::copy("/etc/hosts", dir.join("hosts")).map(drop)?,
        Network::None => fs_err::write(dir.join("hosts"), HOSTS)?,
    }
    fs_err::write(
        dir.join("resolv.conf"),
        fs_err::read("/etc/resolv.conf").unwrap_or_default(),
    )?;
    let env = args
        .env
        .iter()
        .filter_map(|e| spec::resolve_env_flag(e, |k| std::env::var(k).ok()))
        .collect();
    let opts = RunOptions {
        hostname,
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        entrypoint: args.entrypoint.clone(),
        command: args.command.clone(),
        network,
        etc_files: vec![
            (dir.join("hostname"), "/etc/hostname"),
            (dir.join("hosts"), "/etc/hosts"),
            (dir.join("resolv.conf"), "/etc/resolv.conf"),
        ],
    };
    let spec = spec::build(config.config().as_ref(), &opts, &guard.rootfs())?;
    spec.save(dir.join("config.json"))?;
    guard.remove = args.rm;
    let mut state = serde_json::json!({
        "Id": id,
        "Name": args.name.clone().unwrap_or_default(),
        "Image": image.id,
        "Status": "running",
        "StartedAt": chrono::Utc::now().to_rfc3339(),
    });
    fs_err::write(dir.join("state.json"), serde_json::to_vec_pretty(&state)?)?;

    let result = berth_runtime::run::run(&dir, &spec);
    let exit_code = match &result {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    if !args.rm {
        state["Status"] = "exited".into();
        state["ExitCode"] = exit_code.into();
        state["FinishedAt"] = chrono::Utc::now().to_rfc3339().into();
        fs_err::write(dir.join("state.json"), serde_json::to_vec_pretty(&state)?)?;
    }
    Ok(result?)
}
