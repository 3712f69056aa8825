//! Container file systems end to end, as root: `commit` (whiteouts become `.wh.` entries),
//! `export | import -` round trip, `cp` both ways (files, directories, `-` tar streams), and
//! `cp` through symlinks that point outside the container (CVE-2018-15664 class) never touching
//! host files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{bin, require};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    /// A data root with the busybox image `bb:1` imported.
    fn new() -> Self {
        require(
            "busybox",
            "install it with `apt-get install busybox-static`",
        );
        berth_tests::require_root();
        let tmp = tempfile::tempdir().unwrap();
        let tar = berth_tests::busybox_rootfs_tar(tmp.path(), &[]);
        let env = Self { tmp };
        env.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
        env
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn data_root(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.arg("--data-root").arg(self.data_root()).args(args);
        c
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs berth, asserting success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs berth with `input` on STDIN, asserting success; stdout bytes.
    fn ok_stdin(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `run --name NAME bb:1 sh -c SCRIPT` in the foreground; the container stays (stopped).
    fn run_named(&self, name: &str, script: &str) {
        self.ok(&["run", "--name", name, "bb:1", "sh", "-c", script]);
    }

    /// `run --rm IMAGE sh -c SCRIPT`; its stdout.
    fn sh(&self, image: &str, script: &str) -> String {
        self.ok(&["run", "--rm", image, "sh", "-c", script])
    }

    /// Mounts under the test's directory (there must be none left).
    fn mounts(&self) -> Vec<String> {
        let prefix = self.path().display().to_string();
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|t| t.starts_with(&prefix))
            .map(ToOwned::to_owned)
            .collect()
    }

    fn assert_no_temp_mounts(&self) {
        let tmp = self.data_root().join("tmp").display().to_string();
        let left: Vec<String> = self
            .mounts()
            .into_iter()
            .filter(|m| m.starts_with(&tmp))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Never leave a container or mount behind, even when a test failed half-way.
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
        for target in self.mounts() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn commit_keeps_additions_and_deletions() {
    let env = Env::new();
    env.run_named(
        "c1",
        "echo hi > /hello && rm /bin/ls && mkdir /d && echo x > /d/x",
    );
    let id = env.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "my change",
        "-c",
        "ENV FOO=bar",
        "c1",
        "bb:2",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    env.assert_no_temp_mounts();

    let out = env.sh(
        "bb:2",
        "cat /hello /d/x; test -e /bin/ls && echo present || echo gone; echo $FOO",
    );
    assert_eq!(out, "hi\nx\ngone\nbar\n");
    // The base image is unchanged.
    assert_eq!(
        env.sh(
            "bb:1",
            "test -e /bin/ls && echo present; test -e /hello || echo none"
        ),
        "present\nnone\n"
    );
    let history = env.ok(&["history", "--no-trunc", "bb:2"]);
    assert!(history.contains("my change"), "{history}");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            env.data_root()
                .join("blobs/sha256")
                .join(id.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["author"], "Ann <ann@example.com>");
    let last = config["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["author"], "Ann <ann@example.com>");
    assert_eq!(last["comment"], "my change");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}

#[test]
fn export_import_round_trip() {
    let env = Env::new();
    env.run_named("c2", "echo hi > /hello && ln /hello /hello2 && rm /bin/ls");
    // To a file …
    let file = env.path().join("c2.tar");
    env.ok(&["export", "-o", file.to_str().unwrap(), "c2"]);
    let names = tar_names(&std::fs::read(&file).unwrap());
    assert!(names.iter().any(|n| n == "hello"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bin/ls"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
    // … and to STDOUT, read back by `import -`.
    let out = env.berth(&["export", "c2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(env.ok_stdin(&["import", "-", "flat:1"], &out.stdout)).unwrap();
    assert!(id.trim().starts_with("sha256:"), "{id}");
    env.assert_no_temp_mounts();
    // The hard link survives the round trip as a hard link (one inode, two names).
    assert_eq!(
        env.sh(
            "flat:1",
            "cat /hello; test -e /bin/ls || echo gone; stat -c %h /hello2; \
             [ $(stat -c %i /hello) = $(stat -c %i /hello2) ] && echo same-inode"
        ),
        "hi\ngone\n2\nsame-inode\n"
    );
    assert!(!env.berth(&["export", "nosuch"]).status.success());
}

#[test]
fn export_running_container() {
    let env = Env::new();
    let id = env
        .ok(&["run", "-d", "bb:1", "sh", "-c", "echo up > /up; sleep 60"])
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.berth(&["export", &id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if tar_names(&out.stdout).iter().any(|n| n == "up") {
            break;
        }
        assert!(Instant::now() < deadline, "/up never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    env.assert_no_temp_mounts();
    env.ok(&["rm", "-f", &id]);
}

#[test]
fn cp_out_and_in() {
    let env = Env::new();
    env.run_named("c3", "echo hi > /hello && mkdir /dir && echo a > /dir/a");
    let host = env.path().join("host");
    std::fs::create_dir_all(&host).unwrap();

    // Out: a file to a new name, a directory into an existing directory, a tar on STDOUT.
    let out_file = host.join("out.txt");
    env.ok(&["cp", "c3:/hello", out_file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "hi\n");
    env.ok(&["cp", "c3:/dir", host.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.join("dir/a")).unwrap(), "a\n");
    let out = env.berth(&["cp", "c3:/dir", "-"]);
    assert!(out.status.success());
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "dir/a"), "{names:?}");

    // In: a file, a directory, a tar on STDIN.
    let in_file = host.join("in.txt");
    std::fs::write(&in_file, "from host\n").unwrap();
    env.ok(&["cp", in_file.to_str().unwrap(), "c3:/"]);
    env.ok(&["cp", in_file.to_str().unwrap(), "c3:/dir/renamed"]);
    let src_dir = host.join("tree");
    std::fs::create_dir_all(src_dir.join("sub")).unwrap();
    std::fs::write(src_dir.join("sub/f"), "deep\n").unwrap();
    env.ok(&["cp", src_dir.to_str().unwrap(), "c3:/dir"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(7);
    h.set_mode(0o644);
    b.append_data(&mut h, "streamed", &b"stream\n"[..]).unwrap();
    env.ok_stdin(&["cp", "-", "c3:/dir"], &b.into_inner().unwrap());
    env.assert_no_temp_mounts();

    // Read back through a committed image.
    env.ok(&["commit", "c3", "bb:cp"]);
    assert_eq!(
        env.sh(
            "bb:cp",
            "cat /in.txt /dir/renamed /dir/tree/sub/f /dir/streamed"
        ),
        "from host\nfrom host\ndeep\nstream\n"
    );
    assert!(!env
        .berth(&["cp", "c3:/nosuch", host.to_str().unwrap()])
        .status
        .success());
}

/// A symlink inside the container pointing at `/` or at a host directory must resolve inside
/// the container, for reads and writes, stopped or running.
#[test]
fn cp_never_follows_container_symlinks_to_the_host() {
    let env = Env::new();
    let secret_dir = env.path().join("hostsecret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    let secret = secret_dir.join("secret.txt");
    std::fs::write(&secret, "host only\n").unwrap();
    let sd = secret_dir.to_str().unwrap();
    env.run_named(
        "c4",
        &format!("ln -s / /evil && ln -s {sd} /hostlink && ln -s {sd}/secret.txt /filelink"),
    );
    let host_out = env.path().join("stolen");
    let payload = env.path().join("payload");
    std::fs::write(&payload, "pwned\n").unwrap();

    let check = |c: &str| {
        // Reads: the host file is not in the container, so nothing is copied out.
        for src in [
            format!("{c}:/evil{sd}/secret.txt"),
            format!("{c}:/hostlink/secret.txt"),
        ] {
            let out = env.berth(&["cp", &src, host_out.to_str().unwrap()]);
            assert!(!out.status.success(), "{src} was copied out");
            assert!(!host_out.exists());
            let out = env.berth(&["cp", &src, "-"]);
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains("host only"),
                "{src} leaked"
            );
        }
        // The link itself is copied, not what it points to.
        let _ = std::fs::remove_file(&host_out);
        env.ok(&["cp", &format!("{c}:/filelink"), host_out.to_str().unwrap()]);
        assert!(std::fs::symlink_metadata(&host_out)
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_file(&host_out).unwrap();

        // Writes: whatever they do, they stay inside the container.
        let p = payload.to_str().unwrap();
        for dest in [
            format!("{c}:/evil{sd}/x"),
            format!("{c}:/hostlink/x"),
            format!("{c}:/hostlink/secret.txt"),
            format!("{c}:/filelink"),
            format!("{c}:/evil/{}", secret.display()),
        ] {
            let _ = env.berth(&["cp", p, &dest]);
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "secret.txt", &b"pwned\n"[..])
            .unwrap();
        let bytes = b.into_inner().unwrap();
        for dest in [format!("{c}:/hostlink"), format!("{c}:/evil{sd}")] {
            let mut child = env
                .cmd(&["cp", "-", &dest])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
            let _ = child.wait();
        }
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host only\n");
        let entries: Vec<_> = std::fs::read_dir(&secret_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("secret.txt")]);
        env.assert_no_temp_mounts();
    };
    check("c4");

    // The same against a running container (its own mounted root).
    let id = env
        .ok(&[
            "run",
            "-d",
            "bb:1",
            "sh",
            "-c",
            &format!(
                "ln -s / /evil && ln -s {sd} /hostlink && ln -s {sd}/secret.txt /filelink \
                 && touch /ready && sleep 60"
            ),
        ])
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env
        .berth(&["cp", &format!("{id}:/ready"), "-"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "container never got ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    check(&id);
    env.ok(&["rm", "-f", &id]);
}

/// Where overlayfs cannot be mounted on the data root (here: the data root is itself on an
/// overlayfs, as inside another container), the root file system is a copy of the layers:
/// runs, restarts and exports still work; commit says why it cannot.
#[test]
fn a_copied_rootfs_where_overlayfs_is_unavailable() {
    berth_tests::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["l", "u", "w", "m"]
        .iter()
        .map(|d| tmp.path().join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        dirs[0].display(),
        dirs[1].display(),
        dirs[2].display()
    );
    assert!(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&dirs[3])
        .status()
        .unwrap()
        .success());
    struct Unmount(PathBuf, PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new(bin("berth"))
                .arg("--data-root")
                .arg(&self.1)
                .args(["rm", "-f", "keep"])
                .output();
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let root = dirs[3].join("data");
    let _guard = Unmount(dirs[3].clone(), root.clone());
    let berth = |args: &[&str]| {
        Command::new(bin("berth"))
            .arg("--data-root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let tar = berth_tests::busybox_rootfs_tar(tmp.path(), &[("etc/motd", "hello\n")]);
    assert!(berth(&["import", tar.to_str().unwrap(), "bb:1"])
        .status
        .success());
    let out = berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "cat",
        "/etc/motd",
    ]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "hello\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A kept container: its changes persist across a second start; export sees them.
    let out = berth(&[
        "run",
        "--name",
        "keep",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo $$ >> /runs; rm /etc/motd",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&["start", "-a", "keep"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rm of a file already gone fails: {out:?}"
    );
    let out = berth(&["export", "keep"]);
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "runs"), "{names:?}");
    assert!(!names.iter().any(|n| n == "etc/motd"), "{names:?}");
    let out = berth(&["commit", "keep", "x:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root file system is a copy"));
    assert!(berth(&["rm", "keep"]).status.success());
}
