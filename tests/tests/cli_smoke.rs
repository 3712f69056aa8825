//! The `berth-registry` binary as an operator runs it: flags, environment, config file errors,
//! read-only and no-delete modes, the access log, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::*;

fn registry_cmd() -> Command {
    let mut c = Command::new(bin("berth-registry"));
    for var in [
        "BERTH_REGISTRY_ADDR",
        "BERTH_REGISTRY_DATA_DIR",
        "BERTH_REGISTRY_CONFIG",
        "BERTH_REGISTRY_READ_ONLY",
        "BERTH_REGISTRY_DELETE_ENABLED",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs the binary to completion with a time limit (a registry that starts serving by mistake
/// is killed and reported).
fn run_to_exit(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth-registry");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} kept running (expected it to exit); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    cmd.stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn berth-registry")
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn help_lists_the_flags_and_exits_zero() {
    let out = run_to_exit(registry_cmd().arg("--help"));
    assert!(out.status.success(), "--help exited with {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--addr",
        "--data-dir",
        "--config",
        "--read-only",
        "--no-delete",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
    let out = run_to_exit(registry_cmd().args(["serve", "--help"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--read-only"));
}

#[test]
fn unknown_flag_is_an_error() {
    let out = run_to_exit(registry_cmd().arg("--no-such-flag"));
    assert!(!out.status.success(), "an unknown flag must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--no-such-flag"),
        "the error should name the flag: {err}"
    );
}

#[test]
fn bad_config_values_exit_1_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("addr = \"nope\"\n", "addr"),
        ("adr = \"127.0.0.1:5000\"\n", "adr"),
        ("max_manifest_bytes = 10\n", "max_manifest_bytes"),
        ("[uploads]\nmax_age_secs = 0\n", "uploads.max_age_secs"),
        ("version = 2\n", "version"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let cfg = tmp.path().join(format!("bad-{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = run_to_exit(
            registry_cmd()
                .arg("--config")
                .arg(&cfg)
                .arg("--data-dir")
                .arg(tmp.path().join("data")),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "config {text:?}: exit status {}; stderr: {err}",
            out.status
        );
        assert!(
            err.contains(&format!("`{key}`")),
            "config {text:?}: the error should name `{key}`: {err}"
        );
        // The same file through the environment variable.
        let out = run_to_exit(
            registry_cmd()
                .env("BERTH_REGISTRY_CONFIG", &cfg)
                .arg("--data-dir")
                .arg(tmp.path().join("data")),
        );
        assert_eq!(out.status.code(), Some(1), "BERTH_REGISTRY_CONFIG={text:?}");
    }
    // A missing config file is an error too, not a silent default.
    let out = run_to_exit(
        registry_cmd()
            .arg("--config")
            .arg(tmp.path().join("missing.toml")),
    );
    assert_eq!(out.status.code(), Some(1));
}

/// A value of the wrong TOML type must name its key too, as `RegistryConfigError::Parse`
/// promises ("What the parser reported, naming the key"); a byte offset alone is not enough.
#[test]
fn wrongly_typed_config_values_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("read_only = \"maybe\"\n", "read_only"),
        ("delete_enabled = 1\n", "delete_enabled"),
        ("[uploads]\nmax_age_secs = \"x\"\n", "max_age_secs"),
    ];
    let mut failures = Vec::new();
    for (i, (text, key)) in cases.iter().enumerate() {
        let cfg = tmp.path().join(format!("typed-{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = run_to_exit(
            registry_cmd()
                .arg("--config")
                .arg(&cfg)
                .arg("--data-dir")
                .arg(tmp.path().join("data")),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "config {text:?}: exit status {}; stderr: {err}",
            out.status
        );
        if !err.contains(key) {
            failures.push(format!(
                "config {text:?}: the error does not name `{key}`: {}",
                err.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn env_and_config_file_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    // Environment only, no flags.
    let addr = format!("127.0.0.1:{}", free_port());
    let data = tmp.path().join("env-data");
    let mut child = KillOnDrop(Some(spawn_logged(
        registry_cmd()
            .env("BERTH_REGISTRY_ADDR", &addr)
            .env("BERTH_REGISTRY_DATA_DIR", &data),
        &tmp.path().join("env.log"),
    )));
    wait_ready(&addr, child.0.as_mut().unwrap());
    let digest = push_blob(
        &format!("http://{addr}"),
        "env/repo",
        b"hello from the environment",
    );
    assert!(
        data.join("blobs/sha256")
            .join(&digest[7..9])
            .join(&digest[7..])
            .join("data")
            .exists(),
        "blob not stored under BERTH_REGISTRY_DATA_DIR"
    );
    drop(child);

    // A config file with addr, data_dir and read_only.
    let addr = format!("127.0.0.1:{}", free_port());
    let data = tmp.path().join("file-data");
    let cfg = tmp.path().join("registry.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\naddr = \"{addr}\"\ndata_dir = \"{}\"\nread_only = true\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(Some(spawn_logged(
        registry_cmd().arg("serve").arg("--config").arg(&cfg),
        &tmp.path().join("file.log"),
    )));
    wait_ready(&addr, child.0.as_mut().unwrap());
    assert!(
        data.is_dir(),
        "data_dir from the config file was not created"
    );
    let r = http(
        "POST",
        &format!("http://{addr}/v2/file/repo/blobs/uploads/"),
        &[],
        None,
    );
    assert_eq!(
        r.status, 405,
        "read_only = true in the file must refuse pushes"
    );
    drop(child);

    // Flags beat the environment.
    let env_addr = format!("127.0.0.1:{}", free_port());
    let flag_addr = format!("127.0.0.1:{}", free_port());
    let mut child = KillOnDrop(Some(spawn_logged(
        registry_cmd()
            .env("BERTH_REGISTRY_ADDR", &env_addr)
            .args(["--addr", &flag_addr])
            .arg("--data-dir")
            .arg(tmp.path().join("flag-data")),
        &tmp.path().join("flag.log"),
    )));
    wait_ready(&flag_addr, child.0.as_mut().unwrap());
    assert!(
        TcpStream::connect(&env_addr).is_err(),
        "--addr must override BERTH_REGISTRY_ADDR"
    );
}

#[test]
fn read_only_refuses_writes_but_serves_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(tmp.path(), &[]);
    let (manifest, digest) = push_small_image(&reg.url(), "ro/image", "v1", 1);
    reg.kill9();
    drop(reg);

    let reg = Registry::start(tmp.path(), &["--read-only"]);
    let base = reg.url();
    let r = get_manifest(&base, "ro/image", "v1");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, manifest);
    let refused: [(&str, String, Option<&[u8]>); 5] = [
        ("POST", format!("{base}/v2/ro/image/blobs/uploads/"), None),
        (
            "POST",
            format!("{base}/v2/ro/image/blobs/uploads/?digest={}", sha256(b"x")),
            Some(b"x"),
        ),
        (
            "PUT",
            format!("{base}/v2/ro/image/manifests/v2"),
            Some(&manifest),
        ),
        (
            "DELETE",
            format!("{base}/v2/ro/image/manifests/{digest}"),
            None,
        ),
        ("DELETE", format!("{base}/v2/ro/image/manifests/v1"), None),
    ];
    for (method, url, body) in refused {
        let r = http(
            method,
            &url,
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            body,
        );
        assert_eq!(
            r.status,
            405,
            "{method} {url} in read-only mode: {}",
            r.text()
        );
        assert_eq!(
            r.json()["errors"][0]["code"],
            "UNSUPPORTED",
            "{method} {url}"
        );
    }
    assert_eq!(
        get_manifest(&base, "ro/image", "v1").status,
        200,
        "nothing was deleted"
    );
    assert_eq!(
        get_manifest(&base, "ro/image", "v2").status,
        404,
        "nothing was pushed"
    );
}

#[test]
fn no_delete_refuses_deletes_but_allows_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &["--no-delete"]);
    let base = reg.url();
    let (manifest, digest) = push_small_image(&base, "nd/image", "v1", 2);
    let doc: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = doc["layers"][0]["digest"].as_str().unwrap();
    for url in [
        format!("{base}/v2/nd/image/manifests/{digest}"),
        format!("{base}/v2/nd/image/manifests/v1"),
        format!("{base}/v2/nd/image/blobs/{layer}"),
    ] {
        let r = http("DELETE", &url, &[], None);
        assert_eq!(r.status, 405, "DELETE {url} with --no-delete: {}", r.text());
        assert_eq!(r.json()["errors"][0]["code"], "UNSUPPORTED");
    }
    assert_eq!(get_manifest(&base, "nd/image", "v1").status, 200);
    assert_eq!(
        http(
            "GET",
            &format!("{base}/v2/nd/image/blobs/{layer}"),
            &[],
            None
        )
        .status,
        200
    );
}

#[test]
fn every_request_is_access_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let base = reg.url();
    let id = nonce();
    for i in 0..5 {
        let r = http(
            "GET",
            &format!("{base}/v2/log/repo/manifests/missing-{i}-{id}"),
            &[],
            None,
        );
        assert_eq!(r.status, 404);
    }
    let digest = push_blob(&base, "log/repo", id.as_bytes());
    assert_eq!(
        http(
            "HEAD",
            &format!("{base}/v2/log/repo/blobs/{digest}"),
            &[],
            None
        )
        .status,
        200
    );
    // The log is written asynchronously; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = reg.log_text();
        if text.contains(&format!("HEAD /v2/log/repo/blobs/{digest}")) || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for i in 0..5 {
        let needle = format!("GET /v2/log/repo/manifests/missing-{i}-{id} 404");
        assert_eq!(
            text.matches(&needle).count(),
            1,
            "expected one access line {needle:?} in:\n{text}"
        );
    }
    let post = format!("POST /v2/log/repo/blobs/uploads/?digest={digest} 201");
    assert_eq!(
        text.matches(&post).count(),
        1,
        "expected one access line {post:?} in:\n{text}"
    );
    let head = format!("HEAD /v2/log/repo/blobs/{digest} 200");
    assert_eq!(
        text.matches(&head).count(),
        1,
        "expected one access line {head:?} in:\n{text}"
    );
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish_then_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(tmp.path(), &[]);
    let data = noise(3 * 1024 * 1024, 42);
    let digest = sha256(&data);

    // An idle keep-alive connection must not hold up the exit.
    let mut idle = TcpStream::connect(&reg.addr).unwrap();
    write!(idle, "GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", reg.addr).unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    // Send the headers and a third of the body, then SIGTERM, then the rest.
    let mut stream = TcpStream::connect(&reg.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /v2/term/repo/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        reg.addr,
        data.len()
    )
    .unwrap();
    let third = data.len() / 3;
    stream.write_all(&data[..third]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = reg.pid();
    let log = reg.log.clone();
    let terminated = std::thread::spawn(move || reg.terminate());
    std::thread::sleep(Duration::from_millis(500));
    for piece in data[third..].chunks(256 * 1024) {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    stream.flush().unwrap();

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        headers.push_str(&line.to_ascii_lowercase());
    }
    assert!(
        status_line.starts_with("HTTP/1.1 201"),
        "upload in flight at SIGTERM (pid {pid}) answered {status_line:?}; headers:\n{headers}"
    );
    assert!(
        headers.contains(&format!("docker-content-digest: {digest}")),
        "{headers}"
    );
    let answered = Instant::now();
    let status = terminated.join().unwrap();
    assert!(
        answered.elapsed() < Duration::from_secs(5),
        "the registry took {:?} to exit after the last request finished",
        answered.elapsed()
    );
    drop(idle);
    assert_eq!(
        status.code(),
        Some(0),
        "registry exit status after SIGTERM: {status}"
    );
    // The upload really was in flight when shutdown began.
    let text = std::fs::read_to_string(&log).unwrap();
    let shutdown = text
        .find("shutting down")
        .unwrap_or_else(|| panic!("no shutdown line in:\n{text}"));
    let access = text
        .find(&format!(
            "POST /v2/term/repo/blobs/uploads/?digest={digest} 201"
        ))
        .unwrap_or_else(|| panic!("no access line for the upload in:\n{text}"));
    assert!(
        shutdown < access,
        "the upload finished before SIGTERM was handled:\n{text}"
    );

    // The blob was stored durably: a fresh registry on the same data serves it.
    let reg = Registry::start(tmp.path(), &[]);
    let r = http(
        "GET",
        &format!("{}/v2/term/repo/blobs/{digest}", reg.url()),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), digest);
}

#[test]
fn sigterm_with_a_stalled_client_exits_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = KillOnDrop(Some(spawn_logged(
        registry_cmd()
            .args(["--addr", &addr, "--data-dir"])
            .arg(tmp.path().join("data"))
            .env("BERTH_REGISTRY_SHUTDOWN_GRACE_SECS", "1"),
        &tmp.path().join("log"),
    )));
    wait_ready(&addr, child.0.as_mut().unwrap());
    // A client that opens a session, announces a 1 MiB chunk, sends 10 bytes, then stalls.
    let resp = ureq::post(&format!("http://{addr}/v2/x/blobs/uploads/"))
        .call()
        .unwrap();
    let location = resp.header("location").unwrap().to_owned();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1048576\r\n\r\n0123456789"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let c = child.0.as_mut().unwrap();
    run(Command::new("kill").args(["-TERM", &c.id().to_string()]));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "registry still running 15 s after SIGTERM with a 1 s grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(tmp.path().join("log")).unwrap();
    assert!(log.contains("grace period"), "{log}");
    drop(stalled);
}
