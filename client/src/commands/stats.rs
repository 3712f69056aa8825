//! `berth stats [-a] [--no-stream] [--no-trunc] [--format] [CONTAINER…]` (also
//! `container stats`): Docker's resource usage table, read from each container's cgroups
//! (`/berth/<id>` on v1, v2 or hybrid hosts) and its network namespace.
//!
//! As Docker's CLI computes them: `CPU %` is the container's CPU time over the host's between
//! two samples a second apart, times the online CPUs; `MEM USAGE` leaves out the inactive page
//! cache (`total_inactive_file` / `inactive_file`), the limit is the cgroup's or, when
//! unlimited, the host's memory; `NET I/O` sums the interfaces other than `lo` in init's
//! `/proc/<pid>/net/dev` (nothing for `--network host`, whose traffic is the host's);
//! `BLOCK I/O` is the cgroup's read and written bytes; `PIDS` its tasks. Without
//! `--no-stream` the table is redrawn every second until interrupted.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use berth_runtime::cgroups::{self, CgroupManager as _};

use crate::cli::StatsArgs;
use crate::container::{self, State, Status};
use crate::context::Ctx;
use crate::format::{self, human_size, Row};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
    ("Container", "CONTAINER"),
];

/// The default `--format`: every column but `CONTAINER`.
const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// go-units' `BytesSize`: `%.4g` with binary units (`196KiB`, `5.629MiB`, `1.952GiB`).
#[must_use]
pub fn bytes_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", sig4(v), UNITS[i])
}

/// Go's `%.4g` for values in [0, 1024): four significant digits, trailing zeros dropped.
fn sig4(v: f64) -> String {
    let decimals = match v {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
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
        .and_then(|l| cgroups::Manager::new(l, &format!("/berth/{}", state.id)).ok())
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

/// The row Docker prints for a container: `shown` is the name or ID the user gave.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn row(state: &State, shown: &str, now: Sample, cpu_percent: f64, trunc: bool) -> Row {
    let mut r = Row::new();
    r.insert(
        "ID",
        if trunc {
            state.short_id().to_owned()
        } else {
            state.id.clone()
        },
    );
    r.insert("Name", state.name.clone());
    r.insert("Container", shown.to_owned());
    r.insert("CPUPerc", format!("{cpu_percent:.2}%"));
    r.insert(
        "MemUsage",
        format!(
            "{} / {}",
            bytes_size(now.memory as f64),
            bytes_size(now.limit as f64)
        ),
    );
    let mem_percent = if now.limit == 0 {
        0.0
    } else {
        now.memory as f64 / now.limit as f64 * 100.0
    };
    r.insert("MemPerc", format!("{mem_percent:.2}%"));
    r.insert(
        "NetIO",
        format!("{} / {}", human_size(now.net.0), human_size(now.net.1)),
    );
    r.insert(
        "BlockIO",
        format!("{} / {}", human_size(now.block.0), human_size(now.block.1)),
    );
    r.insert("PIDs", now.pids.to_string());
    r
}

/// The containers to show, with the name each is shown by.
fn targets(ctx: &Ctx, args: &StatsArgs) -> anyhow::Result<Vec<(String, State)>> {
    let root = ctx.store.root();
    if args.containers.is_empty() {
        return Ok(container::list(root)
            .into_iter()
            .filter(|(_, s)| args.all || s.status() == Status::Running)
            .map(|(_, s)| (s.id.clone(), s))
            .collect());
    }
    args.containers
        .iter()
        .map(|c| {
            container::find(root, c)
                .map(|(_, s)| (c.clone(), s))
                .map_err(Into::into)
        })
        .collect()
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

/// Shows the statistics once (`--no-stream`) or every second.
///
/// # Errors
/// No such container; a bad `--format`.
pub fn run(ctx: &Ctx, args: &StatsArgs) -> anyhow::Result<()> {
    let layout = cgroups::detect_host().ok();
    let host_memory = machine_memory();
    let format = args.format.as_deref().unwrap_or(DEFAULT_FORMAT);
    let format = if format == "table" {
        DEFAULT_FORMAT
    } else {
        format
    };
    let mut previous: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (system, _) = host_cpu();
    for (_, s) in targets(ctx, args)? {
        if let Some(now) = sample(layout.as_ref(), &s, host_memory) {
            previous.insert(s.id.clone(), (now.cpu, system));
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let (system_now, cpus) = host_cpu();
        let mut rows = Vec::new();
        for (shown, s) in targets(ctx, args)? {
            let now = sample(layout.as_ref(), &s, host_memory);
            let percent = match (now, previous.get(&s.id)) {
                (Some(n), Some((cpu, sys))) => cpu_percent(
                    n.cpu.saturating_sub(*cpu),
                    system_now.saturating_sub(*sys),
                    cpus,
                ),
                _ => 0.0,
            };
            if let Some(n) = now {
                previous.insert(s.id.clone(), (n.cpu, system_now));
            }
            rows.push(row(
                &s,
                &shown,
                now.unwrap_or_default(),
                percent,
                !args.no_trunc,
            ));
        }
        let out = format::render(&rows, COLUMNS, Some(format)).map_err(anyhow::Error::msg)?;
        if args.no_stream {
            ctx.printer.data(&out);
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        // Docker's screen refresh: clear, cursor home, the table.
        write!(stdout, "\x1b[2J\x1b[H{out}")?;
        stdout.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case(0.0, "0B")]
    #[case(200_704.0, "196KiB")]
    #[case(5_902_000.0, "5.629MiB")]
    #[case(67_108_864.0, "64MiB")]
    #[case(2_096_000_000.0, "1.952GiB")]
    #[case(1023.0, "1023B")]
    fn binary_sizes_like_go_units(#[case] n: f64, #[case] s: &str) {
        assert_eq!(bytes_size(n), s);
    }

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

    #[test]
    fn rows_use_dockers_units() {
        let s = State {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            ..State::default()
        };
        let now = Sample {
            cpu: 0,
            memory: 1 << 20,
            limit: 64 << 20,
            net: (2480, 0),
            block: (4_110_000, 0),
            pids: 2,
        };
        let r = row(&s, "web", now, 0.284, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["CPUPerc"], "0.28%");
        assert_eq!(r["MemUsage"], "1MiB / 64MiB");
        assert_eq!(r["MemPerc"], "1.56%");
        assert_eq!(r["NetIO"], "2.48kB / 0B");
        assert_eq!(r["BlockIO"], "4.11MB / 0B");
        assert_eq!(r["PIDs"], "2");
        let out = format::render(&[r], COLUMNS, Some(DEFAULT_FORMAT)).unwrap();
        assert!(
            out.starts_with("CONTAINER ID   NAME   CPU %   MEM USAGE / LIMIT   MEM %   NET I/O"),
            "{out}"
        );
    }
}
