//! berth-registry as a pull-through mirror (issue 10), with real binaries and real clients:
//! upstreams are local `berth-registry` processes standing in for Docker Hub and ghcr.io; the
//! mirror is `berth-registry serve --mirror docker.io=URL --mirror ghcr.io=URL`. Clients are
//! skopeo, `berth pull` (`registry-mirrors`, `registry-mirror-map`) and containerd's `ctr` with a
//! `hosts.toml` mirror (`?ns=`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::{bin, busybox_image, nonce, require, run, Registry};

/// Pushes the standard busybox image (+ `extra` layers) to `addr/repo:tag`; returns its digest
/// and its layer digests.
fn seed(dir: &Path, addr: &str, repo: &str, tag: &str, extra: usize) -> (String, Vec<String>) {
    require("skopeo", "apt-get install skopeo");
    let (layout, m) = busybox_image(&dir.join(format!("layout-{}", nonce())), extra, tag);
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.dir.display()))
        .arg(format!("docker://{addr}/{repo}:{tag}")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&berth_tests::layout_blob(&layout.dir, &m.digest)).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for l in manifest["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_owned());
    }
    (m.digest, blobs)
}

fn skopeo_digest(reference: &str) -> Result<String, String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `skopeo copy` into a fresh OCI layout (skopeo verifies every blob's digest).
fn skopeo_copy(reference: &str, dest: &Path) -> Result<(), String> {
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", dest.display()))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Upstream `GET`s of `digest` in a registry's access log.
fn upstream_gets(r: &Registry, digest: &str) -> usize {
    r.log_text()
        .lines()
        .filter(|l| l.contains("GET /v2/") && l.contains(&format!("/blobs/{digest} ")))
        .count()
}

fn berth(dir: &Path, daemon_json: &serde_json::Value, args: &[&str]) -> (bool, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cfg = dir.join("daemon.json");
    std::fs::write(&cfg, serde_json::to_vec(daemon_json).unwrap()).unwrap();
    let out = Command::new(bin("berth"))
        .arg("--data-root")
        .arg(dir.join("root"))
        .arg("--config-file")
        .arg(&cfg)
        .args(args)
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_DATA_ROOT")
        .env("HOME", &home)
        .env("BERTH_CONFIG_DIR", home.join(".berth"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("BERTH_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn skopeo_and_berth_pull_through_one_mirror_for_two_upstreams() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Registry::start(&tmp.path().join("hub"), &[]);
    let ghcr = Registry::start(&tmp.path().join("ghcr"), &[]);
    let (tiny, _) = seed(tmp.path(), &hub.addr, "library/tiny", "latest", 0);
    let (app, _) = seed(tmp.path(), &ghcr.addr, "org/app", "v1", 2);
    let mirror = Registry::start(
        &tmp.path().join("mirror"),
        &[
            "--mirror",
            &format!("docker.io={}", hub.url()),
            "--mirror",
            &format!("ghcr.io={}", ghcr.url()),
        ],
    );
    let m = &mirror.addr;
    // Docker-style (default upstream), path prefix (Podman/CRI-O), both with the upstream's digest.
    assert_eq!(
        skopeo_digest(&format!("{m}/library/tiny:latest")).unwrap(),
        tiny
    );
    assert_eq!(
        skopeo_digest(&format!("{m}/ghcr.io/org/app:v1")).unwrap(),
        app
    );
    skopeo_copy(&format!("{m}/ghcr.io/org/app:v1"), &tmp.path().join("copy")).unwrap();
    // berth: `registry-mirrors` for docker.io names, `registry-mirror-map` (with ?ns=) for ghcr.io.
    let mirror_url = mirror.url();
    let daemon = serde_json::json!({
        "registry-mirrors": [mirror_url],
        "registry-mirror-map": {"ghcr.io": [mirror_url]},
        "registry-mirrors-only": true,
    });
    let (ok, out) = berth(&tmp.path().join("b"), &daemon, &["pull", "tiny"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("Digest: {tiny}")), "{out}");
    assert!(
        out.contains(&format!("Pulled from mirror {mirror_url}")),
        "{out}"
    );
    let (ok, out) = berth(
        &tmp.path().join("b"),
        &daemon,
        &["pull", "ghcr.io/org/app:v1"],
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("Digest: {app}")), "{out}");
    assert!(mirror.log_text().contains("ns=ghcr.io"), "berth sent ?ns=");
    // Nothing of the upstream content landed among pushed repositories.
    assert!(!mirror
        .data_dir
        .join("repositories")
        .join("library")
        .exists());
}

#[test]
fn ten_concurrent_cold_pulls_fetch_each_blob_once() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Registry::start(&tmp.path().join("hub"), &[]);
    // busybox + 7 layers: the 8-layer image.
    let (digest, blobs) = seed(tmp.path(), &hub.addr, "library/eight", "v1", 7);
    assert_eq!(blobs.len(), 9);
    let mirror = Registry::start(&tmp.path().join("mirror"), &["--mirror", &hub.url()]);
    let before: Vec<usize> = blobs.iter().map(|b| upstream_gets(&hub, b)).collect();
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let reference = format!("{}/library/eight:v1", mirror.addr);
            let dest = tmp.path().join(format!("pull-{i}"));
            std::thread::spawn(move || skopeo_copy(&reference, &dest))
        })
        .collect();
    for t in threads {
        t.join()
            .unwrap()
            .expect("every client gets verified content");
    }
    for (b, before) in blobs.iter().zip(before) {
        assert_eq!(
            upstream_gets(&hub, b) - before,
            1,
            "{b} fetched once upstream"
        );
    }
    assert_eq!(
        skopeo_digest(&format!("{}/library/eight:v1", mirror.addr)).unwrap(),
        digest
    );
}

#[test]
fn upstream_down_serves_cached_and_fails_uncached_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Registry::start(&tmp.path().join("hub"), &[]);
    let (digest, _) = seed(tmp.path(), &hub.addr, "library/app", "v1", 1);
    let cfg = tmp.path().join("mirror.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[[mirror]]\nregistry = \"docker.io\"\nurl = \"{}\"\ntag_recheck_secs = 1\n",
            hub.url()
        ),
    )
    .unwrap();
    let mirror = Registry::start(
        &tmp.path().join("mirror"),
        &["--config", cfg.to_str().unwrap()],
    );
    let m = &mirror.addr;
    skopeo_copy(&format!("{m}/library/app:v1"), &tmp.path().join("warm")).unwrap();
    hub.kill9();
    std::thread::sleep(Duration::from_millis(1100));
    // Cached tag (stale-if-error, past the recheck interval) and digest still pull.
    skopeo_copy(&format!("{m}/library/app:v1"), &tmp.path().join("tag")).unwrap();
    skopeo_copy(
        &format!("{m}/library/app@{digest}"),
        &tmp.path().join("digest"),
    )
    .unwrap();
    assert!(
        mirror.log_text().contains("stale-if-error"),
        "the log says so"
    );
    // Uncached: a clear error naming the upstream.
    let err = skopeo_digest(&format!("{m}/library/other:v1")).unwrap_err();
    assert!(err.contains("docker.io") || err.contains("503"), "{err}");
    // The upstream comes back with the tag moved: seen after the recheck interval.
    hub.restart();
    let (moved, _) = seed(tmp.path(), &hub.addr, "library/app", "v1", 2);
    assert_ne!(moved, digest);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        skopeo_digest(&format!("{m}/library/app:v1")).unwrap(),
        moved
    );
}

/// containerd: `ctr images pull --hosts-dir` with a `hosts.toml` mirror for two registries,
/// both through the one mirror (containerd sends `?ns=<registry>`).
#[test]
fn containerd_hosts_toml_mirrors_two_registries_through_ns() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Registry::start(&tmp.path().join("hub"), &[]);
    let ghcr = Registry::start(&tmp.path().join("ghcr"), &[]);
    let (tiny, _) = seed(tmp.path(), &hub.addr, "library/tiny", "1", 0);
    let (app, _) = seed(tmp.path(), &ghcr.addr, "org/app", "v1", 1);
    let mirror = Registry::start(
        &tmp.path().join("mirror"),
        &[
            "--mirror",
            &format!("docker.io={}", hub.url()),
            "--mirror",
            &format!("ghcr.io={}", ghcr.url()),
        ],
    );
    let hosts = hosts_dir(
        tmp.path(),
        &[
            ("docker.io", "https://registry-1.docker.io"),
            ("ghcr.io", "https://ghcr.io"),
        ],
        &mirror.url(),
    );
    for (reference, digest) in [
        ("docker.io/library/tiny:1", &tiny),
        ("ghcr.io/org/app:v1", &app),
    ] {
        let (ok, err, listed) = ctr_pull(&hosts, reference);
        assert!(ok, "ctr pull {reference}: {err}");
        assert!(
            listed.contains(digest.as_str()),
            "{reference} has the upstream's digest"
        );
    }
    let log = mirror.log_text();
    assert!(
        log.contains("ns=docker.io") && log.contains("ns=ghcr.io"),
        "{log}"
    );
}

/// A second `dockerd` of the test's own (MACHINE-NOTES: its own bridge, never `--bridge=none`),
/// stopped by PID and its bridge deleted on drop.
struct SecondDockerd {
    dir: std::path::PathBuf,
    bridge: String,
    child: Option<std::process::Child>,
}

impl SecondDockerd {
    fn start(dir: &Path, daemon_json: &serde_json::Value) -> Self {
        let bridge = format!("bm{}", std::process::id() % 100_000);
        let subnet = std::process::id() % 200 + 20;
        let ip = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
        let _ = ip(&["link", "del", &bridge]);
        assert!(ip(&["link", "add", &bridge, "type", "bridge"])
            .status
            .success());
        let mut me = Self {
            dir: dir.to_owned(),
            bridge: bridge.clone(),
            child: None,
        };
        assert!(ip(&[
            "addr",
            "add",
            &format!("10.254.{subnet}.1/24"),
            "dev",
            &bridge
        ])
        .status
        .success());
        assert!(ip(&["link", "set", &bridge, "up"]).status.success());
        std::fs::create_dir_all(dir).unwrap();
        let cfg = dir.join("daemon.json");
        std::fs::write(&cfg, serde_json::to_vec(daemon_json).unwrap()).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--config-file")
            .arg(&cfg)
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip-masq=false",
            ])
            .arg(format!("--bridge={bridge}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        me.child = Some(child);
        for _ in 0..240 {
            if me.docker(&["version"]).status.success() {
                return me;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the second dockerd did not start: {}",
            std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for SecondDockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..80 {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// Docker's `registry-mirrors` pointing at berth-registry: `docker pull tiny` (→
/// `docker.io/library/tiny`) comes from the upstream through the mirror with the upstream's digest.
#[test]
fn a_second_dockerd_pulls_through_registry_mirrors() {
    berth_tests::require_root();
    require("dockerd", "the Docker Engine");
    let docker0 = Command::new("ip")
        .args(["link", "show", "docker0"])
        .output()
        .unwrap();
    assert!(
        docker0.status.success(),
        "docker0 is missing (a dockerd started with --bridge=none deletes it); recreate it with \
         `ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 mtu 1400 up`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let hub = Registry::start(&tmp.path().join("hub"), &[]);
    let (tiny, _) = seed(tmp.path(), &hub.addr, "library/tiny", "latest", 1);
    let mirror = Registry::start(&tmp.path().join("mirror"), &["--mirror", &hub.url()]);
    let dockerd = SecondDockerd::start(
        &tmp.path().join("dockerd"),
        &serde_json::json!({"registry-mirrors": [mirror.url()]}),
    );
    let out = dockerd.docker(&["pull", "tiny"]);
    assert!(
        out.status.success(),
        "docker pull tiny: {}\nmirror log: {}",
        String::from_utf8_lossy(&out.stderr),
        mirror.log_text()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("Digest: {tiny}")), "{stdout}");
    let out = dockerd.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        "tiny",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&tiny),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(dockerd);
}

/// Podman with a `registries.conf` mirror location (`mirror:port/ghcr.io`: the path prefix).
#[test]
fn podman_pulls_through_a_registries_conf_mirror_location() {
    berth_tests::require_root();
    require("podman", "apt-get install podman");
    let tmp = tempfile::tempdir().unwrap();
    let ghcr = Registry::start(&tmp.path().join("ghcr"), &[]);
    let (app, _) = seed(tmp.path(), &ghcr.addr, "org/app", "v1", 1);
    let mirror = Registry::start(
        &tmp.path().join("mirror"),
        &["--mirror", &format!("ghcr.io={}", ghcr.url())],
    );
    let env = berth_tests::PodmanEnv::new(&tmp.path().join("podman"));
    std::fs::write(
        env.dir.join("registries.conf"),
        format!(
            "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"ghcr.io\"\n\n[[registry.mirror]]\nlocation = \"{}/ghcr.io\"\ninsecure = true\n",
            mirror.addr
        ),
    )
    .unwrap();
    let out = env
        .podman()
        .args(["pull", "-q", "ghcr.io/org/app:v1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman pull: {}\nmirror log: {}",
        String::from_utf8_lossy(&out.stderr),
        mirror.log_text()
    );
    let out = env
        .podman()
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            "ghcr.io/org/app:v1",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), app);
    assert!(mirror
        .log_text()
        .contains("/v2/ghcr.io/org/app/manifests/v1"));
}

/// An upstream that needs token auth (berth-registry with `[auth.token]` + htpasswd, as Docker
/// Hub): the mirror's `username` + `password_file` work; a wrong password is a clear error.
#[test]
fn an_upstream_with_token_auth_takes_the_mirror_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let seed_registry = Registry::start(&tmp.path().join("hub"), &[]);
    let (digest, _) = seed(tmp.path(), &seed_registry.addr, "library/private", "v1", 0);
    // The same directory (and so the same data) again, now with auth.
    drop(seed_registry);
    let htpasswd = tmp.path().join("htpasswd");
    add_user(&htpasswd, "mirror", "s3cret");
    let hub_cfg = tmp.path().join("hub.toml");
    std::fs::write(
        &hub_cfg,
        format!(
            "version = 1\n[auth]\nhtpasswd = \"{}\"\n[auth.token]\nissuer = \"hub\"\nservice = \"hub-svc\"\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let hub = Registry::start(
        &tmp.path().join("hub"),
        &["--config", hub_cfg.to_str().unwrap()],
    );
    let mirror_with = |name: &str, password: &str| {
        let pw = tmp.path().join(format!("{name}.pw"));
        std::fs::write(&pw, format!("{password}\n")).unwrap();
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "version = 1\n[[mirror]]\nregistry = \"docker.io\"\nurl = \"{}\"\nusername = \"mirror\"\npassword_file = \"{}\"\n",
                hub.url(),
                pw.display()
            ),
        )
        .unwrap();
        Registry::start(&tmp.path().join(name), &["--config", cfg.to_str().unwrap()])
    };
    // Anonymous clients of the mirror; the mirror authenticates upstream.
    let good = mirror_with("good", "s3cret");
    assert_eq!(
        skopeo_digest(&format!("{}/library/private:v1", good.addr)).unwrap(),
        digest
    );
    skopeo_copy(
        &format!("{}/library/private:v1", good.addr),
        &tmp.path().join("copy"),
    )
    .unwrap();
    let bad = mirror_with("bad", "wrong");
    let err = skopeo_digest(&format!("{}/library/private:v1", bad.addr)).unwrap_err();
    assert!(err.contains("502"), "{err}");
    // The error body (and the mirror's log) say why; skopeo prints only the status of a 502.
    let log = bad.log_text();
    assert!(
        log.contains("refused the mirror's credentials")
            && log.contains("check the [[mirror]] username and password"),
        "{log}"
    );
    assert!(
        !good.log_text().contains("s3cret"),
        "no password in the log"
    );
}

/// Adds `name` with `password` to the `htpasswd` file (`berth-registry user add`).
fn add_user(htpasswd: &Path, name: &str, password: &str) {
    use std::io::Write as _;
    let mut add = Command::new(bin("berth-registry"))
        .args(["user", "add", name, "--password-stdin", "--htpasswd"])
        .arg(htpasswd)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{password}").unwrap();
    assert!(add.wait().unwrap().success());
}

/// The containerd `hosts.toml` directory for `registries`, each mirrored by `mirror_url`.
fn hosts_dir(dir: &Path, registries: &[(&str, &str)], mirror_url: &str) -> std::path::PathBuf {
    let hosts = dir.join(format!("hosts-{}", nonce()));
    for (registry, server) in registries {
        let d = hosts.join(registry);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("hosts.toml"),
            format!(
                "server = \"{server}\"\n\n[host.\"{mirror_url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
    }
    hosts
}

/// `ctr images pull --hosts-dir HOSTS REFERENCE` in a namespace of its own, removed after:
/// whether it succeeded, its stderr, and `ctr images ls` right after.
fn ctr_pull(hosts: &Path, reference: &str) -> (bool, String, String) {
    let sock = "/var/run/docker/containerd/containerd.sock";
    assert!(
        Path::new(sock).exists(),
        "no containerd socket at {sock}: the Docker Engine (and its containerd) must be running"
    );
    require("ctr", "installed with the Docker Engine");
    let ns = format!("berth-mirror-{}", nonce());
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .args(["--address", sock, "-n", &ns])
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctr(&[
        "images",
        "pull",
        "--hosts-dir",
        hosts.to_str().unwrap(),
        reference,
    ]);
    let listed = ctr(&["images", "ls"]);
    let _ = ctr(&["images", "rm", reference]);
    let _ = ctr(&["content", "prune", "references"]);
    let _ = Command::new("ctr")
        .args(["--address", sock, "namespaces", "rm", &ns])
        .output();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&listed.stdout).into_owned(),
    )
}

#[test]
fn ns_routed_reads_are_checked_under_the_mirrored_name() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Registry::start(&tmp.path().join("hub"), &[]);
    let ghcr = Registry::start(&tmp.path().join("ghcr"), &[]);
    seed(tmp.path(), &hub.addr, "library/tiny", "1", 0);
    let (app, _) = seed(tmp.path(), &ghcr.addr, "org/app", "v1", 1);
    let htpasswd = tmp.path().join("htpasswd");
    add_user(&htpasswd, "alice", "alice-pw");
    // ghcr.io's names are anonymous-pull, whatever the route (`?ns=` or the path prefix);
    // everything else (docker.io's names included) needs alice.
    let config = |token: &str| {
        format!(
            "version = 1\n[auth]\nhtpasswd = \"{}\"\n{token}\
             [[auth.access]]\nrepositories = [\"ghcr.io/**\"]\nusers = [\"anonymous\", \"*\"]\nactions = [\"pull\"]\n\
             [[auth.access]]\nrepositories = [\"**\"]\nusers = [\"alice\"]\nactions = [\"*\"]\n\
             [[mirror]]\nregistry = \"docker.io\"\nurl = \"{}\"\ndefault = true\n\
             [[mirror]]\nregistry = \"ghcr.io\"\nurl = \"{}\"\n",
            htpasswd.display(),
            hub.url(),
            ghcr.url()
        )
    };
    let start = |name: &str, text: String| {
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, text).unwrap();
        Registry::start(&tmp.path().join(name), &["--config", cfg.to_str().unwrap()])
    };
    let accept = [("Accept", berth_tests::ACCEPT_MANIFESTS)];

    // Basic: the grant is looked up under `ghcr.io/org/app` for `org/app?ns=ghcr.io`.
    let basic = start("basic", config(""));
    let url = |path: &str| format!("{}/v2/{path}", basic.url());
    let r = berth_tests::http(
        "GET",
        &url("org/app/manifests/v1?ns=ghcr.io"),
        &accept,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(app.as_str()));
    let r = berth_tests::http("GET", &url("ghcr.io/org/app/manifests/v1"), &accept, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = berth_tests::http(
        "GET",
        &url("library/tiny/manifests/1?ns=docker.io"),
        &accept,
        None,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("docker.io/library/tiny"), "{}", r.text());
    // A `?ns=` of no configured upstream is a local read, checked under its own name.
    let r = berth_tests::http(
        "GET",
        &url("org/app/manifests/v1?ns=quay.io"),
        &accept,
        None,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    // Once alice pushes a local `org/app`, it shadows the mirrored one for `?ns=` reads too, and
    // they need her grant: an anonymous `?ns=ghcr.io` cannot read the local repository.
    let (layout, m) = busybox_image(&tmp.path().join("local"), 2, "v1");
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alice-pw",
        ])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/org/app:v1", basic.addr)));
    let r = berth_tests::http(
        "GET",
        &url("org/app/manifests/v1?ns=ghcr.io"),
        &accept,
        None,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let auth = "Basic YWxpY2U6YWxpY2UtcHc="; // alice:alice-pw
    let r = berth_tests::http(
        "GET",
        &url("org/app/manifests/v1?ns=ghcr.io"),
        &[accept[0], ("Authorization", auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(m.digest.as_str()));
    // The path-prefix form still reaches the mirrored one anonymously.
    let r = berth_tests::http("GET", &url("ghcr.io/org/app/manifests/v1"), &accept, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(app.as_str()));

    // Bearer tokens: containerd asks the token server for the challenge's scope
    // (`repository:ghcr.io/org/app:pull`), which the anonymous rule grants.
    let token = start(
        "token",
        config("[auth.token]\nissuer = \"mirror\"\nservice = \"mirror\"\n"),
    );
    let r = berth_tests::http(
        "GET",
        &format!("{}/v2/org/app/manifests/v1?ns=ghcr.io", token.url()),
        &accept,
        None,
    );
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap_or_default().to_owned();
    assert!(
        challenge.contains("scope=\"repository:ghcr.io/org/app:pull\""),
        "{challenge}"
    );
    // The fallback servers are closed loopback ports: a refused pull goes nowhere else.
    let hosts = hosts_dir(
        tmp.path(),
        &[
            ("docker.io", "https://127.0.0.1:1"),
            ("ghcr.io", "https://127.0.0.1:1"),
        ],
        &token.url(),
    );
    let (ok, err, _) = ctr_pull(&hosts, "ghcr.io/org/app:v1");
    assert!(ok, "anonymous ctr pull of a ghcr.io name: {err}");
    let (ok, err, _) = ctr_pull(&hosts, "docker.io/library/tiny:1");
    assert!(
        !ok,
        "anonymous ctr pull of a docker.io name must be refused"
    );
    assert!(
        err.contains("pull access denied") && err.contains("insufficient_scope"),
        "{err}"
    );
}
