//! Per-container cgroups: detect the host's layout, create `<hierarchy>/<cgroupsPath>` in each
//! hierarchy the container needs, write `linux.resources`, let the container's init join them
//! ([`CgroupManager::join`]) or add a process by PID, read usage
//! back, and remove the cgroups after the exit.
//!
//! Layouts ([`Layout`]):
//! - pure v2 (`cgroup2` mounted at the root, e.g. `/sys/fs/cgroup`): one directory, files
//!   `memory.max`, `memory.swap.max`, `cpu.max`, `pids.max` ([`v2`]);
//! - v1 or hybrid: one mount per controller (`/sys/fs/cgroup/memory`, …), files
//!   `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`, `cpu.cfs_quota_us`,
//!   `cpu.cfs_period_us`, `pids.max` ([`v1`]). A hybrid host's `cgroup2` mount (e.g.
//!   `/sys/fs/cgroup/unified`, often with only `hugetlb`) is used for a controller v1 lacks and for the device program.
//!
//! Devices ([`devices`]): `linux.resources.devices` goes to v1's `devices` controller where the
//! host has it, and as an eBPF program to the container's `cgroup2` directory wherever there is
//! one (pure v2, or a hybrid host's `unified` mount: the kernel checks both).
//!
//! Every function takes its roots as `&Path` parameters, so tests run on tempdir fixtures.
//! `cgroupsPath` is resolved against each hierarchy's root, whether absolute or relative (the
//! OCI spec leaves the base of a relative path to the runtime); `..` is refused.

mod bpf;
pub mod devices;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

/// Where the host mounts its cgroup hierarchies.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// v1 controllers the kernel may list in a `cgroup` mount's super options.
const V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Creating a cgroup directory failed.
    #[error("cannot create cgroup `{}`", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("cannot write `{value}` to `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a cgroup file failed.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup file holds something unexpected.
    #[error("cannot parse `{}`: {value:?}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its content.
        value: String,
    },
    /// Removing a cgroup directory failed (after retrying while its tasks drain).
    #[error("cannot remove cgroup `{}`", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec sets a limit whose controller the host does not have.
    #[error("the `{controller}` cgroup controller is not available on this host")]
    NoController {
        /// `memory`, `cpu`, `pids` or `devices`.
        controller: &'static str,
    },
    /// No cgroup hierarchy is mounted under the root.
    #[error("no cgroup hierarchy is mounted under `{}`", root.display())]
    NoCgroups {
        /// The root looked at.
        root: PathBuf,
    },
    /// A `linux.resources.devices` rule the kernel cannot express.
    #[error("invalid device cgroup rule `{rule}`: {reason}")]
    DeviceRule {
        /// The rule, as `allow c 1:3 rwm`.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Loading or attaching the cgroup v2 eBPF device program failed.
    #[error("cannot {op} the eBPF device program of `{}`", path.display())]
    Bpf {
        /// `load`, `attach`, or `open the cgroup for`.
        op: &'static str,
        /// The cgroup v2 directory.
        path: PathBuf,
        /// The cause (with the verifier's log for a refused program).
        #[source]
        source: std::io::Error,
    },
    /// `cgroupsPath` is empty or climbs out with `..`.
    #[error("invalid cgroupsPath `{path}`")]
    InvalidPath {
        /// The path.
        path: String,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, CgroupError>;

/// Usage read back from a container's cgroups (for `stats`); `None` when the host lacks the
/// controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory in use, bytes (`memory.usage_in_bytes` / `memory.current`).
    pub memory_usage: Option<u64>,
    /// Processes in the cgroup (`pids.current`).
    pub pids_current: Option<u64>,
    /// CPU time used, nanoseconds (`cpuacct.usage` / `cpu.stat` `usage_usec`).
    pub cpu_usage_ns: Option<u64>,
    /// Memory limit, bytes (`memory.limit_in_bytes` / `memory.max`); `None` when unlimited
    /// (`max`) or unknown. v1 reports "unlimited" as a huge number, kept as is.
    pub memory_limit: Option<u64>,
    /// Page cache that may be reclaimed (`memory.stat` `total_inactive_file` / `inactive_file`),
    /// which Docker's CLI subtracts from the usage.
    pub memory_inactive_file: Option<u64>,
    /// Bytes read from block devices (`blkio.throttle.io_service_bytes` / `io.stat` `rbytes`).
    pub io_read_bytes: Option<u64>,
    /// Bytes written to block devices (`… Write` / `io.stat` `wbytes`).
    pub io_write_bytes: Option<u64>,
    /// Processes the OOM killer killed (`memory.oom_control` / `memory.events` `oom_kill`).
    pub oom_kills: Option<u64>,
}

/// The value of `key` in a flat keyed file such as `memory.stat` (`key value` lines).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Read and write bytes from v1's `blkio.throttle.io_service_bytes` (`MAJ:MIN Op BYTES` lines
/// and a `Total` line), summed over devices.
pub(crate) fn blkio_v1_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => read = read.saturating_add(n),
            "Write" => write = write.saturating_add(n),
            _ => {}
        }
    }
    (read, write)
}

/// Read and write bytes from v2's `io.stat` (`MAJ:MIN rbytes=N wbytes=N …` lines).
pub(crate) fn io_v2_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for field in text.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        let n: u64 = v.parse().unwrap_or(0);
        match k {
            "rbytes" => read = read.saturating_add(n),
            "wbytes" => write = write.saturating_add(n),
            _ => {}
        }
    }
    (read, write)
}

/// The PIDs listed in a `cgroup.procs` file.
pub(crate) fn parse_procs(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A container's cgroups.
pub trait CgroupManager {
    /// What can go wrong.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Creates the cgroups and writes the limits.
    ///
    /// # Errors
    /// A directory or file the kernel refuses, or a limit whose controller is missing.
    fn create(&self, resources: Option<&LinuxResources>) -> std::result::Result<(), Self::Error>;
    /// Writes new limits (memory, CPU, pids) into the existing cgroups of a container, which
    /// may be running; device rules are left alone.
    ///
    /// # Errors
    /// A value the kernel refuses (memory below what the container uses, say).
    fn update(&self, resources: &LinuxResources) -> std::result::Result<(), Self::Error>;
    /// Moves process `pid` (a host PID) into the cgroups.
    ///
    /// # Errors
    /// A `cgroup.procs` write the kernel refuses.
    fn add_task(&self, pid: i32) -> std::result::Result<(), Self::Error>;
    /// Moves the calling process, which must be single-threaded, into the cgroups (the
    /// container's init, before it does anything else). In a v1 hierarchy it writes `0` to
    /// `tasks`: moving the calling thread spares the kernel the global threadgroup lock that
    /// any PID write takes, whose RCU grace period costs 6–16 ms after a pause. `in_v2`: the
    /// process was born in the v2 directory ([`Manager::clone_target`]), which is then left
    /// alone; otherwise `0` goes to its `cgroup.procs` (the lock is taken).
    ///
    /// # Errors
    /// A write the kernel refuses.
    fn join(&self, in_v2: bool) -> std::result::Result<(), Self::Error>;
    /// Reads current usage.
    ///
    /// # Errors
    /// An unreadable or unparsable file.
    fn stats(&self) -> std::result::Result<Stats, Self::Error>;
    /// Removes the cgroups, retrying briefly while their tasks drain; a missing one is fine.
    ///
    /// # Errors
    /// A cgroup still busy after the retries.
    fn remove(&self) -> std::result::Result<(), Self::Error>;
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Pure v2: the `cgroup2` mount at the root.
    Unified {
        /// The mount point.
        root: PathBuf,
    },
    /// v1 controllers, one mount each (or comounted), maybe beside a `cgroup2` mount (hybrid).
    Legacy {
        /// Controller name to mount point.
        controllers: BTreeMap<String, PathBuf>,
        /// A hybrid host's `cgroup2` mount.
        unified: Option<PathBuf>,
    },
}

/// Detects the layout from `/proc/self/mountinfo` text: pure v2 when a `cgroup2` file system is
/// mounted at `root`, otherwise the v1 (`cgroup`) mounts under `root`.
///
/// # Errors
/// [`CgroupError::NoCgroups`] when neither is mounted under `root`.
pub fn detect(mountinfo: &str, root: &Path) -> Result<Layout> {
    let mut controllers = BTreeMap::new();
    let mut unified = None;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional…] - fstype source super-options
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = pre.split(' ').nth(4).map(unescape) else {
            continue;
        };
        let mut post = post.split(' ');
        let (Some(fstype), _, Some(super_opts)) = (post.next(), post.next(), post.next()) else {
            continue;
        };
        let mount_point = PathBuf::from(mount_point);
        if !mount_point.starts_with(root) {
            continue;
        }
        match fstype {
            "cgroup2" if mount_point == root => return Ok(Layout::Unified { root: mount_point }),
            "cgroup2" => unified = Some(mount_point),
            "cgroup" => {
                for opt in super_opts.split(',') {
                    if V1_CONTROLLERS.contains(&opt) {
                        controllers
                            .entry(opt.to_owned())
                            .or_insert_with(|| mount_point.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if controllers.is_empty() {
        // A v2 mount below the root with no v1 controllers: use it as the whole hierarchy.
        return match unified {
            Some(root) => Ok(Layout::Unified { root }),
            None => Err(CgroupError::NoCgroups {
                root: root.to_owned(),
            }),
        };
    }
    Ok(Layout::Legacy {
        controllers,
        unified,
    })
}

/// The host's layout under [`DEFAULT_ROOT`], from `/proc/self/mountinfo`.
///
/// # Errors
/// As [`detect`], or an unreadable mountinfo.
pub fn detect_host() -> Result<Layout> {
    let path = Path::new("/proc/self/mountinfo");
    let text = read(path)?;
    detect(&text, Path::new(DEFAULT_ROOT))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let oct = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match oct {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `cgroupsPath` as a relative path below a hierarchy root.
///
/// # Errors
/// [`CgroupError::InvalidPath`] for an empty path or one with `..`.
pub fn relative_path(cgroups_path: &str) -> Result<PathBuf> {
    let invalid = || CgroupError::InvalidPath {
        path: cgroups_path.to_owned(),
    };
    let mut out = PathBuf::new();
    for c in Path::new(cgroups_path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(invalid()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

/// How long [`Manager::freeze`] waits for the kernel to stop (or start) every task.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

/// The manager for a layout: v1 (and hybrid) or v2.
#[derive(Debug, Clone)]
pub enum Manager {
    /// v1 or hybrid.
    V1(v1::Manager),
    /// Pure v2.
    V2(v2::Manager),
}

impl Manager {
    /// The manager for the container at `cgroups_path` on a host with `layout`.
    ///
    /// # Errors
    /// An invalid `cgroups_path`.
    pub fn new(layout: &Layout, cgroups_path: &str) -> Result<Self> {
        let rel = relative_path(cgroups_path)?;
        Ok(match layout {
            Layout::Unified { root } => Self::V2(v2::Manager::new(root, &rel)),
            Layout::Legacy {
                controllers,
                unified,
            } => Self::V1(v1::Manager::new(controllers, unified.as_deref(), &rel)),
        })
    }

    /// The container's cgroup v2 directory, if it has one to be in: a child can be cloned
    /// straight into it (`clone3` with `CLONE_INTO_CGROUP`), then [`CgroupManager::join`] with
    /// `in_v2`. Pure v2: its directory; hybrid: the `unified` one when the container uses it.
    #[must_use]
    pub fn clone_target(&self) -> Option<PathBuf> {
        match self {
            Self::V1(m) => m.unified_dir(),
            Self::V2(m) => Some(m.dir()),
        }
    }

    /// Freezes (`pause`) or thaws (`unpause`) every process of the container, and waits until
    /// the kernel says it is done: v1's `freezer.state` (`FROZEN`/`THAWED`), v2's
    /// `cgroup.freeze` and the `frozen` line of `cgroup.events`.
    ///
    /// # Errors
    /// No freezer (a v1 host without the controller), a refused write, or not done within
    /// [`FREEZE_WAIT`].
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        self.freeze_within(frozen, FREEZE_WAIT)
    }

    /// [`Manager::freeze`], giving the kernel `wait` to finish.
    fn freeze_within(&self, frozen: bool, wait: Duration) -> Result<()> {
        let (file, value, done): (PathBuf, &str, Box<dyn Fn() -> bool>) = match self {
            Self::V1(m) => {
                let dir = m
                    .dir("freezer")
                    .ok_or(CgroupError::NoController {
                        controller: "freezer",
                    })?
                    .to_owned();
                let state = dir.join("freezer.state");
                let want = if frozen { "FROZEN" } else { "THAWED" };
                let check = state.clone();
                (
                    state,
                    want,
                    Box::new(move || read(&check).is_ok_and(|s| s.trim() == want)),
                )
            }
            Self::V2(m) => {
                let dir = m.dir();
                let events = dir.join("cgroup.events");
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                (
                    dir.join("cgroup.freeze"),
                    if frozen { "1" } else { "0" },
                    Box::new(move || read(&events).is_ok_and(|e| e.lines().any(|l| l == want))),
                )
            }
        };
        write(&file, value)?;
        let deadline = Instant::now() + wait;
        while !done() {
            if Instant::now() > deadline {
                // A freeze that did not finish is undone (as runc does): a half-frozen
                // container, recorded as not paused, could be neither unpaused nor stopped.
                if frozen {
                    let thawed = if matches!(self, Self::V1(_)) {
                        "THAWED"
                    } else {
                        "0"
                    };
                    let _ = write(&file, thawed);
                }
                return Err(CgroupError::Write {
                    path: file,
                    value: value.to_owned(),
                    source: std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("the kernel did not finish within {wait:?}"),
                    ),
                });
            }
            // The kernel usually finishes at once; a task in uninterruptible sleep delays it.
            if matches!(self, Self::V1(_)) {
                write(&file, value)?;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// The host PIDs of the processes in the container's cgroup (`cgroup.procs`, for `top`);
    /// empty when the cgroup is gone.
    ///
    /// # Errors
    /// An unreadable `cgroup.procs` other than a missing one.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let file = match self {
            Self::V1(m) => match m.dir("pids").or_else(|| m.dir("memory")) {
                Some(d) => d.join("cgroup.procs"),
                None => return Ok(Vec::new()),
            },
            Self::V2(m) => m.dir().join("cgroup.procs"),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(parse_procs(&text)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(CgroupError::Read { path: file, source }),
        }
    }
}

impl CgroupManager for Manager {
    type Error = CgroupError;

    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        match self {
            Self::V1(m) => m.create(resources),
            Self::V2(m) => m.create(resources),
        }
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        match self {
            Self::V1(m) => m.add_task(pid),
            Self::V2(m) => m.add_task(pid),
        }
    }

    fn join(&self, in_v2: bool) -> Result<()> {
        match self {
            Self::V1(m) => m.join(in_v2),
            Self::V2(m) => m.join(in_v2),
        }
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        match self {
            Self::V1(m) => m.update(resources),
            Self::V2(m) => m.update(resources),
        }
    }

    fn stats(&self) -> Result<Stats> {
        match self {
            Self::V1(m) => m.stats(),
            Self::V2(m) => m.stats(),
        }
    }

    fn remove(&self) -> Result<()> {
        match self {
            Self::V1(m) => m.remove(),
            Self::V2(m) => m.remove(),
        }
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Create {
        path: path.to_owned(),
        source,
    })
}

/// A single-number file such as `pids.current`.
pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        value: text,
    })
}

/// rmdir, retrying on EBUSY for up to a second while the last tasks exit; gone is fine.
pub(crate) fn rmdir(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The limits a spec asks for, as v1/v2 both need them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Memory limit, bytes (`-1`: unlimited).
    pub memory: Option<i64>,
    /// Memory + swap, bytes (`-1`: unlimited).
    pub swap: Option<i64>,
    /// CFS quota, µs (`-1`: unlimited).
    pub cpu_quota: Option<i64>,
    /// CFS period, µs.
    pub cpu_period: Option<u64>,
    /// CPU shares (v1's `cpu.shares`, converted to v2's `cpu.weight`).
    pub cpu_shares: Option<u64>,
    /// Maximum number of processes (`-1`: unlimited; see [`pids_value`]).
    pub pids: Option<i64>,
}

impl Limits {
    pub(crate) fn from_resources(r: Option<&LinuxResources>) -> Self {
        let Some(r) = r else {
            return Self::default();
        };
        let mem = r.memory().as_ref();
        let cpu = r.cpu().as_ref();
        Self {
            memory: mem.and_then(|m| m.limit()),
            swap: mem.and_then(|m| m.swap()),
            cpu_quota: cpu.and_then(|c| c.quota()),
            cpu_period: cpu.and_then(|c| c.period()),
            cpu_shares: cpu.and_then(|c| c.shares()).filter(|s| *s > 0),
            pids: r.pids().as_ref().map(|p| p.limit()),
        }
    }

    pub(crate) fn wants_memory(&self) -> bool {
        self.memory.is_some() || self.swap.is_some()
    }

    pub(crate) fn wants_cpu(&self) -> bool {
        self.cpu_quota.is_some() || self.cpu_period.is_some() || self.cpu_shares.is_some()
    }
}

/// `pids.max`: a positive limit, or `max` (runc writes `max` for a negative limit; `0` is a
/// valid kernel value and is written as is).
pub(crate) fn pids_value(limit: i64) -> String {
    if limit < 0 {
        "max".to_owned()
    } else {
        limit.to_string()
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::Path;

    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
        LinuxResourcesBuilder,
    };

    /// 32 MiB (swap 64 MiB), half a CPU, 10 processes.
    pub fn resources() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(32 << 20)
                    .swap(64 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap()
    }

    /// Writes a fixture file, creating its directory.
    pub fn set_fixture(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn get(path: &Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{get, set_fixture};
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/other\\040cg rw - cgroup cgroup rw,blkio
";

    #[test]
    fn detects_hybrid_with_comounted_controllers() {
        let layout = detect(HYBRID, Path::new("/sys/fs/cgroup")).unwrap();
        let Layout::Legacy {
            controllers,
            unified,
        } = layout
        else {
            panic!("{layout:?}")
        };
        assert_eq!(
            unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(controllers["cpu"], cpu);
        assert_eq!(controllers["cpuacct"], cpu);
        assert_eq!(controllers["memory"], Path::new("/sys/fs/cgroup/memory"));
        // name=systemd is no controller; blkio is mounted outside the root.
        assert_eq!(
            controllers.keys().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "memory", "pids"]
        );
    }

    #[test]
    fn detects_pure_v2() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            detect(text, Path::new("/sys/fs/cgroup")).unwrap(),
            Layout::Unified {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn detects_nothing_as_an_error() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        assert!(matches!(
            detect(text, Path::new("/sys/fs/cgroup")),
            Err(CgroupError::NoCgroups { .. })
        ));
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape("/mnt/a\\040b\\134c"), "/mnt/a b\\c");
        assert_eq!(unescape("/x\\"), "/x\\");
    }

    #[test]
    fn cgroups_path_stays_below_the_root() {
        assert_eq!(relative_path("/berth/c1").unwrap(), Path::new("berth/c1"));
        assert_eq!(relative_path("berth/c1").unwrap(), Path::new("berth/c1"));
        for bad in ["", "/", "/berth/../../etc", "../x"] {
            assert!(
                matches!(relative_path(bad), Err(CgroupError::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn manager_follows_the_layout() {
        let v2 = Layout::Unified { root: "/cg".into() };
        assert!(matches!(Manager::new(&v2, "/berth/c1"), Ok(Manager::V2(_))));
        let v1 = detect(HYBRID, Path::new("/sys/fs/cgroup")).unwrap();
        assert!(matches!(Manager::new(&v1, "/berth/c1"), Ok(Manager::V1(_))));
    }

    #[test]
    fn usage_files_parse() {
        let stat = "cache 10\ntotal_inactive_file 4096\ninactive_file 7\n";
        assert_eq!(keyed(stat, "total_inactive_file"), Some(4096));
        assert_eq!(keyed(stat, "inactive_file"), Some(7));
        assert_eq!(keyed(stat, "nope"), None);
        let blkio =
            "8:0 Read 100\n8:0 Write 20\n8:0 Sync 120\n8:16 Read 1\n8:16 Write 2\nTotal 123\n";
        assert_eq!(blkio_v1_bytes(blkio), (101, 22));
        assert_eq!(blkio_v1_bytes(""), (0, 0));
        let io =
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=1\n";
        assert_eq!(io_v2_bytes(io), (4097, 8193));
        assert_eq!(parse_procs("12\n345\n"), [12, 345]);
    }

    #[test]
    fn procs_of_a_missing_cgroup_are_none() {
        let t = tempfile::tempdir().unwrap();
        let m = Manager::V2(v2::Manager::new(t.path(), Path::new("berth/gone")));
        assert!(m.procs().unwrap().is_empty());
        test_util::set_fixture(&t.path().join("berth/gone/cgroup.procs"), "5\n6\n");
        assert_eq!(m.procs().unwrap(), [5, 6]);
    }

    #[test]
    fn freeze_writes_the_state_and_waits_for_the_kernel() {
        let t = tempfile::tempdir().unwrap();
        let controllers: BTreeMap<String, PathBuf> =
            [("freezer".to_owned(), t.path().join("freezer"))].into();
        let m = Manager::V1(v1::Manager::new(&controllers, None, Path::new("b/c")));
        m.create(None).unwrap();
        // A fixture file keeps what is written: the "kernel" is done at once.
        m.freeze(true).unwrap();
        assert_eq!(get(&t.path().join("freezer/b/c/freezer.state")), "FROZEN");
        m.freeze(false).unwrap();
        assert_eq!(get(&t.path().join("freezer/b/c/freezer.state")), "THAWED");
        let none = Manager::V1(v1::Manager::new(&BTreeMap::new(), None, Path::new("b/c")));
        assert!(matches!(
            none.freeze(true),
            Err(CgroupError::NoController {
                controller: "freezer"
            })
        ));
        let v2 = Manager::V2(v2::Manager::new(t.path(), Path::new("x")));
        std::fs::create_dir_all(t.path().join("x")).unwrap();
        set_fixture(&t.path().join("x/cgroup.events"), "populated 1\nfrozen 1\n");
        v2.freeze(true).unwrap();
        assert_eq!(get(&t.path().join("x/cgroup.freeze")), "1");
        // The kernel never says frozen: an error, and the freeze is undone.
        set_fixture(&t.path().join("x/cgroup.events"), "populated 1\nfrozen 0\n");
        assert!(matches!(
            v2.freeze_within(true, Duration::from_millis(30)),
            Err(CgroupError::Write { .. })
        ));
        assert_eq!(get(&t.path().join("x/cgroup.freeze")), "0");
    }

    #[test]
    fn rmdir_of_a_missing_cgroup_is_fine() {
        let t = tempfile::tempdir().unwrap();
        rmdir(&t.path().join("gone")).unwrap();
        let full = t.path().join("full");
        test_util::set_fixture(&full.join("tasks"), "");
        // A regular directory with a file: ENOTEMPTY, not retried.
        assert!(matches!(rmdir(&full), Err(CgroupError::Remove { .. })));
    }
}
