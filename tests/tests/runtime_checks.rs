//! `berth run`'s checks of its flags, end to end as root, against what Docker does: `-u` by
//! runc's rules (ids in `0..=2147483647`, names from the image's passwd and group files),
//! `--env-file` (regular files and pipes only, bounded, Docker's parse errors), and `-e`, `-w`,
//! `-h` refused before any container exists. Every refusal exits 125 and leaves no container
//! directory behind.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::ContainerEnv;

/// `bb:1` with an `app` user (uid 1000) who is also in `wheel` (gid 10).
fn env() -> ContainerEnv {
    ContainerEnv::new(&[
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nwheel:x:10:app,root\napp:x:1000:\n"),
    ])
}

/// Runs `cmd`, failing the test (and killing it) if it has not ended within `limit`: a
/// generous bound so that a hang fails instead of blocking the suite, not a speed assertion.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Asserts `berth ARGS` exits 125 saying each of `says`, and leaves no container.
fn refused(env: &ContainerEnv, args: &[&str], says: &[&str]) {
    let out = output_within(env.cmd(args), Duration::from_mins(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "berth {args:?}: {stderr}");
    for s in says {
        assert!(stderr.contains(s), "berth {args:?}: {stderr:?} lacks {s:?}");
    }
    assert!(
        env.container_ids().is_empty(),
        "berth {args:?} left {:?}",
        env.container_ids()
    );
}

const RANGE: &str = "uids and gids must be in range 0-2147483647";

#[test]
fn user_ids_out_of_range_are_refused() {
    let env = env();
    // 4294967295 is -1 to setresuid: "no change", which left the process root.
    refused(
        &env,
        &["run", "--rm", "-u", "4294967295", "bb:1", "id"],
        &[RANGE],
    );
    refused(
        &env,
        &["run", "--rm", "-u", "2147483648", "bb:1", "id"],
        &[RANGE],
    );
    refused(&env, &["run", "--rm", "-u", "-1", "bb:1", "id"], &[RANGE]);
    refused(
        &env,
        &["run", "--rm", "-u", "0:4294967295", "bb:1", "id"],
        &[RANGE],
    );
    refused(
        &env,
        &["create", "-u", "4294967295", "bb:1", "id"],
        &[RANGE],
    );
    refused(
        &env,
        &["run", "--rm", "-u", "ghost", "bb:1", "id"],
        &["unable to find user ghost: no matching entries in passwd file"],
    );
    refused(
        &env,
        &["run", "--rm", "-u", "app:ghosts", "bb:1", "id"],
        &["unable to find group ghosts: no matching entries in group file"],
    );
}

/// uid, gid, supplementary groups, effective capabilities and `HOME`, as the process sees them.
const WHO: &str = "echo $(id -u) $(id -g) $(grep ^Groups: /proc/self/status | cut -f2) \
                   $(grep ^CapEff: /proc/self/status | cut -f2) $HOME";

#[test]
fn users_resolve_as_in_docker() {
    let env = env();
    // Each line is what Docker 20.10 prints for the same image and flag.
    for (user, want) in [
        ("2147483647", "2147483647 0 0 0000000000000000 /"),
        ("1000", "1000 1000 10 1000 0000000000000000 /home/app"),
        ("app", "1000 1000 10 1000 0000000000000000 /home/app"),
        ("app:wheel", "1000 10 10 0000000000000000 /home/app"),
        (":10", "0 10 10 00000000a80425fb /root"),
        ("4242:7", "4242 7 7 0000000000000000 /"),
    ] {
        let (code, out, err) = env.sh(&["-u", user], WHO);
        assert_eq!((code, out.trim()), (0, want), "-u {user}: {err}");
    }
    // The image's `User` goes through the same rules.
    let (code, out, err) = env.sh(&[], WHO);
    assert_eq!(
        (code, out.trim()),
        (0, "0 0 0 10 00000000a80425fb /root"),
        "{err}"
    );
}

#[test]
fn env_file_that_never_ends_is_refused() {
    let env = env();
    // Before: read without bound until the allocation failed (24 GB on this machine).
    refused(
        &env,
        &["run", "--rm", "--env-file", "/dev/zero", "bb:1", "true"],
        &["invalid env file (/dev/zero)", "character device"],
    );
    let dir = env.tmp.path().to_str().unwrap().to_owned();
    refused(
        &env,
        &["run", "--rm", "--env-file", &dir, "bb:1", "true"],
        &["invalid env file", "directory"],
    );
    let big = env.tmp.path().join("big.env");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(64 << 20).unwrap();
    refused(
        &env,
        &[
            "run",
            "--rm",
            "--env-file",
            big.to_str().unwrap(),
            "bb:1",
            "true",
        ],
        &["larger than 1048576 bytes"],
    );
}

#[test]
fn env_file_lines_are_checked_as_docker_does() {
    let env = env();
    for (text, says) in [
        ("A=1\nMY VAR=1\n", "variable 'MY VAR' contains whitespaces"),
        ("=x\n", "no variable name on line '=x'"),
        ("A=1\n  \t=y z\n", "no variable name on line '=y z'"),
    ] {
        let file = env.tmp.path().join("bad.env");
        std::fs::write(&file, text).unwrap();
        let name = file.to_str().unwrap();
        refused(
            &env,
            &["run", "--rm", "--env-file", name, "bb:1", "true"],
            &[&format!("invalid env file ({name})"), says],
        );
    }
    let file = env.tmp.path().join("bad8.env");
    std::fs::write(&file, b"A=\xff\n").unwrap();
    refused(
        &env,
        &[
            "run",
            "--rm",
            "--env-file",
            file.to_str().unwrap(),
            "bb:1",
            "true",
        ],
        &["invalid utf8 bytes at line 1: [65 61 255]"],
    );
    let mut long = b"A=".to_vec();
    long.resize(70_000, b'x');
    std::fs::write(&file, &long).unwrap();
    refused(
        &env,
        &[
            "run",
            "--rm",
            "--env-file",
            file.to_str().unwrap(),
            "bb:1",
            "true",
        ],
        &["line 1 is longer than 65535 bytes"],
    );
}

#[test]
fn env_files_and_pipes_still_work() {
    let env = env();
    let file = env.tmp.path().join("good.env");
    std::fs::write(&file, "# comment\nA=1\n  B= two words \nC\n").unwrap();
    let (code, out, err) = env.sh(
        &["--env-file", file.to_str().unwrap(), "-e", "C=3"],
        "echo \"$A|$B|$C\"",
    );
    assert_eq!((code, out.as_str()), (0, "1| two words |3\n"), "{err}");
    // `--env-file /dev/stdin` (as `<(…)` gives) is a pipe: read to its end.
    let mut cmd = env.cmd(&[
        "run",
        "--rm",
        "--env-file",
        "/dev/stdin",
        "bb:1",
        "sh",
        "-c",
        "echo $P",
    ]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"P=piped\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "piped\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_workdir_and_hostname_are_checked_before_anything_is_created() {
    let env = env();
    refused(
        &env,
        &["run", "--rm", "-e", "=x", "bb:1", "true"],
        &["invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"],
    );
    refused(
        &env,
        &["create", "-e", "=", "bb:1", "true"],
        &["invalid environment variable: ="],
    );
    refused(
        &env,
        &["run", "--rm", "-w", "rel", "bb:1", "true"],
        &["the working directory 'rel' is invalid, it needs to be an absolute path"],
    );
    // A newline would add a line of the caller's choosing to the container's /etc/hosts.
    refused(
        &env,
        &["run", "--rm", "-h", "box\n6.6.6.6 registry", "bb:1", "true"],
        &["invalid hostname format for --hostname: `box\\n6.6.6.6 registry`"],
    );
    refused(
        &env,
        &["run", "--rm", "-d", "-h", &"x".repeat(65), "bb:1", "true"],
        &["invalid hostname format"],
    );
    // What Docker takes still works.
    let (code, out, err) = env.sh(
        &["-h", "ok-host.example", "-w", "/tmp", "-e", "A=", "-e", "B"],
        "echo $(hostname) $(pwd) \"[$A]\"",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "ok-host.example /tmp []\n"),
        "{err}"
    );
}
