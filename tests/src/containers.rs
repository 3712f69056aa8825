//! Containers under test, as root: the busybox root file system, a private `berth` data root
//! that cleans up after itself, the container's cgroups, and test-made addresses.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::*;

/// Fails the test unless it runs as root (the runtime tests need namespaces, mounts, cgroups).
pub fn require_root() {
    assert!(
        run(Command::new("id").arg("-u")).trim() == "0",
        "the runtime tests need root (namespaces, mounts, cgroups); run them as root"
    );
}

/// The in-container checker (`tests/checker/berth-check.c`, see its header for the modes),
/// compiled with `gcc -static` into `<target dir>/berth-check-<hash of the source>` once per machine,
/// so it runs in any root file system. Test images have it as `/bin/berth-check`.
#[must_use]
pub fn checker() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = workspace_root().join("tests/checker/berth-check.c");
            let text = std::fs::read(&src).unwrap();
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from);
            std::fs::create_dir_all(&target).unwrap();
            let hash = sha256(&text);
            let hash = hash.trim_start_matches("sha256:");
            let out = target.join(format!("berth-check-{}", &hash[..12]));
            if !out.exists() {
                require(
                    "gcc",
                    "install it with `apt-get install gcc libc6-dev` (tests/run does)",
                );
                // Several test binaries may build it at once: each into its own file, then rename.
                let tmp = out.with_extension(format!("tmp{}", std::process::id()));
                run(Command::new("gcc")
                    .args(["-static", "-O2", "-Wall", "-o"])
                    .arg(&tmp)
                    .arg(&src));
                std::fs::rename(&tmp, &out).unwrap();
            }
            out
        })
        .clone()
}

/// Builds a busybox root filesystem in `dir/rfs` (applets as symlinks in /bin, and the
/// [`checker`] as `/bin/berth-check`) plus `extra` files (path relative to the root, content) and tars it to `dir/bb.tar`; returns the tar.
#[must_use]
pub fn busybox_rootfs_tar(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    require(
        "busybox",
        "install it with `apt-get install busybox-static`",
    );
    let rfs = dir.join("rfs");
    std::fs::create_dir_all(rfs.join("bin")).unwrap();
    std::fs::create_dir_all(rfs.join("etc")).unwrap();
    let busybox = run(Command::new("sh").args(["-c", "command -v busybox"]));
    std::fs::copy(busybox.trim(), rfs.join("bin/busybox")).unwrap();
    // ETXTBSY: another test thread may fork while our copy's write descriptor is still open,
    // and its child holds it until it execs; exec again shortly after.
    for attempt in 0.. {
        let out = Command::new("chroot")
            .arg(&rfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let busy = String::from_utf8_lossy(&out.stderr).contains("Text file busy");
        assert!(
            busy && attempt < 20,
            "busybox --install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (path, content) in extra {
        let p = rfs.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::copy(checker(), rfs.join("bin/berth-check")).unwrap();
    let tar = dir.join("bb.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// A private data root with the busybox image `bb:1` imported, for container tests as root.
/// Dropping it removes every container it made, and whatever their monitors, mounts and cgroups
/// left if a test failed half-way.
pub struct ContainerEnv {
    /// Holds the data root.
    pub tmp: tempfile::TempDir,
}

impl ContainerEnv {
    /// Imports `bb:1` (busybox with `extra` files) into a fresh data root.
    #[must_use]
    pub fn new(extra: &[(&str, &str)]) -> Self {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let tar = busybox_rootfs_tar(tmp.path(), extra);
        let env = Self { tmp };
        env.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
        env
    }

    /// The data root.
    #[must_use]
    pub fn data_root(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// `berth --data-root … ARGS`, not yet run.
    #[must_use]
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.arg("--data-root").arg(self.data_root()).args(args);
        c
    }

    /// Runs berth; its output.
    #[must_use]
    pub fn berth(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs berth, asserting success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `berth run --rm FLAGS bb:1 sh -c SCRIPT`; (code, stdout, stderr).
    #[must_use]
    pub fn sh(&self, flags: &[&str], script: &str) -> (i32, String, String) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "sh", "-c", script]);
        let out = self.berth(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The IDs of the containers in the data root (directories under `containers/`).
    #[must_use]
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.data_root().join("containers"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `run -d FLAGS bb:1 sh -c SCRIPT`; the container ID.
    pub fn detach(&self, flags: &[&str], script: &str) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "sh", "-c", script]);
        let id = self.ok(&args).trim().to_owned();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    /// Waits (up to 20 s) until container `id` has created `path` (absolute, in its root file
    /// system, seen from the host): how a test knows a script got past its `trap` before
    /// signalling it (PID 1 drops a signal it has no handler for yet).
    pub fn wait_file(&self, id: &str, path: &str) {
        let file = self
            .data_root()
            .join("containers")
            .join(id)
            .join("rootfs")
            .join(path.trim_start_matches('/'));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !file.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "container {id} never created {path}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The container's `state.json`.
    #[must_use]
    pub fn state(&self, id: &str) -> Value {
        let (dir, _) = self.find(id);
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap()
    }

    /// The directory and full ID of the container with this ID prefix or name.
    #[must_use]
    pub fn find(&self, id_or_name: &str) -> (PathBuf, String) {
        let root = self.data_root().join("containers");
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let v: Value = std::fs::read(e.path().join("state.json"))
                .ok()
                .and_then(|t| serde_json::from_slice(&t).ok())
                .unwrap_or_default();
            if id.starts_with(id_or_name) || v["Name"] == id_or_name {
                return (e.path(), id);
            }
        }
        panic!("no container {id_or_name}");
    }
}

impl Drop for ContainerEnv {
    fn drop(&mut self) {
        let root = self.data_root().join("containers");
        let ids = self.container_ids();
        for id in &ids {
            let _ = self.berth(&["rm", "-f", id]);
        }
        for id in &ids {
            if let Ok(text) = std::fs::read(root.join(id).join("state.json")) {
                let v: Value = serde_json::from_slice(&text).unwrap_or_default();
                for who in ["Monitor", "Init"] {
                    if let Some(pid) = v[who]["pid"].as_i64() {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.tmp.path().display().to_string();
        for line in mounts.lines() {
            if let Some(target) = line.split(' ').nth(1).filter(|t| t.starts_with(&prefix)) {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
        for id in &ids {
            for d in container_cgroup_dirs(id) {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

/// The cgroup directories Berth makes for container `id` (v2, or the v1 controllers it uses).
#[must_use]
pub fn container_cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        vec![root.join("berth").join(id)]
    } else {
        [
            "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "unified",
        ]
        .iter()
        .map(|c| root.join(c).join("berth").join(id))
        .filter(|d| d.parent().unwrap().parent().unwrap().is_dir())
        .collect()
    }
}

/// A non-loopback address of this host that the test itself creates: one address from
/// 198.18.0.0/15 (RFC 2544's benchmarking range, used by nothing real) on one end of a veth
/// pair that leads nowhere (this kernel has no `dummy` module), deleted on drop. Traffic to it
/// stays on this machine, as traffic to the host's own address would, and no real interface or
/// network is involved.
pub struct TestAddr {
    link: String,
    /// The address.
    pub ip: std::net::Ipv4Addr,
}

impl TestAddr {
    /// Creates the link and the address.
    #[must_use]
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        require_root();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() % 8192) * 8 + n % 8;
        let link = format!("bthaddr{id}");
        #[allow(clippy::cast_possible_truncation)] // id < 65536
        let ip = std::net::Ipv4Addr::new(198, 18, (id >> 8) as u8, (id & 0xff) as u8);
        let _ = Command::new("ip").args(["link", "del", &link]).output();
        for args in [
            format!("link add {link} type veth peer name {link}p"),
            format!("addr add {ip}/32 dev {link}"),
            format!("link set {link}p up"),
            format!("link set {link} up"),
        ] {
            run(Command::new("ip").args(args.split(' ')));
        }
        Self { link, ip }
    }
}

impl Drop for TestAddr {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
    }
}

impl Default for TestAddr {
    fn default() -> Self {
        Self::new()
    }
}
