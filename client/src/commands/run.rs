//! `berth run` and `berth create`: parse the flags into [`CreateOptions`], find the image,
//! then [`container::create`] and either hand the container to a monitor
//! ([`container::start`] for `-d`, [`container::attach`] for `-i`/`-t`) or run it in this
//! process ([`container::foreground`]).
//!
//! The container runs in the cgroup `/berth/<id>` of each hierarchy, limited by `-m`, `--cpus`
//! and `--pids-limit`, parsed as Docker does ([`limits`]; a bad value exits 125).
//! The network (`--network`, default `bridge`; `-p`, `-P`) is set up by the process that owns
//! the container, through [`crate::network`].
//! `--rm` removes the directory after the exit. Exit status follows Docker: the container's,
//! 125 when Berth fails, 126/127 when the command cannot be invoked / is not found.

use anyhow::Context as _;
use berth_runtime::spec::ResourceLimits;
use oci_spec::image::ImageConfiguration;

use crate::cli::RunArgs;
use crate::container::create::{CreateOptions, NetworkOptions};
use crate::container::{self};
use crate::context::Ctx;

/// Runs the container; `berth run`'s exit status is the container's (Docker's 125/126/127 when
/// it could not be run), passed to `main` as [`crate::Exit`].
///
/// # Errors
/// A non-zero container status, or the reason it could not run, with its exit code attached.
pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<()> {
    super::exit_with(run_container_as(ctx, args, false))
}

/// `invalid argument "VALUE" for "FLAG" flag: WHY`, Docker's (pflag's) wording.
fn invalid(value: &str, flag: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("invalid argument \"{value}\" for \"{flag}\" flag: {why}")
}

/// Docker's `RAMInBytes` (go-units, [`crate::format::ram_in_bytes`]), e.g. `64m`, `1.5GB`,
/// `512KiB`.
///
/// # Errors
/// Anything else, named after the flag.
pub fn parse_bytes(value: &str, flag: &str) -> anyhow::Result<i64> {
    crate::format::ram_in_bytes(value)
        .ok_or_else(|| invalid(value, flag, format!("invalid size: '{value}'")))
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

/// `-m`, `--memory-swap`, `--cpus`, `-c/--cpu-shares`, `--pids-limit` with Docker's rules: `0`
/// means no limit; memory at least 6 MiB; memory + swap at least the memory, and only with a
/// memory limit (`-1`: unlimited swap); CPUs from 0.01 to the host's count; shares below 2 are
/// the kernel's minimum, 2; a negative pids limit is unlimited.
///
/// # Errors
/// A value Docker refuses, with the flag named.
pub fn limits(args: &RunArgs) -> anyhow::Result<ResourceLimits> {
    limits_of(&args.resources)
}

/// [`limits`] of any command's resource flags (`update`'s too).
///
/// # Errors
/// As [`limits`].
pub fn limits_of(args: &crate::cli::ResourceArgs) -> anyhow::Result<ResourceLimits> {
    let mut out = ResourceLimits::default();
    if let Some(v) = args.memory.as_deref() {
        let bytes = parse_bytes(v, "-m, --memory")?;
        if bytes != 0 && bytes < 6 << 20 {
            anyhow::bail!("Minimum memory limit allowed is 6MB");
        }
        out.memory = (bytes > 0).then_some(bytes);
    }
    if let Some(v) = args.memory_swap.as_deref().filter(|v| !v.is_empty()) {
        let total = if v == "-1" {
            -1
        } else {
            parse_bytes(v, "--memory-swap")?
        };
        match (total, out.memory) {
            (0 | -1, None) => {}
            (_, None) => anyhow::bail!(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            ),
            (t, Some(m)) if t > 0 && t < m => anyhow::bail!(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            ),
            (0, Some(_)) => {}
            (t, Some(_)) => out.memory_swap = Some(t),
        }
    }
    if let Some(v) = args.cpu_shares.as_deref() {
        let shares: i64 = v.parse().map_err(|_| {
            invalid(
                v,
                "-c, --cpu-shares",
                format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"),
            )
        })?;
        // moby: 0 is the default (1024); the kernel takes 2 to 262144.
        out.cpu_shares = match shares {
            0 => None,
            s if s < 0 => anyhow::bail!("invalid CPU shares {s}: it must not be negative"),
            s => Some(u64::try_from(s.clamp(2, 262_144)).unwrap_or(1024)),
        };
    }
    if let Some(v) = args.cpus.as_deref() {
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
    if let Some(v) = args.pids_limit.as_deref() {
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

/// `--cidfile`: created (never overwritten) before the container, removed again unless the
/// container's ID was written to it (docker/cli `container/create.go`, `cidFile`).
struct CidFile {
    path: std::path::PathBuf,
    file: Option<fs_err::File>,
}

impl CidFile {
    /// Creates the file; refuses one that exists, with Docker's message.
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "container ID file found, make sure the other container isn't running or delete {}",
                path.display()
            );
        }
        let file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .context("failed to create the container ID file")?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// Writes the ID (no newline, as Docker) and keeps the file; on failure it is removed
    /// when `self` drops.
    fn write(mut self, id: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        if let Some(file) = self.file.as_mut() {
            file.write_all(id.as_bytes())
                .and_then(|()| file.flush())
                .context("failed to write the container ID to the file")?;
        }
        // Written: keep it.
        self.file = None;
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs_err::remove_file(&self.path);
        }
    }
}

/// Prints the ID of a container `run -d` started, flushed at once.
fn print_id(id: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{id}")?;
    stdout.flush()
}

/// `run`'s and `create`'s flags as the container layer takes them, parsed and checked in
/// Docker's order (restart policy, `--rm`, limits, capabilities, volumes).
///
/// # Errors
/// Docker's message for the first bad flag.
pub fn create_options(
    args: &RunArgs,
    daemon: &berth_config::daemon::DaemonConfig,
) -> anyhow::Result<CreateOptions> {
    let restart_policy = container::RestartPolicy::parse(&args.restart)?;
    if args.rm && !restart_policy.is_none() {
        anyhow::bail!("Conflicting options: --restart and --rm");
    }
    let limits = limits(args)?;
    let log_config = container::log_config::LogConfig::new(
        args.log_driver.as_deref(),
        &args.log_opt,
        daemon.log_driver.as_deref(),
        &daemon.log_opts,
    )?;
    let capabilities =
        container::security::capabilities(&args.cap_add, &args.cap_drop, args.privileged)?;
    let mounts = args
        .volumes
        .iter()
        .map(|v| crate::volumes::parse_volume(v))
        .chain(args.mounts.iter().map(|m| crate::volumes::parse_mount(m)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CreateOptions {
        image: args.image.clone(),
        name: args.name.clone(),
        auto_remove: args.rm,
        tty: args.tty,
        interactive: args.interactive,
        restart_policy,
        limits,
        log_config,
        capabilities,
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        security_opt: args.security_opt.clone(),
        ulimits: args.ulimit.clone(),
        devices: args.device.clone(),
        mounts,
        binds: args.volumes.clone(),
        env_files: args.env_file.clone(),
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        entrypoint: args.entrypoint.clone(),
        command: args.command.clone(),
        hostname: args.hostname.clone(),
        network: NetworkOptions {
            network: args.network.clone(),
            publish: args.publish.clone(),
            publish_all: args.publish_all,
            expose: args.expose.clone(),
            aliases: args.network_alias.clone(),
            ip: args.ip.clone(),
            links: args.link.clone(),
            dns: args.dns.clone(),
            dns_search: args.dns_search.clone(),
            dns_options: args.dns_option.clone(),
            add_hosts: args.add_host.clone(),
        },
        read_only: args.read_only,
        tmpfs: container::tmpfs::parse(&args.tmpfs)?,
        labels: labels(&args.label, &args.label_file)?,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        sysctls: container::sysctl::parse(&args.sysctl)?,
        group_add: args.group_add.clone(),
        shm_size: shm_size(args.shm_size.as_deref())?,
        init: args.init,
        namespaces: container::namespaces::Modes::parse(args.uts.as_deref(), args.ipc.as_deref())?,
    })
}

/// `--shm-size` as Docker's CLI and daemon take it: go-units bytes, negative refused, `0` the
/// default.
///
/// # Errors
/// Not a size, or below zero.
pub fn shm_size(value: Option<&str>) -> anyhow::Result<Option<i64>> {
    let Some(v) = value else { return Ok(None) };
    if v.starts_with('-') {
        anyhow::bail!("Error response from daemon: SHM size can not be less than 0");
    }
    let bytes = parse_bytes(v, "--shm-size")?;
    Ok((bytes > 0).then_some(bytes))
}

/// `-l`/`--label` and `--label-file` as Docker's CLI reads them: the files first, then the
/// flags, a later value for a key winning; `KEY` alone is an empty label. Files use the env
/// file format (`crate::envfile`), but a bare `KEY` is kept rather than looked up.
///
/// # Errors
/// A label without a name (Docker's `opts.ValidateLabel`), an unreadable or invalid file.
pub fn labels(
    flags: &[String],
    files: &[std::path::PathBuf],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut all = Vec::new();
    for path in files {
        let bytes = crate::envfile::read_bounded(path)?;
        let lines = crate::envfile::parse(&bytes, &|_| Some(String::new())).map_err(|source| {
            crate::envfile::EnvFileError::Invalid {
                path: path.clone(),
                source,
            }
        })?;
        all.extend(lines);
    }
    for l in flags {
        let key = l.split_once('=').map_or(l.as_str(), |(k, _)| k);
        if key.trim().is_empty() {
            return Err(invalid(
                l,
                "-l, --label",
                format!("invalid label '{l}': empty name"),
            ));
        }
        all.push(l.clone());
    }
    Ok(all
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l, String::new()),
        })
        .collect())
}

/// Checks the flags, creates the container, then leaves it created (`create_only`), starts it
/// under a monitor (`-d`; attached with `-i`/`-t`) or runs it here; the container's exit code.
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
    let opts = create_options(args, &ctx.daemon)?;
    if let Some(s) = &args.stop_signal {
        container::parse_signal(s)?;
    }
    let image = super::find_image(ctx, &args.image)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&ctx.store.read_blob(&image.id.parse()?)?)
            .with_context(|| format!("cannot read the config of image `{}`", args.image))?;
    // Before the container exists, as Docker: an existing file stops `run` early.
    let cidfile = args.cidfile.as_deref().map(CidFile::create).transpose()?;
    let created = container::create::create(&ctx.printer, &ctx.store, &opts, &image, &config)?;
    let id = created.id().to_owned();
    if let Some(f) = cidfile {
        f.write(&id)?;
    }
    if create_only {
        // `start` mounts it again.
        created.hand_over(false)?;
        ctx.printer.data(&id);
        return Ok(0);
    }
    if args.detach {
        created.hand_over(true)?;
        container::start::start_detached(ctx.store.root(), &id)?;
        print_id(&id)?;
        return Ok(0);
    }
    if args.interactive || args.tty {
        let attach = crate::attach::Options {
            stdin: args.interactive,
            stdin_once: args.interactive,
            tty: args.tty,
            detach_keys: crate::tty::parse_detach_keys(&args.detach_keys)?,
        };
        let dir = created.hand_over(true)?;
        let ended = container::attach::start_attached(&dir, ctx.store.root(), &id, &attach)?;
        return Ok(match ended {
            container::attach::Attached::Exited(code) => code,
            container::attach::Attached::Detached => 0,
        });
    }
    Ok(container::foreground::run(created)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::config::{load_create_config, save_create_config, CreateConfig};
    use crate::container::State;

    fn run_args_with(flags: &[&str], command: &[&str]) -> RunArgs {
        let mut argv = vec!["berth", "run"];
        argv.extend_from_slice(flags);
        argv.push("img");
        argv.extend_from_slice(command);
        match crate::cli::Cli::try_parse_argv(argv).unwrap().command {
            crate::cli::Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn image() -> oci_spec::image::Config {
        serde_json::from_value(serde_json::json!({
            "Entrypoint": ["/entry"],
            "Cmd": ["serve"],
            "User": "app",
            "WorkingDir": "/srv",
            "Labels": {"team": "blue"},
        }))
        .unwrap()
    }

    fn saved(flags: &[&str], command: &[&str]) -> CreateConfig {
        let t = tempfile::tempdir().unwrap();
        let opts = create_options(&run_args_with(flags, command), &Default::default()).unwrap();
        save_create_config(t.path(), &opts, Some(&image())).unwrap();
        load_create_config(t.path(), &State::default())
    }

    #[test]
    fn create_config_follows_dockers_entrypoint_and_cmd_rules() {
        let c = saved(&[], &[]);
        assert_eq!(c.entrypoint, Some(vec!["/entry".to_owned()]));
        assert_eq!(c.cmd, Some(vec!["serve".to_owned()]));
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("app", "/srv"));
        assert_eq!(c.labels["team"], "blue");
        assert_eq!((c.binds, c.network_mode.as_str()), (None, "bridge"));
        let c = saved(&["--entrypoint", "sh", "-u", "1:2", "-w", "/x"], &[]);
        assert_eq!((c.entrypoint, c.cmd), (Some(vec!["sh".to_owned()]), None));
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("1:2", "/x"));
        let c = saved(&["-v", "/a:/b"], &["echo", "hi"]);
        assert_eq!(c.cmd, Some(vec!["echo".to_owned(), "hi".to_owned()]));
        assert_eq!(c.binds, Some(vec!["/a:/b".to_owned()]));
        let c = saved(&["--entrypoint", ""], &["ls"]);
        assert_eq!((c.entrypoint, c.cmd), (None, Some(vec!["ls".to_owned()])));
    }

    #[test]
    fn labels_follow_dockers_cli() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("l");
        fs_err::write(&f, "x=\"q v\"\n# c\ny\nz=file\n").unwrap();
        let l = labels(&["z=flag".into(), "k".into(), "e=".into()], &[f]).unwrap();
        let want: Vec<(&str, &str)> = vec![
            ("e", ""),
            ("k", ""),
            ("x", "\"q v\""),
            ("y", ""),
            ("z", "flag"),
        ];
        let got: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
        let e = labels(&[" =v".into()], &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \" =v\" for \"-l, --label\" flag: invalid label ' =v': empty name"
        );
        // The image's labels are kept under the flags'.
        let c = saved(&["-l", "team=red", "-l", "tier=web"], &[]);
        assert_eq!(
            (c.labels["team"].as_str(), c.labels["tier"].as_str()),
            ("red", "web")
        );
    }

    #[test]
    fn stop_signal_defaults_to_the_images() {
        let image: oci_spec::image::Config =
            serde_json::from_value(serde_json::json!({"StopSignal": "SIGQUIT"})).unwrap();
        let config = |flags: &[&str]| {
            let t = tempfile::tempdir().unwrap();
            let opts = create_options(&run_args_with(flags, &[]), &Default::default()).unwrap();
            save_create_config(t.path(), &opts, Some(&image)).unwrap();
            load_create_config(t.path(), &State::default())
        };
        let c = config(&[]);
        assert_eq!(
            (c.stop_signal.as_deref(), c.stop_timeout),
            (Some("SIGQUIT"), None)
        );
        let c = config(&["--stop-signal", "USR1", "--stop-timeout", "-1"]);
        assert_eq!(
            (c.stop_signal.as_deref(), c.stop_timeout),
            (Some("USR1"), Some(-1))
        );
    }

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
                ..Default::default()
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
                ..Default::default()
            }
        );
        assert_eq!(limits(&run_args(&[])).unwrap(), ResourceLimits::default());
        // Memory + swap, and CPU shares.
        let l = limits(&run_args(&[
            "-m",
            "32m",
            "--memory-swap",
            "48m",
            "-c",
            "512",
        ]))
        .unwrap();
        assert_eq!((l.memory_swap, l.cpu_shares), (Some(48 << 20), Some(512)));
        let l = limits(&run_args(&[
            "-m",
            "32m",
            "--memory-swap",
            "-1",
            "--cpu-shares",
            "1",
        ]));
        assert_eq!(
            l.map(|l| (l.memory_swap, l.cpu_shares)).unwrap(),
            (Some(-1), Some(2))
        );
        let l = limits(&run_args(&["--memory-swap", "-1", "-c", "0"])).unwrap();
        assert_eq!(l, ResourceLimits::default());
        for (flags, want) in [
            (&["-m", "5m"][..], "Minimum memory limit allowed is 6MB"),
            (&["--cpus", "0.001"][..], "Range of CPUs is from 0.01"),
            (&["--cpus", "-1"][..], "Range of CPUs is from 0.01"),
            (&["-m", "-1"][..], "invalid size: '-1'"),
            (&["--pids-limit", "1.5"][..], "for \"--pids-limit\" flag"),
            (
                &["--memory-swap", "64m"][..],
                "You should always set the Memory limit when using Memoryswap limit",
            ),
            (
                &["-m", "64m", "--memory-swap", "32m"][..],
                "Minimum memoryswap limit should be larger than memory limit",
            ),
            (&["-c", "x"][..], "for \"-c, --cpu-shares\" flag"),
            (&["-c", "-5"][..], "must not be negative"),
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
