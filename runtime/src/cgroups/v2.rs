//! cgroup v2: one directory, e.g. `/sys/fs/cgroup/berth/<id>`, with the controllers enabled in
//! `cgroup.subtree_control` of every ancestor (a v2 cgroup only has the files of controllers
//! its parent enables). `linux.resources.devices` becomes an eBPF program attached to that
//! directory ([`super::devices`]).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    devices, io_v2_bytes, keyed, mkdir, pids_value, read, read_u64, rmdir, write, CgroupError,
    CgroupManager, Limits, Result, Stats,
};

/// The controllers Berth enables (limits, and usage for `stats`).
pub const CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

/// Default CFS period, µs (the kernel's and Docker's).
pub const DEFAULT_PERIOD: u64 = 100_000;

/// A container's v2 cgroup.
#[derive(Debug, Clone)]
pub struct Manager {
    root: PathBuf,
    rel: PathBuf,
}

impl Manager {
    /// The cgroup `rel` below the v2 mount `root`.
    #[must_use]
    pub fn new(root: &Path, rel: &Path) -> Self {
        Self {
            root: root.to_owned(),
            rel: rel.to_owned(),
        }
    }

    /// The container's directory.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.rel)
    }

    /// The controllers the root offers (`cgroup.controllers`).
    ///
    /// # Errors
    /// An unreadable file.
    pub fn available(&self) -> Result<Vec<String>> {
        Ok(read(&self.root.join("cgroup.controllers"))?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Enables `controllers` from the root down to the container's parent, creates the
    /// container's directory and writes the limits of those controllers.
    pub(crate) fn create_controllers(&self, limits: &Limits, controllers: &[&str]) -> Result<()> {
        let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        let mut dir = self.root.clone();
        for part in &self.rel {
            if !enable.is_empty() {
                write(&dir.join("cgroup.subtree_control"), &enable.join(" "))?;
            }
            dir.push(part);
            mkdir(&dir)?;
        }
        self.write_limits(&dir, limits, controllers)
    }

    /// Writes the limits of `controllers` in the cgroup `dir`.
    pub(crate) fn write_limits(
        &self,
        dir: &Path,
        limits: &Limits,
        controllers: &[&str],
    ) -> Result<()> {
        let has = |c: &str| controllers.contains(&c);
        if has("memory") {
            if let Some(limit) = limits.memory {
                write(&dir.join("memory.max"), &max_or(limit))?;
            }
            // v2 limits swap alone; the spec's `swap` is memory + swap.
            let swap_file = dir.join("memory.swap.max");
            if let (Some(swap), true) = (limits.swap, swap_file.exists()) {
                let value = match (swap, limits.memory) {
                    (s, Some(m)) if s >= 0 && m >= 0 => (s - m).max(0).to_string(),
                    (s, None) if s >= 0 => s.to_string(),
                    _ => "max".to_owned(),
                };
                write(&swap_file, &value)?;
            }
        }
        if has("cpu") && (limits.cpu_quota.is_some() || limits.cpu_period.is_some()) {
            let quota = limits.cpu_quota.map_or_else(|| "max".to_owned(), max_or);
            let period = limits.cpu_period.unwrap_or(DEFAULT_PERIOD);
            write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let (true, Some(shares)) = (has("cpu"), limits.cpu_shares) {
            write(&dir.join("cpu.weight"), &cpu_weight(shares).to_string())?;
        }
        if let (true, Some(pids)) = (has("pids"), limits.pids) {
            write(&dir.join("pids.max"), &pids_value(pids))?;
        }
        Ok(())
    }
}

/// v1's CPU shares (2–262144, 1024 the default) as v2's `cpu.weight` (1–10000, 100 the
/// default), by runc's linear map.
fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// A limit, or `max` for a negative one.
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

impl Manager {
    /// The controllers of [`CONTROLLERS`] the parent offers; an error when `limits` needs one it
    /// does not (a limit would silently not hold).
    fn controllers_for(&self, limits: &Limits) -> Result<Vec<&'static str>> {
        let available = self.available()?;
        let needed = [
            ("memory", limits.wants_memory()),
            ("cpu", limits.wants_cpu()),
            ("pids", limits.pids.is_some()),
        ];
        for (controller, wanted) in needed {
            if wanted && !available.iter().any(|a| a == controller) {
                return Err(CgroupError::NoController { controller });
            }
        }
        Ok(CONTROLLERS
            .into_iter()
            .filter(|c| available.iter().any(|a| a == c))
            .collect())
    }
}

impl CgroupManager for Manager {
    type Error = CgroupError;

    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let limits = Limits::from_resources(resources);
        let device_rules = devices::from_resources(resources)?;
        let enable = self.controllers_for(&limits)?;
        self.create_controllers(&limits, &enable)?;
        if !device_rules.is_empty() {
            devices::attach(&self.dir(), &device_rules)?;
        }
        Ok(())
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        let limits = Limits::from_resources(Some(resources));
        let controllers = self.controllers_for(&limits)?;
        self.write_limits(&self.dir(), &limits, &controllers)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        write(&self.dir().join("cgroup.procs"), &pid.to_string())
    }

    fn join(&self, in_v2: bool) -> Result<()> {
        if in_v2 {
            return Ok(());
        }
        write(&self.dir().join("cgroup.procs"), "0")
    }

    fn stats(&self) -> Result<Stats> {
        let dir = self.dir();
        let num = |name: &str| {
            let p = dir.join(name);
            p.exists().then(|| read_u64(&p)).transpose()
        };
        let cpu_stat = dir.join("cpu.stat");
        let cpu_usage_ns = if cpu_stat.exists() {
            let text = read(&cpu_stat)?;
            let usec = text
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| CgroupError::Parse {
                        path: cpu_stat.clone(),
                        value: text.clone(),
                    })
                })
                .transpose()?;
            usec.map(|u| u.saturating_mul(1000))
        } else {
            None
        };
        let text = |name: &str| {
            let p = dir.join(name);
            p.exists().then(|| read(&p)).transpose()
        };
        let memory_limit = text("memory.max")?.and_then(|t| t.trim().parse().ok());
        let io = text("io.stat")?.map(|t| io_v2_bytes(&t));
        Ok(Stats {
            memory_usage: num("memory.current")?,
            pids_current: num("pids.current")?,
            cpu_usage_ns,
            memory_limit,
            memory_inactive_file: text("memory.stat")?.and_then(|t| keyed(&t, "inactive_file")),
            io_read_bytes: io.map(|(r, _)| r),
            io_write_bytes: io.map(|(_, w)| w),
            oom_kills: text("memory.events")?.and_then(|t| keyed(&t, "oom_kill")),
        })
    }

    fn remove(&self) -> Result<()> {
        rmdir(&self.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{get, resources, set_fixture};
    use super::*;

    fn fixture(controllers: &str) -> (tempfile::TempDir, Manager) {
        let t = tempfile::tempdir().unwrap();
        set_fixture(&t.path().join("cgroup.controllers"), controllers);
        let m = Manager::new(t.path(), Path::new("berth/c1"));
        (t, m)
    }

    #[test]
    fn enables_controllers_and_writes_limits() {
        let (t, m) = fixture("cpuset cpu io memory hugetlb pids rdma\n");
        let root = t.path();
        // Swap accounting present.
        set_fixture(&root.join("berth/c1/memory.swap.max"), "max");
        m.create(Some(&resources())).unwrap();
        for d in [root.to_owned(), root.join("berth")] {
            assert_eq!(
                get(&d.join("cgroup.subtree_control")),
                "+cpu +io +memory +pids"
            );
        }
        let dir = root.join("berth/c1");
        assert_eq!(get(&dir.join("memory.max")), "33554432");
        assert_eq!(get(&dir.join("memory.swap.max")), "33554432");
        assert_eq!(get(&dir.join("cpu.max")), "50000 100000");
        assert_eq!(get(&dir.join("pids.max")), "10");
        m.add_task(99).unwrap();
        assert_eq!(get(&dir.join("cgroup.procs")), "99");
        // Cloned into the directory: nothing to write; otherwise the caller's `0`.
        m.join(true).unwrap();
        assert_eq!(get(&dir.join("cgroup.procs")), "99");
        m.join(false).unwrap();
        assert_eq!(get(&dir.join("cgroup.procs")), "0");
        // cgroupfs files go with the directory; a tempdir's must go first.
        for e in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        m.remove().unwrap();
        assert!(!dir.exists());
        assert!(root.join("berth").is_dir());
    }

    #[test]
    fn cpu_shares_become_a_weight_without_a_quota() {
        let (t, m) = fixture("cpu memory pids");
        let r = oci_spec::runtime::LinuxResourcesBuilder::default()
            .cpu(
                oci_spec::runtime::LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        m.create(Some(&r)).unwrap();
        let dir = t.path().join("berth/c1");
        // runc's map: 1024 shares (the default) is weight 39, the ends are 1 and 10000.
        assert_eq!(get(&dir.join("cpu.weight")), "39");
        assert!(!dir.join("cpu.max").exists());
        assert_eq!(
            (cpu_weight(2), cpu_weight(262_144), cpu_weight(1)),
            (1, 10_000, 1)
        );
    }

    #[test]
    fn unlimited_values_are_max() {
        let (t, m) = fixture("cpu memory pids");
        let mut r = resources();
        r.set_memory(Some(
            oci_spec::runtime::LinuxMemoryBuilder::default()
                .limit(-1)
                .build()
                .unwrap(),
        ));
        r.set_cpu(Some(
            oci_spec::runtime::LinuxCpuBuilder::default()
                .period(50_000u64)
                .build()
                .unwrap(),
        ));
        r.set_pids(Some(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(-1)
                .build()
                .unwrap(),
        ));
        m.create(Some(&r)).unwrap();
        let dir = t.path().join("berth/c1");
        assert_eq!(get(&dir.join("memory.max")), "max");
        assert!(!dir.join("memory.swap.max").exists());
        assert_eq!(get(&dir.join("cpu.max")), "max 50000");
        assert_eq!(get(&dir.join("pids.max")), "max");
    }

    #[test]
    fn a_missing_controller_is_an_error() {
        let (t, m) = fixture("cpu memory");
        assert!(matches!(
            m.create(Some(&resources())),
            Err(CgroupError::NoController { controller: "pids" })
        ));
        assert!(!t.path().join("berth").exists());
        // Without limits, whatever is available is enabled.
        m.create(None).unwrap();
        assert_eq!(
            get(&t.path().join("cgroup.subtree_control")),
            "+cpu +memory"
        );
        assert!(!t.path().join("berth/c1/pids.max").exists());
    }

    #[test]
    fn stats_read_usage() {
        let (t, m) = fixture("cpu memory pids");
        let dir = t.path().join("berth/c1");
        set_fixture(&dir.join("memory.current"), "4096\n");
        set_fixture(&dir.join("pids.current"), "2\n");
        set_fixture(
            &dir.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        assert_eq!(
            m.stats().unwrap(),
            Stats {
                memory_usage: Some(4096),
                pids_current: Some(2),
                cpu_usage_ns: Some(1_500_000),
                ..Stats::default()
            }
        );
        set_fixture(&dir.join("memory.max"), "max\n");
        set_fixture(&dir.join("memory.stat"), "anon 1\ninactive_file 512\n");
        set_fixture(
            &dir.join("io.stat"),
            "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n",
        );
        let s = m.stats().unwrap();
        assert_eq!(s.memory_limit, None);
        assert_eq!(s.memory_inactive_file, Some(512));
        assert_eq!((s.io_read_bytes, s.io_write_bytes), (Some(10), Some(20)));
        set_fixture(&dir.join("memory.max"), "67108864\n");
        assert_eq!(m.stats().unwrap().memory_limit, Some(64 << 20));
        assert_eq!(s.oom_kills, None);
        set_fixture(
            &dir.join("memory.events"),
            "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
        );
        assert_eq!(m.stats().unwrap().oom_kills, Some(1));
    }
}
