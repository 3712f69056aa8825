//! `berth pull`, `push`, `tag`, `images`, `rmi` against `berth-registry` and the CNCF
//! registry, daemon.json mirrors (fall-through, mirror-only), insecure registries, and a
//! corrupted blob.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_tests::*;

/// A `berth` command with its own data root and credentials dir, and no ambient daemon.json.
struct Berth {
    root: PathBuf,
    home: PathBuf,
    config: Option<PathBuf>,
}

impl Berth {
    fn new(dir: &Path) -> Self {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self {
            root: dir.join("berth-root"),
            home,
            config: None,
        }
    }

    fn with_daemon_json(dir: &Path, json: &serde_json::Value) -> Self {
        let mut b = Self::new(dir);
        let p = dir.join("daemon.json");
        std::fs::write(&p, serde_json::to_vec_pretty(json).unwrap()).unwrap();
        b.config = Some(p);
        b
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.arg("--data-root").arg(&self.root);
        if let Some(cfg) = &self.config {
            c.arg("--config-file").arg(cfg);
        }
        c.args(args)
            .env_remove("BERTH_CONFIG")
            .env_remove("BERTH_DATA_ROOT")
            .env("HOME", &self.home)
            .env("BERTH_CONFIG_DIR", self.home.join(".berth"))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("BERTH_NO_PROGRESS", "1")
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "berth {args:?} should fail with 1; stdout {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }
}

/// Pushes the standard busybox test image to `addr/repo:tag` with skopeo; returns its manifest digest.
fn seed(dir: &Path, addr: &str, repo: &str, tag: &str, layers: usize) -> String {
    require("skopeo", "apt-get install skopeo");
    let (layout, m) = busybox_image(&dir.join(format!("layout-{}", nonce())), layers, tag);
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.dir.display()))
        .arg(format!("docker://{addr}/{repo}:{tag}")));
    m.digest
}

fn pull_tag_push_rmi_roundtrip(registry_addr: &str, dir: &Path) {
    let digest = seed(dir, registry_addr, "team/app", "v1", 3);
    let berth = Berth::new(&dir.join("client"));
    let image = format!("{registry_addr}/team/app:v1");
    let (out, err) = berth.ok(&["pull", &image]);
    assert_eq!(
        out.trim(),
        format!("{registry_addr}/team/app:v1"),
        "pull prints the reference on stdout"
    );
    assert!(err.contains("v1: Pulling from"), "{err}");
    assert!(err.contains(&format!("Digest: {digest}")), "{err}");
    assert!(err.contains("Status: Downloaded newer image for"), "{err}");
    // A second pull is a no-op.
    let (_, err) = berth.ok(&["pull", &image]);
    assert!(
        err.contains("Already exists") && err.contains("Image is up to date"),
        "{err}"
    );

    let (out, _) = berth.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY")
            && lines[0].contains("IMAGE ID")
            && lines[0].contains("SIZE"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("{registry_addr}/team/app")) && lines[1].contains("v1"),
        "{out}"
    );
    let (out, _) = berth.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert_eq!(out.trim(), format!("{registry_addr}/team/app v1 {digest}"));

    // tag + push to another repository: blobs are mounted or skipped, digest identical.
    let pushed = format!("{registry_addr}/team/copy:v2");
    berth.ok(&["tag", &image, &pushed]);
    let (_, err) = berth.ok(&["push", &pushed]);
    assert!(err.contains(&format!("v2: digest: {digest}")), "{err}");
    let served = get_manifest(&format!("http://{registry_addr}"), "team/copy", "v2");
    assert_eq!(
        sha256(&served.body),
        digest,
        "registry serves the same manifest bytes"
    );
    // Pushing again finds every layer already there.
    let (_, err) = berth.ok(&["push", &pushed]);
    assert!(err.contains("Layer already exists"), "{err}");

    // rmi: untag one, then delete.
    let (out, _) = berth.ok(&["rmi", &pushed]);
    assert_eq!(out.trim(), format!("Untagged: {pushed}"));
    let (out, _) = berth.ok(&["rmi", &image]);
    assert!(
        out.contains(&format!("Untagged: {image}")) && out.contains("Deleted: sha256:"),
        "{out}"
    );
    let (out, _) = berth.ok(&["images", "-q"]);
    assert!(out.trim().is_empty(), "{out}");
    let err = berth.fails(&["rmi", &image]);
    assert!(err.contains("No such image"), "{err}");
}

#[test]
fn pull_push_against_berth_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    pull_tag_push_rmi_roundtrip(&reg.addr, tmp.path());
}

#[test]
fn pull_push_against_cncf_distribution() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Distribution::start(tmp.path(), "");
    pull_tag_push_rmi_roundtrip(&reg.addr, tmp.path());
}

#[test]
fn unpacked_layers_hold_the_image_files() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    seed(tmp.path(), &reg.addr, "files", "latest", 2);
    let berth = Berth::new(&tmp.path().join("client"));
    berth.ok(&["pull", "-q", &format!("{}/files", reg.addr)]);
    let (out, _) = berth.ok(&[
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &format!("{}/files", reg.addr),
    ]);
    let layers: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(layers.len(), 3);
    let base = berth
        .root
        .join("layers/sha256")
        .join(&layers[0][7..])
        .join("fs");
    let busybox = std::fs::read(base.join("bin/busybox")).unwrap();
    assert_eq!(busybox, std::fs::read("/bin/busybox").unwrap());
    let top = berth
        .root
        .join("layers/sha256")
        .join(&layers[2][7..])
        .join("fs");
    assert_eq!(
        std::fs::read_to_string(top.join("etc/layer-1")).unwrap(),
        "layer 1\n"
    );
}

#[test]
fn mirrors_fall_through_in_order_and_say_which_served() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = Registry::start(&tmp.path().join("m"), &[]);
    // Docker Hub content on a mirror lives under library/.
    let digest = seed(tmp.path(), &mirror.addr, "library/busybox", "latest", 1);
    let down = format!("http://127.0.0.1:{}", free_port());
    let berth = Berth::with_daemon_json(
        tmp.path(),
        &serde_json::json!({"registry-mirrors": [down, mirror.url()]}),
    );
    let (out, err) = berth.ok(&["pull", "busybox"]);
    assert_eq!(out.trim(), "docker.io/library/busybox:latest");
    assert!(
        err.contains(&format!("Pulled from mirror {}", mirror.url())),
        "{err}"
    );
    assert!(
        err.contains(&format!("mirror {down} could not serve")),
        "{err}"
    );
    assert!(err.contains(&format!("Digest: {digest}")), "{err}");
    let (out, _) = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), "busybox:latest");
}

#[test]
fn mirror_only_refuses_the_upstream_and_mirror_map_covers_any_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Registry::start(&tmp.path().join("up"), &[]);
    seed(tmp.path(), &upstream.addr, "team/app", "v1", 1);
    let down = format!("http://127.0.0.1:{}", free_port());
    let image = format!("{}/team/app:v1", upstream.addr);
    let map = serde_json::json!({ upstream.addr.clone(): [down.clone()] });

    let only = Berth::with_daemon_json(
        &tmp.path().join("only"),
        &serde_json::json!({"registry-mirror-map": map, "registry-mirrors-only": true}),
    );
    let err = only.fails(&["pull", &image]);
    assert!(err.contains("registry-mirrors-only"), "{err}");
    let (out, _) = only.ok(&["images", "-q"]);
    assert!(out.trim().is_empty());

    let fallback = Berth::with_daemon_json(
        &tmp.path().join("fb"),
        &serde_json::json!({"registry-mirror-map": map}),
    );
    let (_, err) = fallback.ok(&["pull", &image]);
    assert!(
        err.contains(&format!("Pulled from registry {}", upstream.addr)),
        "{err}"
    );
}

#[test]
fn plain_http_registry_is_refused_unless_listed_as_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    // A non-loopback address of this host (plain HTTP there is not implicitly insecure).
    let test_addr = TestAddr::new();
    let ip = test_addr.ip.to_string();
    let port = free_port();
    // Listening on every interface, so it is reachable at the test's address.
    let mut child = Command::new(bin("berth-registry"))
        .args(["--addr", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(tmp.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&format!("127.0.0.1:{port}"), &mut child);
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    let addr = format!("{ip}:{port}");
    seed(tmp.path(), &format!("127.0.0.1:{port}"), "sec/app", "v1", 1);
    let image = format!("{addr}/sec/app:v1");
    let strict = Berth::new(&tmp.path().join("strict"));
    let err = strict.fails(&["pull", &image]);
    assert!(
        err.contains("insecure-registries"),
        "the error says how to allow it: {err}"
    );
    for entry in [addr.clone(), format!("{ip}/32")] {
        let allowed = Berth::with_daemon_json(
            &tmp.path().join(format!("allowed-{}", nonce())),
            &serde_json::json!({"insecure-registries": [entry]}),
        );
        allowed.ok(&["pull", &image]);
    }
}

#[test]
fn corrupted_blob_is_refused_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    seed(tmp.path(), &reg.addr, "bad/blob", "v1", 1);
    // Flip bytes of the busybox layer on the registry's disk.
    let manifest = get_manifest(&reg.url(), "bad/blob", "v1").json();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let path = reg
        .data_dir
        .join("blobs/sha256")
        .join(&layer[7..9])
        .join(&layer[7..])
        .join("data");
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    let berth = Berth::new(&tmp.path().join("client"));
    let err = berth.fails(&["pull", &format!("{}/bad/blob:v1", reg.addr)]);
    assert!(
        err.contains("digest mismatch") || err.contains("verification"),
        "{err}"
    );
    assert!(
        !berth.root.join("blobs/sha256").join(&layer[7..]).exists(),
        "bad blob not stored"
    );
    let (out, _) = berth.ok(&["images", "-a", "-q"]);
    assert!(out.trim().is_empty(), "{out}");
    let tmp_left: Vec<_> = std::fs::read_dir(berth.root.join("tmp")).unwrap().collect();
    assert!(tmp_left.is_empty(), "no partial files left: {tmp_left:?}");
}

#[test]
fn bad_references_and_daemon_json_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let berth = Berth::new(tmp.path());
    let err = berth.fails(&["pull", "Busybox"]);
    assert!(
        err.contains("invalid reference format: repository name (Busybox) must be lowercase"),
        "{err}"
    );
    let err = berth.fails(&["pull", "busybox:bad:tag"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let bad = Berth::with_daemon_json(
        &tmp.path().join("bad"),
        &serde_json::json!({"max-concurrent-downloads": 0}),
    );
    let err = bad.fails(&["images"]);
    assert!(err.contains("`max-concurrent-downloads`"), "{err}");
    std::fs::write(tmp.path().join("bad/daemon.json"), "{ not json").unwrap();
    let err = bad.fails(&["images"]);
    assert!(err.contains("invalid daemon config"), "{err}");
}

/// A TCP proxy that forwards to `upstream` and cuts the first connection that has carried more
/// than `cut_after` bytes back to the client (once).
fn cutting_proxy(upstream: String, cut_after: usize) -> String {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut_done = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            let cut_done = cut_done.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0;
                loop {
                    let n = match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                    if sent > cut_after && !cut_done.swap(true, Ordering::SeqCst) {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn an_interrupted_layer_download_resumes_with_a_range_request() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    // An image with one 16 MiB incompressible layer.
    let mut layout = Layout::new(&tmp.path().join("layout"));
    let big = noise(16 << 20, 7);
    let (l, d) = layer(&[("data.bin", &big, 0o644)]);
    let m = layout.add_image(&[l], &[d], "amd64", Some("v1"));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/resume/me:v1", reg.addr)));
    let proxy = cutting_proxy(reg.addr.clone(), 4 << 20);
    let berth = Berth::new(&tmp.path().join("client"));
    let (_, err) = berth.ok(&["pull", &format!("{proxy}/resume/me:v1")]);
    assert!(err.contains(&format!("Digest: {}", m.digest)), "{err}");
    let log = reg.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("GET /v2/resume/me/blobs/") && l.contains(" 206 ")),
        "the retry asked for the rest with a Range request:\n{log}"
    );
    let (out, _) = berth.ok(&[
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &format!("{proxy}/resume/me:v1"),
    ]);
    let layers: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    let file = berth
        .root
        .join("layers/sha256")
        .join(&layers[0][7..])
        .join("fs/data.bin");
    assert_eq!(
        std::fs::read(file).unwrap(),
        big,
        "resumed layer content is intact"
    );
}

/// A tar with one regular file whose name is written raw (so `..` survives).
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn a_hostile_layer_from_a_registry_is_refused_while_streaming() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let raw = raw_tar("../../../../escaped-by-berth-test", b"pwned");
    let diff = sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_image(&[gz.finish().unwrap()], &[diff], "amd64", Some("v1"));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/evil/layer:v1", reg.addr)));
    let berth = Berth::new(&tmp.path().join("client"));
    let err = berth.fails(&["pull", &format!("{}/evil/layer:v1", reg.addr)]);
    assert!(
        err.contains("refusing layer entry") && err.contains("path traversal"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(berth.root.join("layers/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert!(
        std::fs::read_dir(berth.root.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "scratch removed"
    );
    let (out, _) = berth.ok(&["images", "-a", "-q"]);
    assert!(out.trim().is_empty());
    for dir in [
        berth.root.clone(),
        tmp.path().to_owned(),
        PathBuf::from("/"),
    ] {
        assert!(
            !dir.join("escaped-by-berth-test").exists(),
            "nothing written outside the layer"
        );
    }
}
