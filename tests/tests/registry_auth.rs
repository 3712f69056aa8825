//! The `berth-registry` binary with auth and TLS on: `user add`/`user rm`, HTTPS with HTTP/1.1
//! and HTTP/2, Basic challenges, the start-up warnings, and reloads (file watch and `SIGHUP`)
//! that keep open connections. Docker, skopeo, podman, oras and the CNCF registry against it:
//! `registry_tls_interop.rs` and `registry_token_interop.rs`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_tests::*;

fn registry() -> Command {
    let mut c = Command::new(bin("berth-registry"));
    c.env_remove("BERTH_REGISTRY_CONFIG");
    c
}

fn add_user(htpasswd: &Path, name: &str, password: &str) {
    let mut child = registry()
        .args(["user", "add", name, "--password-stdin", "--htpasswd"])
        .arg(htpasswd)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// A self-signed certificate for 127.0.0.1 (the test's own CA, as openssl makes one).
fn self_signed(dir: &Path) {
    run(Command::new("openssl")
        .args([
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
            "/CN=berth-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
}

/// `curl` over HTTPS with the test CA: (status, HTTP version).
fn curl(dir: &Path, url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--cacert",
        ])
        .arg(dir.join("cert.pem"))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, version) = text.split_once(' ').unwrap_or(("0", ""));
    (code.parse().unwrap_or(0), version.to_owned())
}

#[test]
fn tls_and_basic_auth_end_to_end() {
    require("curl", "apt-get install curl");
    require("openssl", "apt-get install openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    self_signed(dir);
    let htpasswd = dir.join("htpasswd");
    add_user(&htpasswd, "alice", "alice-pw");
    add_user(&htpasswd, "bob", "bob-pw");
    let text = std::fs::read_to_string(&htpasswd).unwrap();
    assert!(text.starts_with("alice:$2b$10$"), "{text}");
    let status = registry()
        .args(["user", "rm", "bob", "--htpasswd"])
        .arg(&htpasswd)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!std::fs::read_to_string(&htpasswd).unwrap().contains("bob:"));

    // `Registry::start` waits for plain HTTP; this one speaks TLS only.
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.join("registry.log");
    let child = registry()
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .arg("--htpasswd")
        .arg(&htpasswd)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _kill = KillOnDrop(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    for _ in 0..100 {
        if curl(dir, &format!("https://{addr}/v2/"), &[]).0 != 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let base = format!("https://{addr}/v2/");
    assert_eq!(curl(dir, &base, &[]), (401, "2".into()));
    assert_eq!(
        curl(dir, &base, &["-u", "alice:alice-pw"]),
        (200, "2".into())
    );
    assert_eq!(
        curl(dir, &base, &["--http1.1", "-u", "alice:alice-pw"]),
        (200, "1.1".into())
    );
    assert_eq!(curl(dir, &base, &["-u", "alice:Zq9-not-it"]).0, 401);
    assert_eq!(curl(dir, &base, &["-u", "bob:bob-pw"]).0, 401);
    // TLS 1.1 is refused.
    assert_eq!(
        curl(dir, &base, &["--tls-max", "1.1", "-u", "alice:alice-pw"]).0,
        0
    );
    // A user added while serving can sign in after the reload (file watch).
    add_user(&htpasswd, "carol", "carol-pw");
    let mut ok = false;
    for _ in 0..40 {
        if curl(dir, &base, &["-u", "carol:carol-pw"]).0 == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(ok, "new user not picked up: {}", log_text());
    let log = log_text();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(
        !log.contains("Zq9-not-it"),
        "the password must not be logged: {log}"
    );
}

#[test]
fn open_registry_warns_and_refuses_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    push_small_image(&reg.url(), "open/app", "v1", 1);
    let r = http(
        "DELETE",
        &format!("{}/v2/open/app/manifests/v1", reg.url()),
        &[],
        None,
    );
    assert_eq!(
        r.status,
        405,
        "deletes are off without [auth]: {}",
        r.text()
    );
    let log = reg.log_text();
    assert!(log.contains("no [auth] configured"), "{log}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Holds one HTTPS connection open across a reload: a request, then (after a line on stdin)
/// another on the same socket. Prints `status sha256-of-the-peer-certificate socket-id` each time.
const KEEP_ALIVE_CLIENT: &str = r#"
import base64, hashlib, http.client, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection(host, port, context=ctx)
auth = {"Authorization": "Basic " + base64.b64encode(b"alice:alice-pw").decode()}
def once():
    conn.request("GET", "/v2/", headers=auth)
    r = conn.getresponse(); r.read()
    cert = conn.sock.getpeercert(binary_form=True)
    print(r.status, hashlib.sha256(cert).hexdigest(), id(conn.sock), flush=True)
once()
sys.stdin.readline()
once()
"#;

#[test]
fn sighup_reloads_certificate_and_rules_without_dropping_connections() {
    require("curl", "apt-get install curl");
    require("openssl", "apt-get install openssl");
    require("python3", "apt-get install python3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    self_signed(dir);
    std::fs::copy(dir.join("cert.pem"), dir.join("old-ca.pem")).unwrap();
    let htpasswd = dir.join("htpasswd");
    add_user(&htpasswd, "alice", "alice-pw");
    let config = dir.join("registry.toml");
    let write_config = |actions: &str| {
        std::fs::write(
            &config,
            format!(
                "version = 1\n[tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n[auth]\nhtpasswd = \"{0}/htpasswd\"\n[[auth.access]]\nrepositories = [\"team/*\"]\nusers = [\"alice\"]\nactions = [{actions}]\n",
                dir.display()
            ),
        )
        .unwrap();
    };
    write_config("\"pull\"");
    let addr = format!("127.0.0.1:{}", free_port());
    let (host, port) = addr.split_once(':').unwrap();
    let log = dir.join("registry.log");
    let child = registry()
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _kill = KillOnDrop(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = format!("https://{addr}/v2/");
    for _ in 0..100 {
        if curl(dir, &base, &[]).0 != 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let upload = format!("https://{addr}/v2/team/app/blobs/uploads/");
    let alice = ["-u", "alice:alice-pw", "-X", "POST"];
    assert_eq!(curl(dir, &upload, &alice).0, 403, "pull only at first");

    let mut client = Command::new("python3")
        .args(["-c", KEEP_ALIVE_CLIENT, host, port])
        .arg(dir.join("old-ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(client.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("200 "), "{first}");

    // A new certificate and a new rule, then SIGHUP.
    // One SIGHUP logs two lines: users/rules, and the certificate.
    let hups = |text: &str| text.matches("why=\"SIGHUP\"").count();
    std::fs::remove_file(dir.join("cert.pem")).unwrap();
    self_signed(dir);
    write_config("\"pull\", \"push\"");
    run(Command::new("kill").args(["-HUP", &pid.to_string()]));
    let mut reloaded = false;
    for _ in 0..100 {
        if hups(&log_text()) >= 2 {
            reloaded = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(reloaded, "no SIGHUP reload logged: {}", log_text());
    assert!(
        log_text().contains("reloaded the TLS certificate"),
        "{}",
        log_text()
    );

    // The open connection goes on with the certificate it started with...
    writeln!(client.stdin.take().unwrap(), "go").unwrap();
    let second = lines.next().unwrap().unwrap();
    let (f1, f2): (Vec<_>, Vec<_>) = (first.split(' ').collect(), second.split(' ').collect());
    assert_eq!(f2[0], "200", "{second}");
    assert_eq!(
        (f1[1], f1[2]),
        (f2[1], f2[2]),
        "same connection, same certificate"
    );
    assert!(client.wait().unwrap().success());
    // ...new connections get the new one, and the new rule holds.
    assert_eq!(curl(dir, &base, &["-u", "alice:alice-pw"]).0, 200);
    let old_ca = dir.join("old-ca.pem");
    let with_old_ca = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&old_ca)
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&with_old_ca.stdout),
        "000",
        "old certificate still served"
    );
    assert_eq!(
        curl(dir, &upload, &alice).0,
        202,
        "push granted after the reload"
    );

    // A configuration that does not load is logged and the previous one stays.
    std::fs::write(&config, "version = 1\n[auth\n").unwrap();
    run(Command::new("kill").args(["-HUP", &pid.to_string()]));
    let mut refused = false;
    for _ in 0..100 {
        if log_text().contains("reload failed: keeping the previous configuration") {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(refused, "{}", log_text());
    assert_eq!(curl(dir, &upload, &alice).0, 202, "previous rules kept");
}
