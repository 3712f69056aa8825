//! Builds the OCI runtime [`Spec`] for `berth run` from an image config and the run options,
//! following Docker's rules (`specs/docker-cli/container_run.md`, moby's `oci/defaults.go`):
//!
//! - argv: `--entrypoint` replaces the image's `Entrypoint` *and* drops its `Cmd`; otherwise
//!   the command line replaces `Cmd` and is appended to `Entrypoint`.
//! - env: `PATH` (default) and `HOSTNAME` first, then the image's `Env` with `-e` replacing by
//!   key; `-e KEY` takes the host's value or is dropped; `HOME` from passwd when still unset.
//! - user: `-u` or the image's `User`, `uid`/`name` with an optional `:gid`/`:group`, names
//!   resolved from the rootfs's `/etc/passwd` and `/etc/group`.
//! - Docker's default capability set, masked and read-only paths, namespaces, and its default
//!   seccomp profile ([`crate::seccomp`]).
//!
//! - cgroups ([`apply_limits`]): `-m`, `--cpus`, `--pids-limit` as `linux.resources` (moby's
//!   `daemon/oci_linux.go`), in the cgroup `linux.cgroupsPath`.
//! - devices ([`devices`]): Docker's default device cgroup, `--device`, `--privileged`.
//!
//! It reads the rootfs (through [`crate::rootfs::secure_join`]) and, for `--device` and
//! `--privileged`, stats host device nodes; it makes no other system call.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

pub mod devices;

pub use devices::{add_device, allow_all_devices, default_device_rules};

/// Docker's default `PATH` (`oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities (moby `oci/caps/defaults.go`): CapEff `0x00000000a80425fb`.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths Docker hides from the container (moby `oci/defaults.go`).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only (moby `oci/defaults.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Errors building a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither the image nor the command line gives a command.
    #[error("no command specified")]
    NoCommand,
    /// `-u` (or the image's `User`) names no user or group, or an id out of range.
    #[error(transparent)]
    User(#[from] crate::user::UserError),
    /// `--device` is malformed (Docker's CLI reason).
    #[error("invalid argument \"{arg}\" for \"--device\" flag: {reason}")]
    InvalidDevice {
        /// The argument.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--device`'s host path is missing or holds no device (moby's wording).
    #[error("error gathering device information while adding custom device \"{path}\": {reason}")]
    DeviceInfo {
        /// The host path.
        path: String,
        /// `no such file or directory`, `not a device node`, ….
        reason: String,
    },
    /// oci-spec refused a value.
    #[error("invalid OCI runtime spec")]
    Oci(#[from] oci_spec::OciSpecError),
    /// The seccomp profile could not be built.
    #[error("invalid seccomp profile")]
    Seccomp(#[from] crate::seccomp::SeccompError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SpecError>;

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A new network namespace with only `lo` (up).
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace, which the caller connects to a bridge before the container's
    /// program runs ([`crate::network::connect`] from a prestart hook of
    /// [`crate::run::run_with_prestart`]).
    Bridge,
}

/// What `berth run` was asked for, beyond the image.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `-h`: the container's hostname.
    pub hostname: String,
    /// `-e`, in order, already resolved (see [`resolve_env_flag`]).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--entrypoint` (`Some("")` clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// `COMMAND [ARG...]`.
    pub command: Vec<String>,
    /// `--network`.
    pub network: Network,
    /// Host files bind-mounted at `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`.
    pub etc_files: Vec<(PathBuf, &'static str)>,
}

/// The namespace a sysctl belongs to, as runc lists them: IPC (System V IPC and POSIX message
/// queues), network (`net.*`) or UTS (host and domain name); `None` for the rest.
/// Written without that namespace of its own, such a sysctl would change the host's value.
#[must_use]
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// `berth run`'s resource flags, already parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `-m`: bytes (`> 0`).
    pub memory: Option<i64>,
    /// `--cpus` in billionths of a CPU (Docker's `NanoCPUs`, `> 0`).
    pub nano_cpus: Option<i64>,
    /// `--pids-limit`: `> 0`, or `-1` for unlimited.
    pub pids_limit: Option<i64>,
    /// `--memory-swap`: memory + swap in bytes (`-1`: unlimited swap); without it, twice
    /// `memory`.
    pub memory_swap: Option<i64>,
    /// `-c, --cpu-shares`: the CPU weight against other containers (`> 0`; 1024 is the default).
    pub cpu_shares: Option<u64>,
}

/// CFS period for `--cpus`, µs (moby's default).
pub const CPU_PERIOD: u64 = 100_000;

/// Puts the container in cgroup `cgroups_path` with `limits` as `linux.resources`: memory with
/// `--memory-swap`, or swap of the same size again (Docker without it: memory + swap =
/// 2 × memory), `--cpus` as a CFS quota per 100 ms period, `--cpu-shares`, `--pids-limit`.
///
/// # Errors
/// oci-spec refusing a value.
pub fn apply_limits(spec: &mut Spec, cgroups_path: &str, limits: &ResourceLimits) -> Result<()> {
    // On a new spec (no limits yet; the device rules of `build` are kept) merging is setting.
    merge_limits(spec, limits)?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_cgroups_path(Some(PathBuf::from(cgroups_path)));
    spec.set_linux(Some(linux));
    Ok(())
}

/// `update`: the limits `limits` gives replace the spec's, the others stay. Memory + swap is
/// the one given, else the current one while it still holds the new memory limit (or is
/// unlimited), else twice the new memory, as at `run`.
///
/// # Errors
/// oci-spec refusing a value.
pub fn merge_limits(spec: &mut Spec, limits: &ResourceLimits) -> Result<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    if limits.memory.is_some() || limits.memory_swap.is_some() {
        let current = (*resources.memory()).unwrap_or_default();
        let memory = limits.memory.or(current.limit());
        let swap = match (limits.memory_swap, memory, current.swap()) {
            (Some(s), _, _) => Some(s),
            (None, Some(m), Some(s)) if s == -1 || s >= m => Some(s),
            (None, Some(m), _) => Some(m.saturating_mul(2)),
            (None, None, s) => s,
        };
        let mut b = LinuxMemoryBuilder::default();
        if let Some(m) = memory {
            b = b.limit(m);
        }
        if let Some(s) = swap {
            b = b.swap(s);
        }
        resources.set_memory(Some(b.build()?));
    }
    if limits.nano_cpus.is_some() || limits.cpu_shares.is_some() {
        let current = resources.cpu().clone().unwrap_or_default();
        let mut b = LinuxCpuBuilder::default();
        if let Some(n) = limits.nano_cpus {
            // moby: quota = NanoCPUs * period / 1e9.
            let quota = i64::try_from(i128::from(n) * i128::from(CPU_PERIOD) / 1_000_000_000)
                .unwrap_or(i64::MAX);
            b = b.quota(quota).period(CPU_PERIOD);
        } else if let (Some(q), Some(p)) = (current.quota(), current.period()) {
            b = b.quota(q).period(p);
        }
        if let Some(s) = limits.cpu_shares.or(current.shares()) {
            b = b.shares(s);
        }
        resources.set_cpu(Some(b.build()?));
    }
    if let Some(p) = limits.pids_limit {
        resources.set_pids(Some(LinuxPidsBuilder::default().limit(p).build()?));
    }
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    Ok(())
}

/// Docker's `-e KEY` rule: `KEY=VALUE` stays; a bare `KEY` takes the host's value, or is
/// dropped when the host has none.
pub fn resolve_env_flag(arg: &str, host: impl Fn(&str) -> Option<String>) -> Option<String> {
    if arg.contains('=') {
        Some(arg.to_owned())
    } else {
        host(arg).map(|v| format!("{arg}={v}"))
    }
}

/// The process's argv by Docker's `Entrypoint`/`Cmd` rules.
///
/// # Errors
/// [`SpecError::NoCommand`] when the result is empty.
pub fn argv(
    image: Option<&ImageConfig>,
    entrypoint: Option<&str>,
    command: &[String],
) -> Result<Vec<String>> {
    let mut out: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_owned()],
        None => image
            .and_then(|c| c.entrypoint().clone())
            .unwrap_or_default(),
    };
    if !command.is_empty() {
        out.extend(command.iter().cloned());
    } else if entrypoint.is_none() {
        out.extend(image.and_then(|c| c.cmd().clone()).unwrap_or_default());
    }
    if out.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(out)
}

/// Replaces `KEY=…` in place or appends (moby `ReplaceOrAppendEnvValues`).
fn replace_or_append(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or(kv);
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(slot) => kv.clone_into(slot),
        None => env.push(kv.to_owned()),
    }
}

/// The environment by Docker's rules (`HOME` is added by [`build`]).
#[must_use]
pub fn environment(image: Option<&ImageConfig>, hostname: &str, flags: &[String]) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    for kv in image.and_then(|c| c.env().clone()).unwrap_or_default() {
        replace_or_append(&mut env, &kv);
    }
    for kv in flags {
        replace_or_append(&mut env, kv);
    }
    env
}

/// A resolved `-u`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups from `/etc/group`.
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (`/` when unknown, as runc).
    pub home: String,
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's passwd and group files, by
/// Docker's rules ([`crate::user`]). The additional gids are the primary one, then the
/// supplementary ones, as moby's `getUser` passes them to runc.
///
/// # Errors
/// A name that neither file knows, an id out of range, an unreadable passwd or group file.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let user = crate::user::resolve_in(rootfs, spec)?;
    Ok(ResolvedUser {
        uid: user.uid,
        gid: user.gid,
        additional_gids: std::iter::once(user.gid).chain(user.sgids).collect(),
        home: user.home,
    })
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .build()?)
}

/// Docker's default mounts (moby `oci/defaults.go`, without the cgroup mount: cgroups are not
/// managed yet), then the per-container `/etc` files.
fn mounts(opts: &RunOptions) -> Result<Vec<Mount>> {
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    for (src, dest) in &opts.etc_files {
        m.push(
            MountBuilder::default()
                .destination(*dest)
                .typ("bind")
                .source(src.clone())
                .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                .build()?,
        );
    }
    Ok(m)
}

/// Builds the spec. `rootfs` is the container's root file system as mounted on the host (for
/// user lookup); the spec's `root.path` is `rootfs`, relative to the bundle, as runc expects.
///
/// # Errors
/// No command, unknown user or group.
pub fn build(image: Option<&ImageConfig>, opts: &RunOptions, rootfs: &Path) -> Result<Spec> {
    let args = argv(image, opts.entrypoint.as_deref(), &opts.command)?;
    let mut env = environment(image, &opts.hostname, &opts.env);
    let user_spec = opts
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".to_owned());
    let user = resolve_user(rootfs, &user_spec)?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    let caps: HashSet<Capability> = DEFAULT_CAPS
        .iter()
        .filter_map(|c| c.trim_start_matches("CAP_").parse().ok())
        .collect();
    // CVE-2022-24769: the inheritable (and ambient) sets stay empty, as since moby 20.10.14, so
    // a file with inheritable file capabilities cannot gain them across execve. Set explicitly:
    // oci-spec's defaults fill every set with runc's three default capabilities.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()?,
        )
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()?;
    let mut namespaces = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if opts.network != Network::Host {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let linux = LinuxBuilder::default()
        .namespaces(
            namespaces
                .into_iter()
                .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
                .collect::<std::result::Result<Vec<_>, _>>()?,
        )
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .seccomp(crate::seccomp::docker_default()?)
        .resources(
            LinuxResourcesBuilder::default()
                .devices(default_device_rules()?)
                .build()?,
        )
        .build()?;
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .hostname(opts.hostname.clone())
        .mounts(mounts(opts)?)
        .process(process)
        .linux(linux)
        .build()?)
}

#[cfg(test)]
mod tests {
    use oci_spec::image::ConfigBuilder;
    use rstest::rstest;

    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        let mut b = ConfigBuilder::default();
        if !entrypoint.is_empty() {
            b = b.entrypoint(v(entrypoint));
        }
        if !cmd.is_empty() {
            b = b.cmd(v(cmd));
        }
        b.build().unwrap()
    }

    #[rstest]
    #[case::image_cmd(&[], &["sh"], None, &[], &["sh"])]
    #[case::cmd_replaced(&[], &["sh"], None, &["ls", "-l"], &["ls", "-l"])]
    #[case::entrypoint_plus_cmd(&["/init"], &["--serve"], None, &[], &["/init", "--serve"])]
    #[case::entrypoint_plus_args(&["/init"], &["--serve"], None, &["x"], &["/init", "x"])]
    #[case::override_drops_cmd(&["/init"], &["--serve"], Some("echo"), &[], &["echo"])]
    #[case::override_with_args(&["/init"], &["--serve"], Some("echo"), &["a"], &["echo", "a"])]
    #[case::cleared_entrypoint(&["/init"], &["--serve"], Some(""), &["ls"], &["ls"])]
    fn argv_follows_docker(
        #[case] entrypoint: &[&str],
        #[case] cmd: &[&str],
        #[case] flag: Option<&str>,
        #[case] command: &[&str],
        #[case] want: &[&str],
    ) {
        let img = image(entrypoint, cmd);
        assert_eq!(argv(Some(&img), flag, &v(command)).unwrap(), v(want));
    }

    #[rstest]
    #[case::nothing(&[], &[], None)]
    #[case::cleared_no_args(&["/init"], &["x"], Some(""))]
    fn argv_empty_is_an_error(
        #[case] entrypoint: &[&str],
        #[case] cmd: &[&str],
        #[case] flag: Option<&str>,
    ) {
        let img = image(entrypoint, cmd);
        assert!(matches!(
            argv(Some(&img), flag, &[]),
            Err(SpecError::NoCommand)
        ));
    }

    #[rstest]
    #[case::defaults(&[], &[], &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h"])]
    #[case::image_path_replaces(&["PATH=/x", "A=1"], &[], &["PATH=/x", "HOSTNAME=h", "A=1"])]
    #[case::flag_replaces_image(&["A=1", "B=2"], &["A=3", "C=4"], &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h", "A=3", "B=2", "C=4"])]
    #[case::value_with_equals(&[], &["A=x=y"], &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h", "A=x=y"])]
    fn env_merges_like_docker(
        #[case] img_env: &[&str],
        #[case] flags: &[&str],
        #[case] want: &[&str],
    ) {
        let img = ConfigBuilder::default().env(v(img_env)).build().unwrap();
        assert_eq!(environment(Some(&img), "h", &v(flags)), v(want));
    }

    #[rstest]
    #[case::pair("A=1", Some("A=1"))]
    #[case::from_host("HOME_X", Some("HOME_X=host"))]
    #[case::unset_on_host("NOPE", None)]
    fn env_flag_resolution(#[case] arg: &str, #[case] want: Option<&str>) {
        let host = |k: &str| (k == "HOME_X").then(|| "host".to_owned());
        assert_eq!(resolve_env_flag(arg, host).as_deref(), want);
    }

    fn rootfs_with_users() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:app,root\nstaff:x:50:app\napp:x:1000:\n",
        )
        .unwrap();
        t
    }

    #[rstest]
    #[case::numeric_unknown("4242", 4242, 0, &[0], "/")]
    #[case::numeric_pair("4242:7", 4242, 7, &[7], "/")]
    #[case::name("app", 1000, 1000, &[1000, 10, 50], "/home/app")]
    #[case::uid_of_known_user("1000", 1000, 1000, &[1000, 10, 50], "/home/app")]
    #[case::name_group("app:staff", 1000, 50, &[50], "/home/app")]
    #[case::root("root", 0, 0, &[0, 10], "/root")]
    fn user_resolution(
        #[case] spec: &str,
        #[case] uid: u32,
        #[case] gid: u32,
        #[case] extra: &[u32],
        #[case] home: &str,
    ) {
        let t = rootfs_with_users();
        let u = resolve_user(t.path(), spec).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.as_slice(), u.home.as_str()),
            (uid, gid, extra, home)
        );
    }

    #[rstest]
    #[case::unknown_user(
        "ghost",
        "unable to find user ghost: no matching entries in passwd file"
    )]
    #[case::unknown_group(
        "app:ghosts",
        "unable to find group ghosts: no matching entries in group file"
    )]
    #[case::uid_minus_one("4294967295", "uids and gids must be in range 0-2147483647")]
    #[case::gid_minus_one("0:4294967295", "uids and gids must be in range 0-2147483647")]
    fn bad_users_are_refused_with_dockers_message(#[case] spec: &str, #[case] message: &str) {
        let t = rootfs_with_users();
        let e = resolve_user(t.path(), spec).unwrap_err();
        assert!(matches!(e, SpecError::User(_)), "{e:?}");
        assert_eq!(e.to_string(), message);
    }

    fn opts() -> RunOptions {
        RunOptions {
            hostname: "box".into(),
            env: vec![],
            workdir: None,
            user: None,
            entrypoint: None,
            command: v(&["sh"]),
            network: Network::None,
            etc_files: vec![(PathBuf::from("/tmp/h"), "/etc/hostname")],
        }
    }

    #[test]
    fn spec_has_dockers_defaults() {
        let t = rootfs_with_users();
        let img = ConfigBuilder::default()
            .working_dir("/srv")
            .user("app")
            .build()
            .unwrap();
        let spec = build(Some(&img), &opts(), t.path()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.cwd(), Path::new("/srv"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert!(p
            .env()
            .as_ref()
            .unwrap()
            .contains(&"HOME=/home/app".to_owned()));
        let caps = p.capabilities().as_ref().unwrap();
        let mut eff: Vec<String> = caps
            .effective()
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect();
        eff.sort();
        let mut want = v(&DEFAULT_CAPS);
        want.sort();
        assert_eq!(eff, want);
        assert_eq!(caps.bounding(), caps.effective());
        assert_eq!(caps.inheritable().as_ref().map(HashSet::len), Some(0));
        assert_eq!(caps.ambient().as_ref().map(HashSet::len), Some(0));
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert_eq!(
            ns,
            [
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Network
            ]
        );
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_owned()));
        assert!(linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_owned()));
        let dests: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        assert_eq!(dests[0], Path::new("/proc"));
        assert_eq!(dests.last().unwrap(), Path::new("/etc/hostname"));
        assert_eq!(spec.hostname().as_deref(), Some("box"));
    }

    #[test]
    fn limits_become_resources_and_a_cgroups_path() {
        let t = rootfs_with_users();
        let mut spec = build(None, &opts(), t.path()).unwrap();
        let limits = ResourceLimits {
            memory: Some(32 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(10),
            ..Default::default()
        };
        apply_limits(&mut spec, "/berth/c1", &limits).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/c1"))
        );
        let r = linux.resources().as_ref().unwrap();
        let mem = r.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(32 << 20), Some(64 << 20)));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        assert_eq!(cpu.shares(), None);
        // --memory-swap and --cpu-shares, without --cpus.
        let mut s2 = build(None, &opts(), t.path()).unwrap();
        let l2 = ResourceLimits {
            memory: Some(32 << 20),
            memory_swap: Some(-1),
            cpu_shares: Some(512),
            ..Default::default()
        };
        apply_limits(&mut s2, "/berth/c3", &l2).unwrap();
        let r2 = s2.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(r2.memory().as_ref().unwrap().swap(), Some(-1));
        let cpu2 = r2.cpu().as_ref().unwrap();
        assert_eq!((cpu2.shares(), cpu2.quota()), (Some(512), None));
        // The rest of the spec is untouched.
        assert!(!linux.namespaces().as_ref().unwrap().is_empty());
        // `update`: what is given replaces, the rest stays; swap follows a larger memory.
        let more = ResourceLimits {
            memory: Some(256 << 20),
            nano_cpus: Some(1_000_000_000),
            ..Default::default()
        };
        merge_limits(&mut spec, &more).unwrap();
        let r3 = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        let mem3 = r3.memory().as_ref().unwrap();
        assert_eq!(
            (mem3.limit(), mem3.swap()),
            (Some(256 << 20), Some(512 << 20))
        );
        let cpu3 = r3.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu3.quota(), cpu3.period()),
            (Some(100_000), Some(100_000))
        );
        assert_eq!(r3.pids().as_ref().unwrap().limit(), 10);
        merge_limits(
            &mut s2,
            &ResourceLimits {
                memory: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        let mem4 = s2.linux().as_ref().unwrap().resources().clone().unwrap();
        let cpu4 = mem4.cpu().as_ref().unwrap().shares();
        let mem4 = (*mem4.memory()).unwrap();
        assert_eq!(
            (mem4.limit(), mem4.swap(), cpu4),
            (Some(64 << 20), Some(-1), Some(512))
        );

        let mut spec = build(None, &opts(), t.path()).unwrap();
        let before = spec.linux().as_ref().unwrap().resources().clone();
        apply_limits(&mut spec, "/berth/c2", &ResourceLimits::default()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.resources(), &before);
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/c2"))
        );
    }

    #[test]
    fn flags_override_image_user_and_workdir_and_host_network_keeps_netns() {
        let t = rootfs_with_users();
        let img = ConfigBuilder::default()
            .working_dir("/srv")
            .user("app")
            .build()
            .unwrap();
        let mut o = opts();
        o.user = Some("0:0".into());
        o.workdir = Some("/w".into());
        o.network = Network::Host;
        let spec = build(Some(&img), &o, t.path()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!((p.user().uid(), p.cwd().as_path()), (0, Path::new("/w")));
        let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    }
}
