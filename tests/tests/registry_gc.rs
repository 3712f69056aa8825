//! Online GC against the real binary: a GC loop (every second, 3 s grace) while skopeo and
//! `berth` push, mount and pull concurrently; `kill -9` in the middle of a GC run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::*;

/// One completed push: where, and the manifest digest its pusher reported or built.
#[derive(Clone, Debug)]
struct Pushed {
    repo: String,
    tag: String,
    digest: String,
    by: &'static str,
}

fn config_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("registry.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Pulls `repo:tag` through the API and checks every byte against its digest; returns the
/// digests of the manifest and every blob it references.
fn pulls_intact(url: &str, p: &Pushed) -> Vec<String> {
    let m = get_manifest(url, &p.repo, &p.tag);
    assert_eq!(m.status, 200, "{p:?}: manifest {}", m.text());
    assert_eq!(sha256(&m.body), p.digest, "{p:?}: manifest bytes");
    let v = m.json();
    let mut digests: Vec<String> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    digests.push(v["config"]["digest"].as_str().unwrap().to_owned());
    for d in &digests {
        let b = http("GET", &format!("{url}/v2/{}/blobs/{d}", p.repo), &[], None);
        assert_eq!(b.status, 200, "{p:?}: blob {d}");
        assert_eq!(&sha256(&b.body), d, "{p:?}: blob {d} bytes");
    }
    digests.push(p.digest.clone());
    digests
}

fn metric(url: &str, line_prefix: &str) -> f64 {
    let text = http("GET", &format!("{url}/metrics"), &[], None).text();
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn berth(dir: &Path, args: &[&str]) -> std::process::Output {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new(bin("berth"))
        .arg("--data-root")
        .arg(dir.join("root"))
        .args(args)
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_DATA_ROOT")
        .env("HOME", &home)
        .env("BERTH_CONFIG_DIR", home.join(".berth"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("BERTH_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run berth")
}

fn skopeo_copy(from: &str, to: &str) -> std::process::Output {
    Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(from)
        .arg(to)
        .output()
        .expect("run skopeo")
}

#[test]
fn gc_loop_during_concurrent_skopeo_and_berth_pushes_mounts_and_pulls() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(tmp.path(), "[gc]\ninterval_secs = 1\ngrace_secs = 3\n");
    let reg = Registry::start(tmp.path(), &["--config", cfg.to_str().unwrap(), "--delete"]);
    let url = reg.url();
    let addr = reg.addr.clone();
    // The shared base everyone mounts or re-pushes.
    let (base, base_m) = busybox_image(&tmp.path().join("base"), 1, "v1");
    let out = skopeo_copy(
        &format!("oci:{}:v1", base.dir.display()),
        &format!("docker://{addr}/base/bb:v1"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = Arc::new(Mutex::new(vec![Pushed {
        repo: "base/bb".into(),
        tag: "v1".into(),
        digest: base_m.digest.clone(),
        by: "skopeo",
    }]));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut workers = Vec::new();

    // Skopeo pushers: unique images (fresh layers plus the shared busybox layer).
    for w in 0..2 {
        let (addr, pushed, failures, stop) =
            (addr.clone(), pushed.clone(), failures.clone(), stop.clone());
        let dir = tmp.path().join(format!("skopeo-{w}"));
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let tag = format!("t{n}");
                let (layout, m) = unique_busybox_image(&dir.join(&tag), 1, &tag);
                let repo = format!("skopeo/w{w}");
                let out = skopeo_copy(
                    &format!("oci:{}:{tag}", layout.dir.display()),
                    &format!("docker://{addr}/{repo}:{tag}"),
                );
                if out.status.success() {
                    pushed.lock().unwrap().push(Pushed {
                        repo,
                        tag,
                        digest: m.digest,
                        by: "skopeo",
                    });
                } else {
                    failures.lock().unwrap().push(format!(
                        "skopeo push {repo}:{tag}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                n += 1;
            }
        }));
    }
    // Skopeo registry-to-registry copies: cross-repository mounts of the base.
    {
        let (addr, pushed, failures, stop) =
            (addr.clone(), pushed.clone(), failures.clone(), stop.clone());
        let digest = base_m.digest.clone();
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let repo = format!("mounted/m{n}");
                let out = skopeo_copy(
                    &format!("docker://{addr}/base/bb:v1"),
                    &format!("docker://{addr}/{repo}:v1"),
                );
                if out.status.success() {
                    pushed.lock().unwrap().push(Pushed {
                        repo,
                        tag: "v1".into(),
                        digest: digest.clone(),
                        by: "skopeo-mount",
                    });
                } else {
                    failures.lock().unwrap().push(format!(
                        "skopeo mount to {repo}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }
    // berth: pull the base once, then tag and push it to new repositories.
    {
        let (addr, pushed, failures, stop) =
            (addr.clone(), pushed.clone(), failures.clone(), stop.clone());
        let dir = tmp.path().join("berth");
        let digest = base_m.digest.clone();
        workers.push(std::thread::spawn(move || {
            let src = format!("{addr}/base/bb:v1");
            let out = berth(&dir, &["pull", &src]);
            if !out.status.success() {
                failures.lock().unwrap().push(format!(
                    "berth pull: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                return;
            }
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let repo = format!("berth/p{n}");
                let dst = format!("{addr}/{repo}:v1");
                let tag = berth(&dir, &["tag", &src, &dst]);
                let out = berth(&dir, &["push", &dst]);
                if tag.status.success() && out.status.success() {
                    pushed.lock().unwrap().push(Pushed {
                        repo,
                        tag: "v1".into(),
                        digest: digest.clone(),
                        by: "berth",
                    });
                } else {
                    failures.lock().unwrap().push(format!(
                        "berth push {dst}: {}{}",
                        String::from_utf8_lossy(&tag.stderr),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                n += 1;
            }
        }));
    }
    // Garbage for the GC to find: small images pushed and deleted at once.
    {
        let (url, stop) = (url.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let (_, digest) = push_small_image(&url, "junk/x", &format!("j{n}"), 1000 + n);
                let r = http(
                    "DELETE",
                    &format!("{url}/v2/junk/x/manifests/{digest}"),
                    &[],
                    None,
                );
                assert_eq!(r.status, 202);
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    // A puller over everything completed so far.
    {
        let (url, pushed, stop) = (url.clone(), pushed.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let p = {
                    let all = pushed.lock().unwrap();
                    all[i % all.len()].clone()
                };
                pulls_intact(&url, &p);
                i += 1;
            }
        }));
    }
    for w in workers {
        w.join().expect("worker panicked");
    }
    stop.store(true, Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "clients failed while GC ran:\n{}",
        failures.join("\n")
    );
    // Past the grace period and two more runs: every completed push pulls intact.
    std::thread::sleep(Duration::from_secs(5));
    let pushed = pushed.lock().unwrap().clone();
    for by in ["skopeo", "skopeo-mount", "berth"] {
        assert!(
            pushed.iter().filter(|p| p.by == by).count() >= 2,
            "too few {by} pushes: {pushed:?}"
        );
    }
    for p in &pushed {
        pulls_intact(&url, p);
    }
    let runs = metric(&url, "berth_registry_gc_runs_total{result=\"success\"}");
    assert!(runs >= 10.0, "GC ran {runs} times");
    assert!(
        metric(&url, "berth_registry_gc_freed_bytes_total") > 0.0,
        "the deleted images were collected"
    );
    // No client was told a blob it had just uploaded or mounted is unknown.
    let log = reg.log_text();
    assert!(
        !log.contains("MANIFEST_BLOB_UNKNOWN"),
        "a manifest PUT lost a blob:\n{log}"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{} pushes verified, {runs} GC runs", pushed.len());
    }
}

/// Writes `count` unreferenced blobs (with repository links) straight into a data directory,
/// backdated past any grace period, so a GC run has real work to be killed in.
fn plant_garbage(data_dir: &Path, count: usize) {
    for i in 0..count {
        let data = format!("garbage blob {i}");
        let d = sha256(data.as_bytes());
        let hex = &d[7..];
        let blob = data_dir.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
        std::fs::create_dir_all(&blob).unwrap();
        std::fs::write(blob.join("data"), &data).unwrap();
        let link = data_dir.join(format!(
            "repositories/garbage/g{}/_layers/sha256/{hex}",
            i % 50
        ));
        std::fs::create_dir_all(&link).unwrap();
        std::fs::write(link.join("link"), &d).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(86_400);
        for f in [blob.join("data"), link.join("link")] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
}

#[test]
fn gc_killed_mid_run_leaves_every_tag_pullable_and_a_second_run_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(tmp.path(), "[gc]\ninterval_secs = 0\ngrace_secs = 0\n");
    let mut reg = Registry::start(tmp.path(), &["--config", cfg.to_str().unwrap(), "--delete"]);
    let url = reg.url();
    let mut kept = Vec::new();
    for i in 0..30u64 {
        let repo = format!("keep/r{}", i % 5);
        let (m, digest) = push_small_image(&url, &repo, &format!("v{i}"), i);
        let _ = m;
        kept.push(Pushed {
            repo,
            tag: format!("v{i}"),
            digest,
            by: "http",
        });
    }
    // Deleted images: their blobs are what the sweep removes while it is killed.
    for i in 0..30u64 {
        let (_, digest) = push_small_image(&url, "gone/x", &format!("g{i}"), 500 + i);
        assert_eq!(
            http(
                "DELETE",
                &format!("{url}/v2/gone/x/manifests/{digest}"),
                &[],
                None
            )
            .status,
            202
        );
    }
    reg.kill9();
    plant_garbage(&reg.data_dir, 6000);
    let before = verify_blob_store(&reg.data_dir);
    // Offline GC, killed at three different moments.
    for delay_ms in [50u64, 300, 900] {
        let mut gc = Command::new(bin("berth-registry"))
            .args(["gc", "--config", cfg.to_str().unwrap(), "--data-dir"])
            .arg(&reg.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = gc.kill();
        let _ = gc.wait();
    }
    let mid = verify_blob_store(&reg.data_dir);
    assert!(
        mid < before,
        "the killed runs deleted something ({mid} of {before} left)"
    );
    reg.restart();
    for p in &kept {
        pulls_intact(&url, p);
    }
    // Only `berth-registry gc` (with the token from the data directory) may trigger a run.
    let r = http("POST", &format!("{url}/_berth/gc"), &[], None);
    assert_eq!(r.status, 403, "{}", r.text());
    // A run through the server (the lock says one is serving) finishes the job.
    let out = run(Command::new(bin("berth-registry"))
        .args(["gc", "--config", cfg.to_str().unwrap(), "--data-dir"])
        .arg(&reg.data_dir));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["bytes_freed"].as_u64().unwrap() > 0, "{report}");
    let out = run(Command::new(bin("berth-registry"))
        .args([
            "gc",
            "--dry-run",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&reg.data_dir));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["blobs"].as_array().unwrap().len(),
        0,
        "nothing left: {report}"
    );
    // Exactly the kept images' blobs remain.
    let mut wanted = std::collections::BTreeSet::new();
    for p in &kept {
        wanted.extend(pulls_intact(&url, p));
    }
    assert_eq!(verify_blob_store(&reg.data_dir), wanted.len());
}
