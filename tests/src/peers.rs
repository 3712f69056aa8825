//! Peer tools' state kept apart from the machine's: Docker Engine tags removed on drop, and
//! private podman/buildah configuration and storage.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Removes Docker Engine image references on drop (also when the test panics), so tests leave
/// the shared engine as they found it.
#[derive(Default)]
pub struct DockerTags(Vec<String>);

impl DockerTags {
    /// Remembers `reference` for removal.
    pub fn add(&mut self, reference: &str) {
        self.0.push(reference.to_owned());
    }
}

impl Drop for DockerTags {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", r])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Private containers configuration and storage for podman/buildah (nothing shared with the
/// machine's `/var/lib/containers`).
pub struct PodmanEnv {
    /// Root of the private state.
    pub dir: PathBuf,
}

impl PodmanEnv {
    /// Writes `containers.conf`, `storage.conf` and `registries.conf` under `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\ntmp_dir = \"{}\"\n\n[network]\nnetwork_config_dir = \"{}\"\n",
                dir.join("tmp").display(),
                dir.join("networks").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("graph").display(),
                dir.join("run").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        Self {
            dir: dir.to_owned(),
        }
    }

    /// `podman` with this environment.
    ///
    /// Podman makes its shared-memory lock segment (`/dev/shm/libpod_lock`) on its first run on
    /// a machine, and two first runs at once race: the loser fails with "failed to create 2048
    /// locks in /libpod_lock: file exists" (seen on a fresh machine). So the first call in a test
    /// process runs `podman info` alone before any test's podman runs.
    #[must_use]
    pub fn podman(&self) -> Command {
        static FIRST: std::sync::Once = std::sync::Once::new();
        FIRST.call_once(|| {
            let _ = self.podman_command().arg("info").output();
        });
        self.podman_command()
    }

    fn podman_command(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("TMPDIR", self.dir.join("tmp"));
        c
    }
}

impl Drop for PodmanEnv {
    fn drop(&mut self) {
        // Not `podman system reset`: it would also remove the machine's podman networks.
        let _ = self.podman().args(["rmi", "--all", "--force"]).output();
        // Unmount anything storage left mounted so the temporary directory can be removed.
        let prefix = self.dir.display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).output();
        }
    }
}
