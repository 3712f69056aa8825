//! berth-registry with htpasswd auth and TLS against the real clients (issue 9): the Docker
//! Engine (`docker login`, push, pull — and certificate verification, from an address of a
//! network namespace the test makes, since Docker skips verification on loopback), skopeo and
//! podman with `--creds`/`--cert-dir`, and `berth login`/push/pull with a private CA from
//! `certs.d`. Wrong passwords fail with each client's usual message.
//!
//! Traffic goes only to loopback and to the test's own namespace address.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_tests::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

/// A network namespace with a veth pair: the host side `10.251.N.1/24`, the namespace side
/// `10.251.N.2/24`. Removed on drop.
struct Netns {
    name: String,
    host_if: String,
    ns_addr: String,
}

impl Netns {
    fn new() -> Self {
        // Unique per test in this process (tests run in parallel threads) and per process.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let n = (std::process::id() % 100) * 2 + k % 2 + 20;
        let name = format!("bt-tls-{n}");
        let host_if = format!("bth{n}");
        let peer = format!("btn{n}");
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let _ = Command::new("ip").args(["link", "del", &host_if]).status();
        let ns = Self {
            ns_addr: format!("10.251.{n}.2"),
            name,
            host_if,
        };
        let ip = |args: &[&str]| run(Command::new("ip").args(args));
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("10.251.{n}.1/24"),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        let inside = |args: &[&str]| {
            run(Command::new("ip")
                .args(["netns", "exec", &ns.name, "ip"])
                .args(args));
        };
        inside(&["addr", "add", &format!("{}/24", ns.ns_addr), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A test CA and a server certificate it signed for `ip` and 127.0.0.1: `ca.crt`, `server.crt`,
/// `server.key` in `dir`.
fn certificates(dir: &Path, ip: &str) {
    require("openssl", "apt-get install openssl");
    let ossl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=berth-registry",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=IP:{ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
}

fn htpasswd(dir: &Path) -> PathBuf {
    let path = dir.join("htpasswd");
    let mut child = Command::new(bin("berth-registry"))
        .args(["user", "add", USER, "--password-stdin", "--htpasswd"])
        .arg(&path)
        .env_remove("BERTH_REGISTRY_CONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success());
    path
}

/// berth-registry with TLS and htpasswd in `ns` (or on loopback), listening on `addr`.
struct Server {
    child: Child,
}

impl Server {
    fn start(dir: &Path, ns: Option<&str>, addr: &str) -> Self {
        let log = std::fs::File::create(
            dir.join(format!("registry-{}.log", addr.replace([':', '.'], "-"))),
        )
        .unwrap();
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin("berth-registry"));
                c
            }
            None => Command::new(bin("berth-registry")),
        };
        cmd.arg("serve")
            .args(["--addr", addr])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--tls-cert")
            .arg(dir.join("server.crt"))
            .arg("--tls-key")
            .arg(dir.join("server.key"))
            .arg("--htpasswd")
            .arg(dir.join("htpasswd"))
            .env_remove("BERTH_REGISTRY_CONFIG")
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        let server = Self { child };
        // Ready when the TLS port answers (401 without credentials).
        let url = format!("https://{addr}/v2/");
        for _ in 0..100 {
            let mut c = match ns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "curl"]);
                    c
                }
                None => Command::new("curl"),
            };
            let out = c
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(dir.join("ca.crt"))
                .arg(&url)
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout) == "401" {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("berth-registry did not come up on {addr}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker` with a private client config (credentials stay in the test's directory).
fn docker(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn docker_login(config: &Path, host: &str, password: &str) -> std::process::Output {
    let mut child = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(["login", host, "-u", USER, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Removes `/etc/docker/certs.d/HOST` on drop.
struct DockerCa(PathBuf);

impl Drop for DockerCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_verifies_the_certificate_and_logs_in_pushes_and_pulls() {
    require_root();
    require(
        "docker",
        "the Docker Engine must be running (tests/run checks)",
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ns = Netns::new();
    certificates(dir, &ns.ns_addr);
    htpasswd(dir);
    let port = free_port();
    let host = format!("{}:{port}", ns.ns_addr);
    let _server = Server::start(dir, Some(&ns.name), &format!("{}:{port}", ns.ns_addr));
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // Not loopback: Docker verifies, and our CA is not trusted yet.
    let o = docker_login(&config, &host, PASSWORD);
    assert!(!o.status.success(), "login without the CA: {}", out(&o));
    assert!(
        out(&o).contains("x509") || out(&o).contains("certificate"),
        "{}",
        out(&o)
    );
    // Docker's certs.d layout makes it trusted.
    let ca_dir = PathBuf::from("/etc/docker/certs.d").join(&host);
    std::fs::create_dir_all(&ca_dir).unwrap();
    let _ca = DockerCa(ca_dir.clone());
    std::fs::copy(dir.join("ca.crt"), ca_dir.join("ca.crt")).unwrap();
    let o = docker_login(&config, &host, "wrong-password");
    assert!(!o.status.success());
    assert!(
        out(&o).contains("unauthorized") || out(&o).contains("401"),
        "{}",
        out(&o)
    );
    let o = docker_login(&config, &host, PASSWORD);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Login Succeeded"), "{}", out(&o));
    // An image of our own, pushed and pulled back through TLS with the stored credentials.
    let tar = busybox_rootfs_tar(dir, &[]);
    let image = format!("{host}/team/bb:tls-{}", std::process::id());
    let mut tags = DockerTags::default();
    tags.add(&image);
    let o = docker(&config, &["import", tar.to_str().unwrap(), &image]);
    assert!(o.status.success(), "{}", out(&o));
    let o = docker(&config, &["push", &image]);
    assert!(o.status.success(), "{}", out(&o));
    let o = docker(&config, &["rmi", &image]);
    assert!(o.status.success(), "{}", out(&o));
    let o = docker(&config, &["pull", &image]);
    assert!(o.status.success(), "{}", out(&o));
    let o = docker(&config, &["logout", &host]);
    assert!(o.status.success(), "{}", out(&o));
    // Logged out: pulls are refused with Docker's usual words.
    let o = docker(&config, &["rmi", &image]);
    assert!(o.status.success(), "{}", out(&o));
    let o = docker(&config, &["pull", &image]);
    assert!(!o.status.success());
    assert!(
        out(&o).contains("no basic auth credentials") || out(&o).contains("unauthorized"),
        "{}",
        out(&o)
    );
}

#[test]
fn skopeo_podman_and_berth_use_creds_and_a_cert_dir() {
    require_root();
    require("skopeo", "apt-get install skopeo");
    require("podman", "apt-get install podman");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ns = Netns::new();
    certificates(dir, &ns.ns_addr);
    htpasswd(dir);
    let port = free_port();
    let host = format!("{}:{port}", ns.ns_addr);
    let _server = Server::start(dir, Some(&ns.name), &host);
    // skopeo/podman read `--cert-dir DIR/ca.crt`; berth reads `certs.d/HOST/ca.crt`.
    let cert_dir = dir.join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(dir.join("ca.crt"), cert_dir.join("ca.crt")).unwrap();
    let certs_d = dir.join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).unwrap();
    std::fs::copy(dir.join("ca.crt"), certs_d.join(&host).join("ca.crt")).unwrap();
    let creds = format!("{USER}:{PASSWORD}");
    let (layout, _) = unique_busybox_image(&dir.join("layout"), 1, "v1");
    let _ = layout;
    let src = format!("oci:{}:v1", dir.join("layout").display());
    let dest = format!("docker://{host}/team/app:v1");
    // skopeo: wrong password refused, then the push with the right one verifies the CA.
    let o = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-creds",
            &format!("{USER}:wrong"),
            "--dest-cert-dir",
        ])
        .arg(&cert_dir)
        .args([&src, &dest])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        out(&o).contains("unauthorized") || out(&o).contains("authentication required"),
        "{}",
        out(&o)
    );
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--dest-creds", &creds, "--dest-cert-dir"])
        .arg(&cert_dir)
        .args([&src, &dest])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    // Without the CA skopeo refuses the certificate.
    let o = Command::new("skopeo")
        .args(["inspect", "--creds", &creds, &dest])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        out(&o).contains("x509") || out(&o).contains("certificate"),
        "{}",
        out(&o)
    );
    // podman pulls it with --creds and --cert-dir.
    let podman = PodmanEnv::new(&dir.join("podman"));
    let o = podman
        .podman()
        .args(["pull", "-q", "--creds", &creds, "--cert-dir"])
        .arg(&cert_dir)
        .arg(format!("{host}/team/app:v1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    // berth: login with the CA from certs.d, pull, push under another name.
    let berth = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(bin("berth"));
        c.arg("--data-root")
            .arg(dir.join("berth"))
            .args(args)
            .env("BERTH_CERTS_DIR", &certs_d)
            .env("HOME", dir)
            .env("BERTH_CONFIG_DIR", dir.join(".berth"))
            .env("DOCKER_CONFIG", dir.join(".docker"))
            .env("BERTH_NO_PROGRESS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            writeln!(child.stdin.take().unwrap(), "{s}").unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let o = berth(
        &["login", &host, "-u", USER, "--password-stdin"],
        Some("wrong"),
    );
    assert!(!o.status.success(), "{}", out(&o));
    let o = berth(
        &["login", &host, "-u", USER, "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Login Succeeded"), "{}", out(&o));
    let image = format!("{host}/team/app:v1");
    let o = berth(&["pull", &image], None);
    assert!(o.status.success(), "{}", out(&o));
    let copy = format!("{host}/team/copy:v1");
    assert!(berth(&["tag", &image, &copy], None).status.success());
    let o = berth(&["push", &copy], None);
    assert!(o.status.success(), "{}", out(&o));
    // Without the CA, berth refuses the certificate like the others.
    let o = Command::new(bin("berth"))
        .arg("--data-root")
        .arg(dir.join("berth2"))
        .args(["pull", &image])
        .env("BERTH_CERTS_DIR", dir.join("none"))
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        out(&o).to_lowercase().contains("certificate"),
        "{}",
        out(&o)
    );
}

/// A client certificate signed by the test CA: `client.crt`/`client.key` in `dir`.
fn client_certificate(dir: &Path) {
    let ossl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    ossl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=ci-bot",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    std::fs::write(dir.join("client-ext.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client-ext.cnf",
        "-out",
        "client.crt",
    ]);
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate() {
    require("curl", "apt-get install curl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, "127.0.0.1");
    client_certificate(dir);
    htpasswd(dir);
    let config = dir.join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[tls]\ncert = \"{0}/server.crt\"\nkey = \"{0}/server.key\"\nclient_ca = \"{0}/ca.crt\"\n[auth]\nhtpasswd = \"{0}/htpasswd\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin("berth-registry"))
        .args(["serve", "--addr", &addr, "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("BERTH_REGISTRY_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Server { child };
    let curl = |extra: &[&str]| {
        let o = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.crt"))
            .args(extra)
            .arg(format!("https://{addr}/v2/"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let cert = dir.join("client.crt");
    let key = dir.join("client.key");
    let with_cert = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let mut up = false;
    for _ in 0..100 {
        if curl(&with_cert) == "401" {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    assert!(
        up,
        "the registry did not answer a client with a certificate"
    );
    // Without a client certificate the handshake fails: no HTTP status at all.
    assert_eq!(curl(&[]), "000");
    let user = format!("{USER}:{PASSWORD}");
    assert_eq!(curl(&[&with_cert[..], &["-u", &user]].concat()), "200");
    // berth presents the client certificate from certs.d (`NAME.cert` + `NAME.key`, Docker's
    // layout); with only the CA there, the server ends the handshake.
    let with_client = dir.join("certs.d-client");
    let ca_only = dir.join("certs.d-ca");
    for (base, client) in [(&with_client, true), (&ca_only, false)] {
        let d = base.join(&addr);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(dir.join("ca.crt"), d.join("ca.crt")).unwrap();
        if client {
            std::fs::copy(&cert, d.join("client.cert")).unwrap();
            std::fs::copy(&key, d.join("client.key")).unwrap();
        }
    }
    let berth_login = |certs_d: &Path| {
        let mut c = Command::new(bin("berth"))
            .args(["login", &addr, "-u", USER, "--password-stdin"])
            .env("BERTH_CERTS_DIR", certs_d)
            .env("HOME", dir)
            .env("BERTH_CONFIG_DIR", dir.join(".berth"))
            .env("DOCKER_CONFIG", dir.join(".docker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(c.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        c.wait_with_output().unwrap()
    };
    let o = berth_login(&with_client);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Login Succeeded"), "{}", out(&o));
    let o = berth_login(&ca_only);
    assert!(!o.status.success(), "without its certificate: {}", out(&o));
    drop(child);
}

const ORAS_SCRIPT: &str = r#"
import sys
import oras.client

host, ca, user, password, workdir = sys.argv[1:6]
client = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend="basic")
client.login(username=user, password=password, hostname=host, config_path=workdir + "/config.json")
client.push(target=f"{host}/team/notes:v1", files=["notes.txt"], quiet=True)
print(sorted(client.pull(target=f"{host}/team/notes:v1", outdir=workdir + "/out")))
"#;

#[test]
fn oras_logs_in_over_tls_and_pushes_and_pulls() {
    let python = std::env::var_os("BERTH_ORAS_PYTHON").map_or_else(
        || workspace_root().join("target/oras-venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        python.exists(),
        "oras-py is missing: `python3 -m venv target/oras-venv && target/oras-venv/bin/pip install oras` (tests/run does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, "127.0.0.1");
    htpasswd(dir);
    let host = format!("127.0.0.1:{}", free_port());
    let _server = Server::start(dir, None, &host);
    std::fs::write(dir.join("notes.txt"), "pushed by oras over TLS\n").unwrap();
    let oras = |password: &str| {
        Command::new(&python)
            .args(["-c", ORAS_SCRIPT, &host])
            .arg(dir.join("ca.crt"))
            .args([USER, password])
            .arg(dir)
            .current_dir(dir)
            .env("HOME", dir)
            .output()
            .unwrap()
    };
    let o = oras("wrong");
    assert!(!o.status.success(), "{}", out(&o));
    let o = oras(PASSWORD);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("notes.txt"), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/notes.txt")).unwrap(),
        "pushed by oras over TLS\n"
    );
}
