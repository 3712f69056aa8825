//! `stats`: a container's resource usage, read from its cgroups (`/berth/<id>` on v1, v2 or
//! hybrid hosts) and its network namespace, as Docker's CLI computes it.
//!
//! `cpu_percent` is the container's CPU time over the host's between two readings, times the
//! online CPUs; `memory` leaves out the inactive page cache (`total_inactive_file` /
//! `inactive_file`), the limit is the cgroup's or, when unlimited, the host's memory; `net`
//! sums the interfaces other than `lo` in init's `/proc/<pid>/net/dev` (nothing for
//! `--network host`, whose traffic is the host's); `block` is the cgroup's read and written
//! bytes; `pids` its tasks. A [`Sampler`] keeps the previous reading of each container.
//!
//! May call [`super::state`] and `berth_runtime::cgroups`; the table is the command's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_runtime::cgroups::{self, CgroupManager as _};

use super::state::{self, State, StateError, Status};

/// The containers' usage could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Which containers (`stats`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct StatsOptions {
    /// Names or IDs; empty for every running container (every one with `all`).
    pub containers: Vec<String>,
    /// `-a`.
    pub all: bool,
}

/// One container's usage in a reading.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The name or ID the user gave (the ID when none was given).
    pub shown: String,
    /// The container.
    pub state: State,
    /// Its usage (zero when it does not run).
    pub sample: Sample,
    /// Its CPU use since the previous reading, percent of one CPU.
    pub cpu_percent: f64,
}

/// Reads the containers' usage again and again, each CPU % against the reading before.
#[derive(Debug)]
pub struct Sampler {
    data_root: PathBuf,
    opts: StatsOptions,
    layout: Option<cgroups::Layout>,
    host_memory: u64,
    previous: BTreeMap<String, (u64, u64)>,
}

impl Sampler {
    /// Takes the first reading (the base of the first CPU %).
    ///
    /// # Errors
    /// No such container.
    pub fn start(data_root: &Path, opts: StatsOptions) -> Result<Self> {
        let mut sampler = Self {
            data_root: data_root.to_owned(),
            opts,
            layout: cgroups::detect_host().ok(),
            host_memory: machine_memory(),
            previous: BTreeMap::new(),
        };
        let (system, _) = host_cpu();
        for (_, s) in sampler.targets()? {
            if let Some(now) = sample(sampler.layout.as_ref(), &s, sampler.host_memory) {
                sampler.previous.insert(s.id.clone(), (now.cpu, system));
            }
        }
        Ok(sampler)
    }

    /// A reading of every container.
    ///
    /// # Errors
    /// No such container (one named may have been removed).
    pub fn read(&mut self) -> Result<Vec<Usage>> {
        let (system_now, cpus) = host_cpu();
        let mut out = Vec::new();
        for (shown, s) in self.targets()? {
            let now = sample(self.layout.as_ref(), &s, self.host_memory);
            let percent = match (now, self.previous.get(&s.id)) {
                (Some(n), Some((cpu, sys))) => cpu_percent(
                    n.cpu.saturating_sub(*cpu),
                    system_now.saturating_sub(*sys),
                    cpus,
                ),
                _ => 0.0,
            };
            if let Some(n) = now {
                self.previous.insert(s.id.clone(), (n.cpu, system_now));
            }
            out.push(Usage {
                shown,
                state: s,
                sample: now.unwrap_or_default(),
                cpu_percent: percent,
            });
        }
        Ok(out)
    }

    /// The containers to show, with the name each is shown by.
    fn targets(&self) -> Result<Vec<(String, State)>> {
        let root = &self.data_root;
        if self.opts.containers.is_empty() {
            return Ok(state::list(root)
                .into_iter()
                .filter(|(_, s)| self.opts.all || s.status() == Status::Running)
                .map(|(_, s)| (s.id.clone(), s))
                .collect());
        }
        self.opts
            .containers
            .iter()
            .map(|c| {
                state::find(root, c)
                    .map(|(_, s)| (c.clone(), s))
                    .map_err(Into::into)
            })
            .collect()
    }
}

/// Received and sent bytes over the interfaces of a `/proc/<pid>/net/dev`, `lo` left out.
#[must_use]
pub fn net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = counters
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

/// The host's CPU time so far, nanoseconds, from the `cpu` line of `/proc/stat` (Docker's
/// `SystemUsage`).
#[must_use]
pub fn system_usage_ns(proc_stat: &str, ticks_per_sec: u64) -> u64 {
    let ticks: u64 = proc_stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks.saturating_mul(1_000_000_000 / ticks_per_sec.max(1))
}

/// Docker's `calculateCPUPercentUnix`.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn cpu_percent(cpu_delta: u64, system_delta: u64, online_cpus: u64) -> f64 {
    if cpu_delta == 0 || system_delta == 0 {
        return 0.0;
    }
    cpu_delta as f64 / system_delta as f64 * online_cpus as f64 * 100.0
}

/// One reading of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Container CPU time, ns.
    pub cpu: u64,
    /// Memory in use without inactive page cache.
    pub memory: u64,
    /// The memory limit (the host's memory when unlimited).
    pub limit: u64,
    /// Network bytes received / sent.
    pub net: (u64, u64),
    /// Block bytes read / written.
    pub block: (u64, u64),
    /// Tasks.
    pub pids: u64,
}

/// The host's memory (`MemTotal` of `/proc/meminfo`), bytes; 0 when unknown.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Reads a running container's usage; `None` for one that is not running.
fn sample(layout: Option<&cgroups::Layout>, state: &State, host_memory: u64) -> Option<Sample> {
    let init = state
        .init
        .filter(|i| state.status() == Status::Running && i.alive())?;
    let stats = layout
        .and_then(|l| super::cgroup::manager_in(l, &state.id).ok())
        .and_then(|m| m.stats().ok())
        .unwrap_or_default();
    let usage = stats.memory_usage.unwrap_or(0);
    let memory = match stats.memory_inactive_file {
        Some(cache) if cache < usage => usage - cache,
        _ => usage,
    };
    let limit = match stats.memory_limit {
        Some(l) if l > 0 && (host_memory == 0 || l < host_memory) => l,
        _ => host_memory,
    };
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let own_net = ns("self").is_some() && ns("self") == ns(&init.pid.to_string());
    let net = if own_net {
        (0, 0)
    } else {
        std::fs::read_to_string(format!("/proc/{}/net/dev", init.pid))
            .map(|t| net_dev(&t))
            .unwrap_or_default()
    };
    Some(Sample {
        cpu: stats.cpu_usage_ns.unwrap_or(0),
        memory,
        limit,
        net,
        block: (
            stats.io_read_bytes.unwrap_or(0),
            stats.io_write_bytes.unwrap_or(0),
        ),
        pids: stats.pids_current.unwrap_or(0),
    })
}

/// Host CPU time and online CPUs.
fn host_cpu() -> (u64, u64) {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    (system_usage_ns(&text, ticks), cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2480      20    0    0    0     0          0         0      916       9    0    0    0     0       0          0
";
        assert_eq!(net_dev(text), (2480, 916));
    }

    #[test]
    fn cpu_follows_docker() {
        let stat = "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\n";
        assert_eq!(system_usage_ns(stat, 100), 10_000_000_000);
        // Half a second of CPU over one second of two CPUs' time (2 s): 25% of one CPU * 2.
        assert!((cpu_percent(500_000_000, 2_000_000_000, 2) - 50.0).abs() < 1e-9);
        assert!(cpu_percent(0, 10, 2).abs() < f64::EPSILON);
    }
}
