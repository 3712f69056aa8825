//! cgroup v1 (and hybrid): one directory per controller hierarchy, e.g.
//! `/sys/fs/cgroup/memory/berth/<id>` and `/sys/fs/cgroup/pids/berth/<id>`.
//!
//! On a hybrid host a limit whose controller v1 lacks goes to the `cgroup2` mount when that
//! lists the controller in `cgroup.controllers`. `linux.resources.devices` goes to both: the
//! `devices` controller here, and an eBPF program on the container's directory in the `cgroup2`
//! mount, which works there whatever controllers it has (the kernel runs the program and then
//! the v1 check). Otherwise the unified mount is ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    blkio_v1_bytes, devices, keyed, mkdir, pids_value, read, read_u64, rmdir, v2, write,
    CgroupError, CgroupManager, Limits, Result, Stats,
};

/// The v1 controllers Berth creates a cgroup in (limits, devices, usage for `stats`, and the
/// freezer for `pause`).
pub const CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer",
];

/// A container's v1 cgroups.
#[derive(Debug, Clone)]
pub struct Manager {
    /// Controller to the container's directory in its hierarchy.
    dirs: BTreeMap<&'static str, PathBuf>,
    /// The hybrid host's v2 hierarchy, for controllers v1 lacks.
    unified: Option<v2::Manager>,
}

impl Manager {
    /// `controllers` maps controller names to their mount points; `rel` is the container's
    /// path below each.
    #[must_use]
    pub fn new(
        controllers: &BTreeMap<String, PathBuf>,
        unified: Option<&Path>,
        rel: &Path,
    ) -> Self {
        let dirs = CONTROLLERS
            .iter()
            .filter_map(|c| controllers.get(*c).map(|m| (*c, m.join(rel))))
            .collect();
        Self {
            dirs,
            unified: unified.map(|u| v2::Manager::new(u, rel)),
        }
    }

    /// The container's directory for `controller`, if the host has it in v1.
    #[must_use]
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    /// Each directory once (comounted controllers share one).
    fn unique_dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for d in self.dirs.values() {
            if !out.contains(&d.as_path()) {
                out.push(d);
            }
        }
        out
    }

    /// Whether the unified hierarchy handles some controllers; errors when a needed controller
    /// is in neither.
    fn unified_for(&self, limits: &Limits) -> Result<Option<(&v2::Manager, Vec<&'static str>)>> {
        let mut missing = Vec::new();
        if limits.wants_memory() && self.dir("memory").is_none() {
            missing.push("memory");
        }
        if limits.wants_cpu() && self.dir("cpu").is_none() {
            missing.push("cpu");
        }
        if limits.pids.is_some() && self.dir("pids").is_none() {
            missing.push("pids");
        }
        let Some(&first) = missing.first() else {
            return Ok(None);
        };
        let Some(unified) = &self.unified else {
            return Err(CgroupError::NoController { controller: first });
        };
        let available = unified.available().unwrap_or_default();
        if let Some(c) = missing.iter().find(|c| !available.iter().any(|a| a == *c)) {
            return Err(CgroupError::NoController { controller: c });
        }
        Ok(Some((unified, missing)))
    }

    fn uses_unified(&self) -> bool {
        self.unified.as_ref().is_some_and(|u| u.dir().exists())
    }

    /// Writes the limits of the v1 controllers (memory, CPU, pids), in an order the kernel
    /// takes whatever the current values: memory + swap may not go below memory, so when a new
    /// memory limit is refused, the new memory + swap goes first.
    fn write_limits(&self, limits: &Limits) -> Result<()> {
        if let Some(dir) = self.dir("memory") {
            let mem = dir.join("memory.limit_in_bytes");
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            // Only with swap accounting (CONFIG_MEMCG_SWAP and swapaccount=1).
            let swap = limits.swap.filter(|_| memsw.exists());
            match (limits.memory, swap) {
                (Some(m), Some(s)) => {
                    if write(&mem, &m.to_string()).is_err() {
                        write(&memsw, &s.to_string())?;
                        write(&mem, &m.to_string())?;
                    } else {
                        write(&memsw, &s.to_string())?;
                    }
                }
                (Some(m), None) => write(&mem, &m.to_string())?,
                (None, Some(s)) => write(&memsw, &s.to_string())?,
                (None, None) => {}
            }
        }
        if let Some(dir) = self.dir("cpu") {
            if let Some(period) = limits.cpu_period {
                write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = limits.cpu_quota {
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            if let Some(shares) = limits.cpu_shares {
                write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
        if let (Some(dir), Some(pids)) = (self.dir("pids"), limits.pids) {
            write(&dir.join("pids.max"), &pids_value(pids))?;
        }
        Ok(())
    }

    /// The container's directory in the hybrid host's `cgroup2` mount, when it has one
    /// (limits v1 lacks, the device program).
    #[must_use]
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.unified
            .as_ref()
            .map(v2::Manager::dir)
            .filter(|d| d.exists())
    }
}

impl CgroupManager for Manager {
    type Error = CgroupError;

    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let limits = Limits::from_resources(resources);
        let unified = self.unified_for(&limits)?;
        let device_rules = devices::from_resources(resources)?;
        if !device_rules.is_empty() && self.dir("devices").is_none() && self.unified.is_none() {
            return Err(CgroupError::NoController {
                controller: "devices",
            });
        }
        for dir in self.unique_dirs() {
            mkdir(dir)?;
        }
        if let Some(dir) = self.dir("devices") {
            // runc's order: `a` to `devices.deny` first, then each allow (the rules' order).
            for (file, line) in devices::v1_writes(&device_rules) {
                write(&dir.join(file), &line)?;
            }
        }
        self.write_limits(&limits)?;
        if let Some((unified, controllers)) = unified {
            unified.create_controllers(&limits, &controllers)?;
        }
        if let (false, Some(unified)) = (device_rules.is_empty(), &self.unified) {
            let dir = unified.dir();
            mkdir(&dir)?;
            devices::attach(&dir, &device_rules)?;
        }
        Ok(())
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        let limits = Limits::from_resources(Some(resources));
        if let Some((unified, controllers)) = self.unified_for(&limits)? {
            unified.write_limits(&unified.dir(), &limits, &controllers)?;
        }
        self.write_limits(&limits)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for dir in self.unique_dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        if self.uses_unified() {
            if let Some(u) = &self.unified {
                u.add_task(pid)?;
            }
        }
        Ok(())
    }

    fn join(&self, in_v2: bool) -> Result<()> {
        for dir in self.unique_dirs() {
            write(&dir.join("tasks"), "0")?;
        }
        match (&self.unified, in_v2) {
            (Some(u), false) if self.uses_unified() => u.join(false),
            _ => Ok(()),
        }
    }

    fn stats(&self) -> Result<Stats> {
        let file = |controller: &str, name: &str| self.dir(controller).map(|d| d.join(name));
        let num = |p: Option<PathBuf>| p.map(|p| read_u64(&p)).transpose();
        // Optional files: absent on some kernels (or in fixtures), never an error.
        let text = |p: Option<PathBuf>| p.filter(|p| p.exists()).map(|p| read(&p)).transpose();
        let io =
            text(file("blkio", "blkio.throttle.io_service_bytes"))?.map(|t| blkio_v1_bytes(&t));
        Ok(Stats {
            memory_usage: num(file("memory", "memory.usage_in_bytes"))?,
            pids_current: num(file("pids", "pids.current"))?,
            cpu_usage_ns: num(file("cpuacct", "cpuacct.usage"))?,
            memory_limit: num(file("memory", "memory.limit_in_bytes").filter(|p| p.exists()))?,
            memory_inactive_file: text(file("memory", "memory.stat"))?
                .and_then(|t| keyed(&t, "total_inactive_file")),
            io_read_bytes: io.map(|(r, _)| r),
            io_write_bytes: io.map(|(_, w)| w),
            oom_kills: text(file("memory", "memory.oom_control"))?
                .and_then(|t| keyed(&t, "oom_kill")),
        })
    }

    fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.unique_dirs() {
            if let Err(e) = rmdir(dir) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(u) = &self.unified {
            if let Err(e) = u.remove() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{get, resources, set_fixture};
    use super::*;

    fn controllers(root: &Path, names: &[&str]) -> BTreeMap<String, PathBuf> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), root.join(n)))
            .collect()
    }

    #[test]
    fn writes_limits_in_each_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(
                root,
                &[
                    "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer",
                ],
            ),
            None,
            Path::new("berth/c1"),
        );
        // Swap accounting present: the kernel would have created this file.
        set_fixture(
            &root.join("memory/berth/c1/memory.memsw.limit_in_bytes"),
            "9223372036854771712",
        );
        m.create(Some(&resources())).unwrap();
        let f = |ctl: &str, file: &str| get(&root.join(ctl).join("berth/c1").join(file));
        assert_eq!(f("memory", "memory.limit_in_bytes"), "33554432");
        assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(f("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(f("pids", "pids.max"), "10");
        assert!(root.join("cpuacct/berth/c1").is_dir());
        // CPU shares go to cpu.shares as they are.
        let m2 = Manager::new(&controllers(root, &["cpu"]), None, Path::new("berth/c9"));
        let r = oci_spec::runtime::LinuxResourcesBuilder::default()
            .cpu(
                oci_spec::runtime::LinuxCpuBuilder::default()
                    .shares(512u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        m2.create(Some(&r)).unwrap();
        assert_eq!(get(&root.join("cpu/berth/c9/cpu.shares")), "512");
        assert!(!root.join("cpu/berth/c9/cpu.cfs_quota_us").exists());
        assert!(root.join("blkio/berth/c1").is_dir());
        // The freezer too, for `pause`.
        assert!(root.join("freezer/berth/c1").is_dir());

        m.add_task(4242).unwrap();
        for ctl in CONTROLLERS {
            assert_eq!(f(ctl, "cgroup.procs"), "4242");
        }
    }

    #[test]
    fn device_rules_go_to_the_devices_controller() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(root, &["memory", "devices"]),
            None,
            Path::new("berth/d1"),
        );
        let mut r = resources();
        let rule = |allow: bool, typ, major, access: &str| {
            let mut d = oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
                .allow(allow)
                .access(access)
                .build()
                .unwrap();
            d.set_typ(typ);
            d.set_major(major);
            d
        };
        use oci_spec::runtime::LinuxDeviceType::{A, C};
        r.set_devices(Some(vec![
            rule(false, Some(A), None, "rwm"),
            rule(true, Some(C), Some(136), "rwm"),
        ]));
        r.set_pids(None);
        r.set_cpu(None);
        m.create(Some(&r)).unwrap();
        // A fixture file keeps the last write of each.
        let dir = root.join("devices/berth/d1");
        assert_eq!(get(&dir.join("devices.deny")), "a");
        assert_eq!(get(&dir.join("devices.allow")), "c 136:* rwm");
        m.add_task(5).unwrap();
        assert_eq!(get(&dir.join("cgroup.procs")), "5");

        // Without a devices controller nor a cgroup2 mount, rules cannot be enforced.
        let m = Manager::new(&controllers(root, &["memory"]), None, Path::new("berth/d2"));
        assert!(matches!(
            m.create(Some(&r)),
            Err(CgroupError::NoController {
                controller: "devices"
            })
        ));
        assert!(!root.join("memory/berth/d2").exists());
    }

    #[test]
    fn no_memsw_without_swap_accounting_and_unlimited_pids() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(root, &["memory", "pids"]),
            None,
            Path::new("berth/c2"),
        );
        let mut r = resources();
        r.set_cpu(None);
        r.set_pids(Some(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(-1)
                .build()
                .unwrap(),
        ));
        m.create(Some(&r)).unwrap();
        let dir = root.join("memory/berth/c2");
        assert_eq!(get(&dir.join("memory.limit_in_bytes")), "33554432");
        assert!(!dir.join("memory.memsw.limit_in_bytes").exists());
        assert_eq!(get(&root.join("pids/berth/c2/pids.max")), "max");
    }

    #[test]
    fn missing_controller_is_an_error_unless_unified_has_it() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let unified = root.join("unified");
        set_fixture(&unified.join("cgroup.controllers"), "hugetlb\n");
        let m = Manager::new(
            &controllers(root, &["memory", "cpu"]),
            Some(&unified),
            Path::new("berth/c3"),
        );
        assert!(matches!(
            m.create(Some(&resources())),
            Err(CgroupError::NoController { controller: "pids" })
        ));
        // Nothing half-created.
        assert!(!root.join("memory/berth").exists());

        set_fixture(&unified.join("cgroup.controllers"), "hugetlb pids\n");
        m.create(Some(&resources())).unwrap();
        assert_eq!(get(&unified.join("berth/c3/pids.max")), "10");
        assert_eq!(get(&unified.join("berth/cgroup.subtree_control")), "+pids");
        m.add_task(7).unwrap();
        assert_eq!(get(&unified.join("berth/c3/cgroup.procs")), "7");
        assert_eq!(get(&root.join("memory/berth/c3/cgroup.procs")), "7");

        // The calling thread joins through `tasks` in v1; v2 only when not cloned into it.
        assert_eq!(
            Manager::new(&BTreeMap::new(), Some(&unified), Path::new("berth/c3")).unified_dir(),
            Some(unified.join("berth/c3"))
        );
        set_fixture(&unified.join("berth/c3/cgroup.procs"), "");
        m.join(true).unwrap();
        assert_eq!(get(&root.join("memory/berth/c3/tasks")), "0");
        assert_eq!(get(&root.join("cpu/berth/c3/tasks")), "0");
        assert_eq!(get(&unified.join("berth/c3/cgroup.procs")), "");
        m.join(false).unwrap();
        assert_eq!(get(&unified.join("berth/c3/cgroup.procs")), "0");
    }

    #[test]
    fn no_unified_directory_no_clone_target() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let unified = root.join("unified");
        let m = Manager::new(
            &controllers(root, &["memory"]),
            Some(&unified),
            Path::new("berth/c4"),
        );
        m.create(None).unwrap();
        assert_eq!(m.unified_dir(), None);
        m.join(false).unwrap();
        assert_eq!(get(&root.join("memory/berth/c4/tasks")), "0");
        assert!(!unified.join("berth/c4").exists());
    }

    #[test]
    fn no_resources_still_creates_the_cgroups() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(root, &["memory", "pids"]),
            None,
            Path::new("b/c"),
        );
        m.create(None).unwrap();
        assert!(root.join("memory/b/c").is_dir());
        assert!(!root.join("memory/b/c/memory.limit_in_bytes").exists());
    }

    #[test]
    fn stats_read_usage() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(root, &["memory", "cpuacct", "pids"]),
            None,
            Path::new("b/c"),
        );
        set_fixture(&root.join("memory/b/c/memory.usage_in_bytes"), "1048576\n");
        set_fixture(&root.join("pids/b/c/pids.current"), "3\n");
        set_fixture(&root.join("cpuacct/b/c/cpuacct.usage"), "123456789\n");
        assert_eq!(
            m.stats().unwrap(),
            Stats {
                memory_usage: Some(1_048_576),
                pids_current: Some(3),
                cpu_usage_ns: Some(123_456_789),
                ..Stats::default()
            }
        );
        set_fixture(&root.join("memory/b/c/memory.limit_in_bytes"), "67108864\n");
        set_fixture(
            &root.join("memory/b/c/memory.stat"),
            "cache 8192\ntotal_inactive_file 4096\n",
        );
        let s = m.stats().unwrap();
        assert_eq!(
            (s.memory_limit, s.memory_inactive_file),
            (Some(64 << 20), Some(4096))
        );
        // No blkio hierarchy in this fixture.
        assert_eq!((s.io_read_bytes, s.io_write_bytes), (None, None));
        set_fixture(&root.join("pids/b/c/pids.current"), "lots\n");
        assert!(matches!(m.stats(), Err(CgroupError::Parse { .. })));
    }

    #[test]
    fn remove_deletes_the_leaves_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = Manager::new(
            &controllers(root, &["memory", "pids"]),
            None,
            Path::new("b/c"),
        );
        m.create(None).unwrap();
        m.remove().unwrap();
        assert!(!root.join("memory/b/c").exists());
        assert!(root.join("memory/b").is_dir());
        // Twice is fine.
        m.remove().unwrap();
    }
}
