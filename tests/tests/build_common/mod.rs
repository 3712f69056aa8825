//! Helpers shared by the `berth build` tests (`client_build.rs`, `client_build_remote.rs`): the
//! test environment with a busybox image `bb:1`, context writing, running `berth build` and
//! reading its plain progress, tar and `berth save` inspection, a local HTTP server.
#![allow(dead_code)] // each test crate uses its own subset

use berth_tests::ContainerEnv;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";

pub const GROUP: &str = "root:x:0:\napp:x:1000:\n";

pub fn env() -> ContainerEnv {
    ContainerEnv::new(&[
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/motd", "welcome\n"),
    ])
}

pub fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
}

pub fn build(env: &ContainerEnv, args: &[&str]) -> Output {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    env.cmd(&a).env("BERTH_NO_PROGRESS", "1").output().unwrap()
}

pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn plain(env: &ContainerEnv, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = build(env, &args);
    ok(&out, "berth build");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lines `Step N/M : …` each followed by its cache verdict.
pub fn verdicts(log: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("Step ") {
            let instr = rest.split_once(" : ").map_or(rest, |x| x.1).to_owned();
            if instr.starts_with("FROM") {
                continue;
            }
            let v = lines.get(i + 1).copied().unwrap_or_default().to_owned();
            out.push((instr, v));
        }
    }
    out
}

pub fn image_id_and_layers(env: &ContainerEnv, tag: &str) -> (Value, Value) {
    let v: Value = serde_json::from_str(&env.ok(&["image", "inspect", tag])).unwrap();
    (v[0]["Id"].clone(), v[0]["RootFS"]["Layers"].clone())
}

/// A file of a tar, by path (`./` prefixes ignored).
pub fn tar_file(tar_bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        if path.trim_start_matches("./") == name {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            return Some(out);
        }
    }
    None
}

/// `python3 -m http.server` on 127.0.0.1 serving `dir`; killed on drop.
pub struct HttpServer {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl HttpServer {
    /// Starts serving `dir`.
    pub fn start(dir: &Path) -> Self {
        let port = berth_tests::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Self { child, addr };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("the HTTP server on {addr} did not start");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `path -> mtime` of the files in every layer of a `berth save` archive.
pub fn layer_mtimes(saved: &[u8]) -> BTreeMap<String, u64> {
    let manifest: Value =
        serde_json::from_slice(&tar_file(saved, "manifest.json").unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let blob = tar_file(saved, layer.as_str().unwrap()).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut raw).unwrap();
        let mut ar = tar::Archive::new(&raw[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            out.insert(
                path.trim_start_matches("./").to_owned(),
                e.header().mtime().unwrap(),
            );
        }
    }
    out
}
