//! `berth run`: create a container from a local image and run it in the foreground.
//!
//! Layout (one directory per container, like Docker's):
//! ```text
//! <data-root>/containers/<id>/
//!   config.json    the OCI runtime spec (the directory is an OCI bundle)
//!   rootfs/        overlay mount point (lower: the image's layers, top first)
//!   upper/ work/   overlay upper and work directories
//!   hostname hosts resolv.conf   bind-mounted at /etc/…
//!   state.json     id, name, image, status, owner and init PIDs, exit code ([`crate::container::state`])
//!   lock           flock guarding state.json
//!   <id>-json.log  with `-d`: stdout/stderr in Docker's json-file format
//! ```
//! With `-d` a monitor process owns the container ([`super::monitor`]); `run` prints the ID
//! once the container's program runs.
//! The container runs in the cgroup `/berth/<id>` of each hierarchy, limited by `-m`, `--cpus`
//! and `--pids-limit`, parsed as Docker does ([`limits`]; a bad value exits 125).
//! The network (`--network`, default `bridge`; `-p`, `-P`) is set up by the process that owns
//! the container, through [`crate::network`].
//! `--rm` removes the directory after the exit. Exit status follows Docker: the container's,
//! 125 when Berth fails, 126/127 when the command cannot be invoked / is not found.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::rootfs::{mount_overlay, RootfsError};
use berth_runtime::run::RunError;
use berth_runtime::spec::{self, Network, ResourceLimits, RunOptions};
use berth_runtime::syscall::{Errno, LinuxSyscall, MntFlags, Syscall};
use oci_spec::image::ImageConfiguration;

use crate::cli::RunArgs;
use crate::container::{self, State, Status};
use crate::context::Ctx;
use crate::procfs::ProcessId;

/// `run`'s network flags, for [`crate::network::settings_for_run`].
fn network_flags<'a>(args: &'a RunArgs, name: &'a str) -> crate::network::Flags<'a> {
    crate::network::Flags {
        network: &args.network,
        publish: &args.publish,
        publish_all: args.publish_all,
        expose: &args.expose,
        hostname: args.hostname.as_deref(),
        name,
        aliases: &args.network_alias,
        links: &args.link,
        dns: &args.dns,
        dns_search: &args.dns_search,
        dns_options: &args.dns_option,
        add_hosts: &args.add_host,
    }
}

/// Runs the container; `berth run`'s exit status is the container's (Docker's 125/126/127 when
/// it could not be run), passed to `main` as [`crate::Exit`].
///
/// # Errors
/// A non-zero container status, or the reason it could not run, with its exit code attached.
pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<()> {
    super::exit_with(run_container(ctx, args))
}

/// A new container ID: 64 hex digits, like Docker's.
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Refuses a `--name` Docker would refuse or another container already has; the caller holds
/// the names lock.
fn check_name(data_root: &Path, name: &str) -> Result<(), container::names::NameError> {
    container::names::check_valid(name, name)?;
    container::names::check_free(data_root, name.strip_prefix('/').unwrap_or(name), None)
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

/// `invalid argument "VALUE" for "FLAG" flag: WHY`, Docker's (pflag's) wording.
fn invalid(value: &str, flag: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("invalid argument \"{value}\" for \"{flag}\" flag: {why}")
}

/// Docker's `RAMInBytes` (go-units): a decimal number, an optional `b`/`k`/`m`/`g`/`t`/`p`
/// (any case, powers of 1024) and an optional `b`/`ib` suffix, e.g. `64m`, `1.5GB`, `512KiB`.
///
/// # Errors
/// Anything else, named after the flag.
pub fn parse_bytes(value: &str, flag: &str) -> anyhow::Result<i64> {
    let bad = || invalid(value, flag, format!("invalid size: '{value}'"));
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let valid_number = !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && !number.contains("..");
    if !valid_number {
        return Err(bad());
    }
    let (prefix, suffix) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") {
        return Err(bad());
    }
    let shift = match prefix {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => 50,
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let bytes = (n * (1u64 << shift) as f64) as i64;
    Ok(bytes)
}

/// `--cpus`: a decimal number of CPUs as billionths (Docker's `NanoCPUs`).
///
/// # Errors
/// Not a number, more than nine decimals.
pub fn parse_cpus(value: &str) -> anyhow::Result<i64> {
    let bad = || {
        invalid(
            value,
            "--cpus",
            format!("failed to parse {value} as a rational number"),
        )
    };
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 9 {
        return Err(invalid(value, "--cpus", "value is too precise"));
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    let nano = int
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(bad)?;
    Ok(if negative { -nano } else { nano })
}

/// `-m`, `--cpus`, `--pids-limit` with Docker's rules: `0` means no limit; memory at least
/// 6 MiB; CPUs from 0.01 to the host's count; a negative pids limit is unlimited.
///
/// # Errors
/// A value Docker refuses, with the flag named.
pub fn limits(args: &RunArgs) -> anyhow::Result<ResourceLimits> {
    let mut out = ResourceLimits::default();
    if let Some(v) = &args.memory {
        let bytes = parse_bytes(v, "-m, --memory")?;
        if bytes != 0 && bytes < 6 << 20 {
            anyhow::bail!("Minimum memory limit allowed is 6MB");
        }
        out.memory = (bytes > 0).then_some(bytes);
    }
    if let Some(v) = &args.cpus {
        let nano = parse_cpus(v)?;
        let ncpu = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let max = i64::try_from(ncpu).unwrap_or(i64::MAX / 1_000_000_000) * 1_000_000_000;
        if nano != 0 && !(10_000_000..=max).contains(&nano) {
            anyhow::bail!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            );
        }
        out.nano_cpus = (nano > 0).then_some(nano);
    }
    if let Some(v) = &args.pids_limit {
        let n: i64 = v.parse().map_err(|_| {
            invalid(
                v,
                "--pids-limit",
                format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"),
            )
        })?;
        out.pids_limit = match n {
            0 => None,
            n if n < 0 => Some(-1),
            n => Some(n),
        };
    }
    Ok(out)
}

/// Docker's `-t`: `process.terminal` and `TERM=xterm` unless the environment sets it.
fn set_terminal(spec: &mut oci_spec::runtime::Spec) {
    if let Some(mut p) = spec.process().clone() {
        p.set_terminal(Some(true));
        let mut env = p.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        p.set_env(Some(env));
        spec.set_process(Some(p));
    }
}

/// `berth create`: sets the container up like `run` and prints its ID without starting it.
///
/// # Errors
/// As `run` before the start.
pub fn create(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<()> {
    if args.detach {
        anyhow::bail!("unknown shorthand flag: 'd' in -d");
    }
    super::exit_with(run_container_as(ctx, args, true))
}

/// Prints the ID of a container `run -d` started, flushed at once.
fn print_id(id: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{id}")?;
    stdout.flush()
}

fn run_container(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<i32> {
    run_container_as(ctx, args, false)
}

fn run_container_as(ctx: &Ctx, args: &RunArgs, create_only: bool) -> anyhow::Result<i32> {
    super::run_checks::check(args)?;
    if !create_only
        && !args.detach
        && args.tty
        && args.interactive
        && !crate::tty::is_tty(std::io::stdin())
    {
        // Docker's check: raw mode and detach keys need a terminal on our side.
        return Err(anyhow::anyhow!("the input device is not a TTY").context(crate::Exit(1)));
    }
    let restart_policy = container::RestartPolicy::parse(&args.restart)?;
    if args.rm && !restart_policy.is_none() {
        anyhow::bail!("Conflicting options: --restart and --rm");
    }
    let limits = limits(args)?;
    let caps = super::run_security::capabilities(&args.cap_add, &args.cap_drop, args.privileged)?;
    let mount_specs = args
        .volumes
        .iter()
        .map(|v| crate::volumes::parse_volume(v))
        .chain(args.mounts.iter().map(|m| crate::volumes::parse_mount(m)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let image = super::find_image(ctx, &args.image)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&ctx.store.read_blob(&image.id.parse()?)?)
            .with_context(|| format!("cannot read the config of image `{}`", args.image))?;
    let containers = ctx.store.root().join("containers");
    // Held until the name is in state.json, so a concurrent `run`/`rename` cannot take it.
    let names_lock = container::lock_names(ctx.store.root())?;
    if let Some(name) = &args.name {
        check_name(ctx.store.root(), name)?;
    }
    let name = args
        .name
        .as_deref()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned());
    let name = name.unwrap_or_else(|| {
        let all = crate::container::list(ctx.store.root());
        crate::container::generate_name(&|n| all.iter().any(|(_, s)| s.name == n))
    });
    // Read before anything exists on disk, so a bad or endless file leaves nothing behind.
    let host_env = |k: &str| std::env::var(k).ok();
    let net = crate::network::settings_for_run(
        &ctx.printer,
        ctx.store.root(),
        &network_flags(args, &name),
        &config,
    )?;
    // `--link`'s variables first: `-e` and `--env-file` may override them.
    let env = net
        .env
        .iter()
        .cloned()
        .chain(crate::envfile::read_all(&args.env_file, &host_env)?)
        .chain(
            args.env
                .iter()
                .filter_map(|e| spec::resolve_env_flag(e, host_env)),
        )
        .collect();
    let id = new_id();
    let (network, network_settings) = (net.mode, net.settings.clone());
    let hostname = match (&args.hostname, network, &net.hostname) {
        (_, _, Some(theirs)) => theirs.clone(),
        (Some(h), _, None) => h.clone(),
        (None, Network::Host, None) => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        (None, Network::None | Network::Bridge, None) => id[..12].to_owned(),
    };
    let mut guard = ContainerDir {
        dir: containers.join(&id),
        mounted: false,
        remove: true,
    };
    let dir = guard.dir.clone();
    fs_err::create_dir_all(&dir)?;
    // Before anything is mounted: if this process dies before `state.json` exists, the next
    // berth invocation finds the directory and removes it (`crate::reaper`).
    crate::reaper::mark_creating(&dir)?;
    for sub in ["rootfs", "upper", "work"] {
        fs_err::create_dir_all(dir.join(sub))?;
    }
    let lowers: Vec<PathBuf> = image
        .layers
        .iter()
        .rev()
        .map(|l| Ok(ctx.store.layer_path(&l.diff_id.parse()?).join("fs")))
        .collect::<anyhow::Result<_>>()?;
    match mount_overlay(
        &LinuxSyscall,
        &lowers,
        &dir.join("upper"),
        &dir.join("work"),
        &guard.rootfs(),
    ) {
        Ok(()) => guard.mounted = true,
        // overlayfs refuses this data root (e.g. it is itself on overlayfs): copy the layers.
        Err(RootfsError::Syscall(e))
            if matches!(
                e.errno(),
                Some(Errno::EINVAL | Errno::ENODEV | Errno::EOPNOTSUPP | Errno::EPERM)
            ) =>
        {
            tracing::debug!("overlayfs unavailable ({e}); copying the image's layers");
            berth_runtime::rootfs_copy::copy_layers(&lowers, &guard.rootfs())
                .context("cannot copy the image's layers into the container's root file system")?;
            fs_err::write(dir.join(container::ROOTFS_COPY_MARKER), "")?;
        }
        Err(e) => return Err(e).context("cannot mount the container's root file system"),
    }

    fs_err::write(dir.join("hostname"), format!("{hostname}\n"))?;
    // A bridge container's address is added to `hosts` once it has one (`network::attach`).
    crate::network::write_etc_files(&dir, &net)?;
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
    let data_root = ctx.store.root();
    let resolved = crate::volumes::resolve(data_root, &guard.rootfs(), &mount_specs)
        .map_err(|e| anyhow::anyhow!("Error response from daemon: {e:#}"))?;
    let volume_names: Vec<String> = resolved.iter().filter_map(|r| r.volume.clone()).collect();
    let built = (|| -> anyhow::Result<_> {
        let mut spec = spec::build(config.config().as_ref(), &opts, &guard.rootfs())?;
        if args.tty {
            set_terminal(&mut spec);
        }
        super::run_security::set_capabilities(&mut spec, &caps)?;
        if args.privileged {
            super::run_security::unconfine(&mut spec);
        }
        super::run_security::apply_security_opts(&mut spec, &args.security_opt)?;
        spec::apply_limits(&mut spec, &format!("/berth/{id}"), &limits)?;
        super::run_ulimit::apply(&mut spec, &args.ulimit)?;
        crate::network::join_netns(&mut spec, &net)?;
        for device in &args.device {
            spec::add_device(&mut spec, device).map_err(|e| match e {
                spec::SpecError::DeviceInfo { .. } => {
                    anyhow::anyhow!("Error response from daemon: {e}")
                }
                e => e.into(),
            })?;
        }
        if args.privileged {
            spec::allow_all_devices(&mut spec)?;
        }
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.extend(crate::volumes::oci_mounts(&resolved)?);
        spec.set_mounts(Some(mounts));
        spec.save(dir.join("config.json"))?;
        super::container_inspect::save_create_config(&dir, args, config.config().as_ref())?;
        Ok(spec)
    })();
    let spec = match built {
        Ok(s) => s,
        Err(e) => {
            // Nothing records them yet: anonymous volumes made for this container go too.
            let _ = crate::volumes::remove_anonymous(data_root, &volume_names);
            return Err(e);
        }
    };
    guard.remove = args.rm;
    let mut state = State {
        id: id.clone(),
        name,
        image: image.id.clone(),
        image_name: args.image.clone(),
        command: spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        status: Status::Created,
        created: crate::timestamp::now_rfc3339(),
        auto_remove: args.rm,
        restart_policy,
        volumes: volume_names.clone(),
        tty: args.tty,
        open_stdin: args.interactive,
        network: Some(network_settings),
        ..State::default()
    };
    if create_only || args.detach || args.interactive || args.tty {
        {
            let lock = container::Lock::take(&dir)?;
            container::save(&dir, &state, &lock)?;
        }
        crate::reaper::done_creating(&dir);
        drop(names_lock);
        if create_only {
            // `start` mounts it again.
            guard.remove = false;
            drop(guard);
            ctx.printer.data(&id);
            return Ok(0);
        }
        // From here on the monitor owns the directory, its mount and its removal.
        guard.mounted = false;
        guard.remove = false;
        if args.detach {
            container::start::start_detached(ctx.store.root(), &id)?;
            print_id(&id)?;
            return Ok(0);
        }
        let opts = crate::attach::Options {
            stdin: args.interactive,
            stdin_once: args.interactive,
            tty: args.tty,
            detach_keys: crate::tty::parse_detach_keys(&args.detach_keys)?,
        };
        let ended = container::attach::start_attached(&dir, ctx.store.root(), &id, &opts)?;
        return Ok(match ended {
            container::attach::Attached::Exited(code) => code,
            container::attach::Attached::Detached => 0,
        });
    }
    state.status = Status::Running;
    state.started_at = Some(crate::timestamp::now_rfc3339());
    state.monitor = ProcessId::of(nix::unistd::getpid().as_raw());
    // This process owns the container: it holds its address and serves its published ports.
    let network = crate::network::attach(&dir, &id, &state.name, state.network.as_mut());
    {
        let lock = container::Lock::take(&dir)?;
        container::save(&dir, &state, &lock)?;
    }
    crate::reaper::done_creating(&dir);
    drop(names_lock);

    // Docker's --sig-proxy: Ctrl-C and friends go to the container, and berth stays to clean up.
    let init = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let proxy = crate::sigproxy::forward(crate::sigproxy::Target::Pid(init.clone()));
    // Pipes, never our own descriptors: the container gets no handle on our terminal.
    let (stdio, relay) = crate::relay::start(false)?;
    let result = match network {
        Ok(net) => {
            let mut prestart = |pid| net.as_ref().map_or(Ok(()), |a| (a.prestart())(pid));
            berth_runtime::run::run_full(&dir, &spec, stdio, &mut prestart, &mut |pid| {
                init.store(pid, std::sync::atomic::Ordering::SeqCst);
                // So `stop`, `kill`, `rm -f`, `top` and `inspect` can reach it.
                let _ = container::update(&dir, |s| s.init = ProcessId::of(pid));
            })
        }
        Err(e) => Err(RunError::Prestart(format!("{e:#}").into())),
    };
    relay.finish();
    if let Some(p) = proxy {
        p.abort();
    }
    crate::network::release(&id);
    let (exit_code, oom_killed) = match &result {
        Ok(exit) => (exit.code, exit.oom_killed),
        Err(e) => (e.exit_code(), false),
    };
    if args.rm {
        // Docker's `--rm` takes the anonymous volumes along once the container is gone.
        drop(guard);
        if !dir.exists() {
            let _ = crate::volumes::remove_anonymous(data_root, &volume_names);
        }
    } else {
        container::update(&dir, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(exit_code);
            s.oom_killed = oom_killed;
            s.finished_at = Some(crate::timestamp::now_rfc3339());
            if let Some(n) = s.network.as_mut() {
                n.forget();
            }
        })?;
    }
    Ok(result?.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_follow_docker_units() {
        for (v, want) in [
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64MB", 64 << 20),
            ("64MiB", 64 << 20),
            ("1g", 1 << 30),
            ("1.5G", 3 << 29),
            ("512k", 512 << 10),
            ("100", 100),
            ("100b", 100),
            ("100B", 100),
            ("2 m", 2 << 20),
        ] {
            assert_eq!(parse_bytes(v, "-m, --memory").unwrap(), want, "{v}");
        }
        for v in [
            "abc", "", "m", "12x", "1.m", ".5m", "-1m", "1mm", "1mbb", "1..2",
        ] {
            let e = parse_bytes(v, "-m, --memory").unwrap_err().to_string();
            assert_eq!(
                e,
                format!("invalid argument \"{v}\" for \"-m, --memory\" flag: invalid size: '{v}'")
            );
        }
    }

    fn run_args(flags: &[&str]) -> RunArgs {
        let mut argv = vec!["berth", "run"];
        argv.extend_from_slice(flags);
        argv.push("img");
        match crate::cli::Cli::try_parse_argv(argv).unwrap().command {
            crate::cli::Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_follow_docker() {
        let l = limits(&run_args(&[
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "10",
        ]))
        .unwrap();
        assert_eq!(
            l,
            ResourceLimits {
                memory: Some(32 << 20),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(10),
            }
        );
        // 0 means no limit; a negative pids limit is unlimited.
        let l = limits(&run_args(&[
            "--memory",
            "0",
            "--cpus",
            "0",
            "--pids-limit",
            "-5",
        ]))
        .unwrap();
        assert_eq!(
            l,
            ResourceLimits {
                memory: None,
                nano_cpus: None,
                pids_limit: Some(-1),
            }
        );
        assert_eq!(limits(&run_args(&[])).unwrap(), ResourceLimits::default());
        for (flags, want) in [
            (&["-m", "5m"][..], "Minimum memory limit allowed is 6MB"),
            (&["--cpus", "0.001"][..], "Range of CPUs is from 0.01"),
            (&["--cpus", "-1"][..], "Range of CPUs is from 0.01"),
            (&["-m", "-1"][..], "invalid size: '-1'"),
            (&["--pids-limit", "1.5"][..], "for \"--pids-limit\" flag"),
        ] {
            let e = limits(&run_args(flags)).unwrap_err().to_string();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }

    #[test]
    fn cpus_are_exact_decimals() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("1").unwrap(), 1_000_000_000);
        assert_eq!(parse_cpus("1.25").unwrap(), 1_250_000_000);
        assert_eq!(parse_cpus(".1").unwrap(), 100_000_000);
        assert_eq!(parse_cpus("-1").unwrap(), -1_000_000_000);
        assert_eq!(parse_cpus("0.000000001").unwrap(), 1);
        for v in ["x", "", ".", "1.2.3", "1e3"] {
            let e = parse_cpus(v).unwrap_err().to_string();
            assert!(e.contains("for \"--cpus\" flag"), "{e}");
        }
        assert!(parse_cpus("0.0000000001")
            .unwrap_err()
            .to_string()
            .contains("too precise"));
    }
}
