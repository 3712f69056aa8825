//! Registries under test: `berth-registry` and Debian's `docker-registry` (CNCF distribution)
//! on free loopback ports, and a check of a registry's blob store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

/// Waits until `GET http://addr/v2/` answers.
pub fn wait_ready(addr: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("registry exited early with {status}");
        }
        if ureq::get(&format!("http://{addr}/v2/")).call().is_ok() {
            return;
        }
        if let Err(ureq::Error::Status(401, _)) = ureq::get(&format!("http://{addr}/v2/")).call() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("registry at {addr} did not become ready");
}

/// A running `berth-registry` process; killed on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its stderr log file.
    pub log: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl Registry {
    /// Starts a registry with a fresh data directory under `dir`.
    #[must_use]
    pub fn start(dir: &Path, extra_args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let data_dir = dir.join("registry-data");
        let mut r = Self {
            addr: format!("127.0.0.1:{}", free_port()),
            data_dir,
            log: dir.join(format!("registry-{}.log", free_port())),
            child: None,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(bin("berth-registry"))
            .arg("serve")
            .args(["--addr", &self.addr])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env_remove("BERTH_REGISTRY_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berth-registry");
        wait_ready(&self.addr, &mut child);
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT`
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        run(Command::new("kill").args(["-TERM", &c.id().to_string()]));
        c.wait().unwrap()
    }

    /// Starts again on the same address and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The access/error log so far.
    #[must_use]
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
        // A failing test gets the server's side of the story (its errors name paths and causes).
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "--- last lines of the registry log ({}):\n{}",
                    self.log.display(),
                    tail.join("\n")
                );
            }
        }
    }
}

/// A running CNCF distribution (`docker-registry`) with filesystem storage and deletes enabled.
pub struct Distribution {
    /// `127.0.0.1:PORT`
    pub addr: String,
    child: Child,
}

impl Distribution {
    /// Starts `docker-registry serve` with its own config and storage under `dir`.
    #[must_use]
    pub fn start(dir: &Path, extra_yaml: &str) -> Self {
        require(
            "docker-registry",
            "install it with `apt-get install docker-registry`",
        );
        let addr = format!("127.0.0.1:{}", free_port());
        let cfg = dir.join("distribution.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra_yaml}",
                dir.join("distribution-data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        wait_ready(&addr, &mut child);
        Self { addr, child }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Verifies every blob under a registry data directory hashes to its path; returns how many.
/// Blob directories without `data` (left by a crash before the content was renamed in) are
/// skipped: the registry does not serve them.
#[must_use]
pub fn verify_blob_store(data_dir: &Path) -> usize {
    let root = data_dir.join("blobs/sha256");
    let mut n = 0;
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return 0;
    };
    for p in prefixes {
        for b in std::fs::read_dir(p.unwrap().path()).unwrap() {
            let b = b.unwrap();
            let hex = b.file_name().into_string().unwrap();
            // A crash between creating the directory and renaming the content into it leaves a
            // directory without `data` (perhaps with a temporary file): no blob, nothing visible.
            let data = match std::fs::read(b.path().join("data")) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("blob {hex}: {e}"),
            };
            assert_eq!(
                sha256(&data),
                format!("sha256:{hex}"),
                "blob {hex} is corrupt on disk"
            );
            n += 1;
        }
    }
    n
}
