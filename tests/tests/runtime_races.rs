//! Symlink-swap races against `cp` (both ways), `export` and `commit`, as root (the
//! CVE-2018-15664 class). The container swaps a real directory `/w/s` and a symlink `/w/l`
//! (whose target is a host directory's path) with `renameat2(RENAME_EXCHANGE)` in a loop, while
//! the host copies through `/w/s`. A host-side resolver that checks a path and then uses it by
//! name follows the symlink on the host; Berth must never read or write the host directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_tests::ContainerEnv;

/// The swap loop keeps a core busy: one racing container at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A container swapping `/w/s` (a directory holding a harmless `secret`) and `/w/l` (a symlink
/// to a host directory holding a 0600 `secret`).
struct Race {
    env: ContainerEnv,
    host: tempfile::TempDir,
    secret: String,
    id: String,
}

impl Race {
    fn start() -> Self {
        let env = ContainerEnv::new(&[]);
        let host = tempfile::tempdir().unwrap();
        let secret = format!("host secret {}\n", berth_tests::nonce());
        let file = host.path().join("secret");
        std::fs::write(&file, &secret).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let id = env.detach(
            &[],
            &format!(
                "mkdir -p /w/s && echo harmless > /w/s/secret && ln -s {} /w/l \
                 && touch /ready && exec berth-check swap /w/s /w/l 300",
                host.path().display()
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !env
            .berth(&["cp", &format!("{id}:/ready"), "-"])
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "the container never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            env,
            host,
            secret,
            id,
        }
    }

    fn at(&self, p: &str) -> String {
        format!("{}:{p}", self.id)
    }

    /// Whether the host directory gained entries or its `secret` changed; puts it back.
    fn host_touched(&self) -> bool {
        let mut touched = false;
        for e in std::fs::read_dir(self.host.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "secret" {
                touched = true;
                let p = e.path();
                if e.file_type().unwrap().is_dir() {
                    std::fs::remove_dir_all(p).unwrap();
                } else {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        let file = self.host.path().join("secret");
        if std::fs::read_to_string(&file).ok().as_deref() != Some(self.secret.as_str()) {
            touched = true;
            let _ = std::fs::remove_file(&file);
            std::fs::write(&file, &self.secret).unwrap();
        }
        touched
    }
}

/// Regular files under `dir` (symlinks not followed) whose content has `needle`, and how many
/// regular files there are.
fn scan(dir: &Path, needle: &str) -> (Vec<PathBuf>, usize) {
    let (mut hits, mut files) = (Vec::new(), 0);
    let mut todo = vec![dir.to_owned()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        } else if meta.is_file() {
            files += 1;
            if String::from_utf8_lossy(&std::fs::read(&p).unwrap()).contains(needle) {
                hits.push(p);
            }
        }
    }
    (hits, files)
}

/// Contents of the regular files in a tar stream.
fn tar_files(bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            out.push((e.path().unwrap().display().to_string(), s));
        }
    }
    out
}

#[test]
fn cp_out_never_reads_the_host_through_a_swapped_symlink() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = Race::start();
    let out = tempfile::tempdir().unwrap();
    let (mut hits, mut copied) = (0, 0);
    let tries = 150;
    for i in 0..tries {
        // The file through the swapped directory, the directory itself, and its parent.
        let src = ["/w/s/secret", "/w/s", "/w"][i % 3];
        let dest = out.path().join(format!("try-{i}"));
        let _ = r.env.berth(&["cp", &r.at(src), dest.to_str().unwrap()]);
        let (h, n) = scan(&dest, &r.secret);
        let mut hit = !h.is_empty();
        copied += n;
        let stream = r.env.berth(&["cp", &r.at(src), "-"]);
        if !stream.stdout.is_empty() {
            let files = tar_files(&stream.stdout);
            hit |= files.iter().any(|(_, c)| c.contains(&r.secret));
            copied += files.len();
        }
        hits += usize::from(hit);
    }
    assert_eq!(
        hits, 0,
        "`cp` read the host file in {hits} of {tries} tries"
    );
    assert!(
        copied > 0,
        "no try copied anything: the test proves nothing"
    );
    assert!(!r.host_touched(), "`cp` out changed the host directory");
}

#[test]
fn cp_in_never_writes_the_host_through_a_swapped_symlink() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = Race::start();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("planted");
    std::fs::write(&file, "planted\n").unwrap();
    let dir = src.path().join("planted-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("inner"), "inner\n").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(8);
    h.set_mode(0o644);
    b.append_data(&mut h, "streamed", &b"planted\n"[..])
        .unwrap();
    let stream = b.into_inner().unwrap();
    let tries = 150;
    let (mut ok, mut hits) = (0, 0);
    for i in 0..tries {
        let status = match i % 4 {
            0 => {
                r.env
                    .berth(&["cp", file.to_str().unwrap(), &r.at("/w/s/")])
                    .status
            }
            1 => {
                r.env
                    .berth(&["cp", file.to_str().unwrap(), &r.at("/w/s/renamed")])
                    .status
            }
            2 => {
                r.env
                    .berth(&["cp", dir.to_str().unwrap(), &r.at("/w/s")])
                    .status
            }
            _ => {
                let mut child = r
                    .env
                    .cmd(&["cp", "-", &r.at("/w/s")])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), &stream);
                child.wait().unwrap()
            }
        };
        ok += usize::from(status.success());
        hits += usize::from(r.host_touched());
    }
    assert_eq!(
        hits, 0,
        "`cp` wrote into the host directory in {hits} of {tries} tries"
    );
    assert!(ok > 0, "no try succeeded: the test proves nothing");
}

#[test]
fn export_never_archives_the_host_through_a_swapped_symlink() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = Race::start();
    let tries = 60;
    let (mut hits, mut harmless) = (0, 0);
    for _ in 0..tries {
        let out = r.env.berth(&["export", &r.id]);
        if !out.status.success() {
            continue;
        }
        for (name, content) in tar_files(&out.stdout) {
            hits += usize::from(content.contains(&r.secret));
            harmless += usize::from(name.ends_with("secret") && content == "harmless\n");
        }
    }
    assert_eq!(
        hits, 0,
        "`export` archived the host file in {hits} of {tries} tries"
    );
    assert!(
        harmless > 0,
        "no export held /w/s/secret: the test proves nothing"
    );
}

#[test]
fn commit_never_archives_the_host_through_a_swapped_symlink() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = Race::start();
    let tries = 20;
    let mut ok = 0;
    for i in 0..tries {
        let out = r.env.berth(&["commit", &r.id, &format!("raced:{i}")]);
        ok += usize::from(out.status.success());
    }
    assert!(ok > 0, "no commit succeeded: the test proves nothing");
    // Committed layers are unpacked under the data root's `layers/`, one directory each, and
    // each holds the whole `upper/`: `/w/s/secret` under one name or the other.
    let (mut hits, mut harmless) = (Vec::new(), 0);
    for layer in std::fs::read_dir(r.env.data_root().join("layers/sha256")).unwrap() {
        let w = layer.unwrap().path().join("fs/w");
        hits.extend(scan(&w, &r.secret).0);
        harmless += scan(&w, "harmless\n").0.len();
    }
    assert!(
        hits.is_empty(),
        "`commit` archived the host file in {} of {tries} tries: {hits:?}",
        hits.len()
    );
    assert!(
        harmless > 0,
        "no commit held /w/s/secret: the test proves nothing"
    );
}
