//! Helpers shared by the end-to-end tests: build OCI images locally (no network), spawn
//! `berth-registry` and peer registries on free loopback ports, and check that peer tools exist.
//!
//! A missing prerequisite is a test failure with a message saying how to install it, never a
//! silent skip.

#![allow(clippy::missing_panics_doc)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Workspace root (parent of this crate).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Path of a workspace binary built by `cargo build` (debug unless `BERTH_PROFILE=release`).
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let profile = std::env::var("BERTH_PROFILE").unwrap_or_else(|_| "debug".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (tests/run does)",
        p.display()
    );
    p
}

/// Fails the test with an install hint when `tool` is not on PATH.
pub fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "required tool `{tool}` is missing; {hint} (tests/run installs it)"
    );
}

/// A free TCP port on 127.0.0.1.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sha256:<hex>` of bytes.
#[must_use]
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

/// Blob written into an OCI layout.
#[derive(Debug, Clone)]
pub struct Blob {
    /// `sha256:…`
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) built locally.
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
    manifests: Vec<Value>,
}

impl Layout {
    /// Creates an empty layout in `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir: dir.to_owned(),
            manifests: Vec::new(),
        }
    }

    /// Stores a blob; returns its descriptor fields.
    pub fn add_blob(&self, data: &[u8]) -> Blob {
        let digest = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&digest[7..]), data).unwrap();
        Blob {
            digest,
            size: data.len() as u64,
        }
    }

    /// Adds a single-platform image from layer tarballs (already gzipped) and records it in
    /// `index.json` under `tag` (if any). Returns the manifest's blob.
    pub fn add_image(
        &mut self,
        layers: &[Vec<u8>],
        diff_ids: &[String],
        arch: &str,
        tag: Option<&str>,
    ) -> Blob {
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": diff_ids.iter().map(|_| json!({"created_by": "berth test"})).collect::<Vec<_>>(),
        });
        let config = self.add_blob(serde_json::to_vec(&config).unwrap().as_slice());
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|l| {
                let b = self.add_blob(l);
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b.digest, "size": b.size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
            "layers": layer_descs,
        });
        let m = self.add_blob(serde_json::to_vec(&manifest).unwrap().as_slice());
        let mut desc = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.digest, "size": m.size,
            "platform": {"architecture": arch, "os": "linux"},
        });
        if let Some(t) = tag {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": t});
        }
        self.manifests.push(desc);
        self.write_index();
        m
    }

    /// Replaces the entries added so far by one image index under `tag`; returns its blob.
    pub fn wrap_in_index(&mut self, tag: &str) -> Blob {
        let children: Vec<Value> = self
            .manifests
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("annotations");
                d
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        });
        let b = self.add_blob(serde_json::to_vec(&index).unwrap().as_slice());
        self.manifests = vec![json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": b.digest, "size": b.size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })];
        self.write_index();
        b
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "manifests": self.manifests});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A tar layer holding `files` (path, content, mode); returns (gzipped bytes, diff id).
#[must_use]
pub fn layer(files: &[(&str, &[u8], u32)]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// A layer with `/bin/busybox` (Debian's busybox-static) and `/bin/sh` as a copy of it.
#[must_use]
pub fn busybox_layer() -> (Vec<u8>, String) {
    let path = Path::new("/bin/busybox");
    assert!(
        path.exists(),
        "/bin/busybox is missing; install it with `apt-get install busybox-static`"
    );
    let data = std::fs::read(path).unwrap();
    layer(&[("bin/busybox", &data, 0o755), ("bin/sh", &data, 0o755)])
}

/// Pseudo-random, incompressible bytes (xorshift), so layer sizes stay what is asked for.
#[must_use]
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Builds the standard test image in `dir`: busybox plus `extra_layers` small layers, tagged.
#[must_use]
pub fn busybox_image(dir: &Path, extra_layers: usize, tag: &str) -> (Layout, Blob) {
    busybox_image_with(dir, extra_layers, tag, None)
}

/// Busybox plus `extra_layers` small layers, plus a layer holding `marker` when given.
fn busybox_image_with(
    dir: &Path,
    extra_layers: usize,
    tag: &str,
    marker: Option<&str>,
) -> (Layout, Blob) {
    let mut layout = Layout::new(dir);
    let (mut layers, mut diffs) = (Vec::new(), Vec::new());
    let (l, d) = busybox_layer();
    layers.push(l);
    diffs.push(d);
    for i in 0..extra_layers {
        let content = format!("layer {i}\n");
        let (l, d) = layer(&[(&format!("etc/layer-{i}"), content.as_bytes(), 0o644)]);
        layers.push(l);
        diffs.push(d);
    }
    if let Some(id) = marker {
        let (l, d) = layer(&[("etc/berth-test-id", id.as_bytes(), 0o644)]);
        layers.push(l);
        diffs.push(d);
    }
    let m = layout.add_image(&layers, &diffs, "amd64", Some(tag));
    (layout, m)
}

/// GETs JSON from a URL.
#[must_use]
pub fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap()
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

/// Every manifest media type a registry client accepts (as Docker and containers/image send).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A complete HTTP response, whatever its status.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Body parsed as JSON.
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn into_response(r: ureq::Response) -> HttpResponse {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            r.all(&n)
                .into_iter()
                .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).expect("read response body");
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Sends one request and returns the response whatever its status; panics only on transport
/// errors. No redirects are followed.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(60))
        .build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => into_response(r),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// `GET /v2/<repo>/manifests/<reference>` accepting every manifest type.
#[must_use]
pub fn get_manifest(base_url: &str, repo: &str, reference: &str) -> HttpResponse {
    http(
        "GET",
        &format!("{base_url}/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    )
}

/// Uploads a blob in one `POST ?digest=` request; asserts 201 and returns its digest.
pub fn push_blob(base_url: &str, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let r = http(
        "POST",
        &format!("{base_url}/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        Some(data),
    );
    assert_eq!(
        r.status,
        201,
        "monolithic upload of {digest} to {repo}: {}",
        r.text()
    );
    digest
}

/// Pushes a manifest under `reference`; asserts 201 and returns the digest the registry reports.
pub fn push_manifest(
    base_url: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let r = http(
        "PUT",
        &format!("{base_url}/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        Some(bytes),
    );
    assert_eq!(
        r.status,
        201,
        "PUT manifest {repo}:{reference}: {}",
        r.text()
    );
    let digest = r
        .header("docker-content-digest")
        .expect("Docker-Content-Digest on manifest PUT");
    assert_eq!(
        digest,
        sha256(bytes),
        "digest reported for manifest {repo}:{reference}"
    );
    digest.to_owned()
}

/// Pushes a tiny OCI image (config + one layer) through the HTTP API; returns the manifest
/// bytes and digest.
pub fn push_small_image(base_url: &str, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
    let content = noise(4096, seed);
    let (layer_bytes, diff_id) = layer(&[("data/noise", &content, 0o644)]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = push_blob(base_url, repo, &config);
    let layer_digest = push_blob(base_url, repo, &layer_bytes);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_bytes.len()}],
    }))
    .unwrap();
    let digest = push_manifest(
        base_url,
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    (manifest, digest)
}

/// A value unique to this process and call, to make images and tags that no other test or run
/// shares (the Docker Engine and the containers blob-info cache are machine-wide).
#[must_use]
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{t}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builds a busybox image with `extra_layers` small layers plus one layer holding a nonce, so
/// its image ID is unique on this machine; tagged `tag` in a new layout at `dir`.
#[must_use]
pub fn unique_busybox_image(dir: &Path, extra_layers: usize, tag: &str) -> (Layout, Blob) {
    busybox_image_with(dir, extra_layers, tag, Some(&nonce()))
}

/// Reads a blob of an OCI layout.
#[must_use]
pub fn layout_blob(layout_dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(layout_dir.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", layout_dir.display()))
}

/// The digests of every blob in an OCI layout, each checked against its content.
#[must_use]
pub fn layout_blobs(layout_dir: &Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(layout_dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let digest = format!("sha256:{}", e.file_name().into_string().unwrap());
        assert_eq!(
            sha256(&std::fs::read(e.path()).unwrap()),
            digest,
            "corrupt blob in {}",
            layout_dir.display()
        );
        out.insert(digest);
    }
    out
}

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
        let ids: Vec<String> = std::fs::read_dir(&root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
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
