//! `berth run` end to end, as root: a busybox rootfs built here, imported with `berth import`,
//! run in its own namespaces; exit codes, PID 1, hostname, isolation, capabilities, `--rm`, and
//! a cross-check of the same OCI bundle under `runc` and `crun`.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::{require, run, ContainerEnv};

/// The shared container test environment (cleans up after itself), plus this file's helpers.
struct Env(ContainerEnv);

impl std::ops::Deref for Env {
    type Target = ContainerEnv;
    fn deref(&self) -> &ContainerEnv {
        &self.0
    }
}

impl Env {
    /// A data root with `bb:1`: busybox with an `app` user and a non-program `/etc/motd`.
    fn new() -> Self {
        Self(ContainerEnv::new(&[
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
            ("etc/group", "root:x:0:\napp:x:1000:\n"),
            ("etc/motd", "not a program\n"),
        ]))
    }

    fn containers(&self) -> Vec<PathBuf> {
        self.container_ids()
            .iter()
            .map(|id| self.data_root().join("containers").join(id))
            .collect()
    }
}

#[test]
fn exit_codes_follow_docker() {
    let env = Env::new();
    let (code, out, _) = env.sh(&[], "echo hello; exit 3");
    assert_eq!((code, out.as_str()), (3, "hello\n"));
    let out = env.berth(&["run", "--rm", "bb:1", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    let out = env.berth(&["run", "--rm", "bb:1", "/etc/motd"]);
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.berth(&["run", "--rm", "no-such-image"]);
    assert_eq!(out.status.code(), Some(125));
    // PID 1 ignores SIGKILL from inside its own namespace, as in Docker.
    let (code, out, _) = env.sh(&[], "kill -9 $$; echo survived");
    assert_eq!((code, out.as_str()), (0, "survived\n"));
    assert!(env.containers().is_empty());
}

#[test]
fn pid_one_hostname_and_isolation() {
    let env = Env::new();
    let marker = env.tmp.path().join("host-marker");
    std::fs::write(&marker, "host").unwrap();
    let script = format!(
        "echo pid=$$; hostname; cat /etc/hostname; set -- /proc/[0-9]*; echo $#; \
         test -e {} && echo visible || echo hidden; ls /dev",
        marker.display()
    );
    let (code, out, err) = env.sh(&["-h", "box1"], &script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["pid=1", "box1", "box1"]);
    let pids: u32 = lines[3].parse().unwrap();
    assert!(pids <= 4, "the container sees {pids} processes");
    assert_eq!(lines[4], "hidden");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(lines.contains(&dev), "/dev/{dev} missing: {out}");
    }
    // The default hostname is the short container ID.
    let (_, out, _) = env.sh(&[], "hostname");
    assert_eq!(out.trim().len(), 12);
}

#[test]
fn capabilities_user_env_and_workdir() {
    let env = Env::new();
    let (code, out, err) = env.sh(&[], "grep CapEff /proc/self/status");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "CapEff:\t00000000a80425fb");
    let (code, out, err) = env.sh(
        &["-u", "app", "-w", "/work", "-e", "FOO=bar"],
        "id -u; id -g; pwd; echo $FOO $HOME; grep -E 'CapEff|CapBnd' /proc/self/status",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "1000\n1000\n/work\nbar /home/app\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n"
    );
    // /proc/sys is read-only, /proc/kcore (where the kernel has it) masked.
    let (code, ..) = env.sh(&[], "echo 1 > /proc/sys/kernel/domainname");
    assert_ne!(code, 0);
}

#[test]
fn rm_removes_the_container_and_keep_leaves_state() {
    let env = Env::new();
    let (code, ..) = env.sh(&[], "true");
    assert_eq!(code, 0);
    assert!(
        env.containers().is_empty(),
        "--rm left {:?}",
        env.containers()
    );
    let out = env.berth(&["run", "--name", "keep", "bb:1", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let dirs = env.containers();
    assert_eq!(dirs.len(), 1);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("state.json")).unwrap()).unwrap();
    assert_eq!(
        (state["Name"].as_str(), state["ExitCode"].as_i64()),
        (Some("keep"), Some(4))
    );
    assert!(dirs[0].join("config.json").is_file());
    // The rootfs was unmounted.
    assert!(std::fs::read_dir(dirs[0].join("rootfs"))
        .unwrap()
        .next()
        .is_none());
    let out = env.berth(&["run", "--name", "keep", "bb:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
}

/// The bundle Berth wrote, run by runc, shows the same identity, hostname and capabilities.
#[test]
fn runc_runs_the_same_bundle_the_same_way() {
    require("runc", "install it with `apt-get install runc`");
    cross_check("runc", &[], Command::new("runc"));
}

/// The same bundle run by crun gives the same observable result. crun 1.8 refuses hybrid
/// cgroups (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified): there it runs in a
/// private mount namespace without that mount, as MACHINE-NOTES.md describes; on a pure v1 or
/// pure v2 host it runs directly.
#[test]
fn crun_runs_the_same_bundle_the_same_way() {
    require("crun", "install it with `apt-get install crun`");
    let hybrid = cgroup_hybrid();
    if hybrid {
        require("unshare", "install it with `apt-get install util-linux`");
    }
    // crun always makes the /dev/core -> /proc/kcore symlink, dangling where the kernel has no
    // /proc/kcore (as here); runc (and Docker) make it only where /proc/kcore exists, Berth never.
    let crun = if hybrid {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("umount /sys/fs/cgroup/unified && exec crun \"$@\"")
            .arg("sh");
        c
    } else {
        Command::new("crun")
    };
    cross_check("crun", &["core"], crun);
}

/// Whether this host mixes cgroup v1 controllers with a cgroup2 mount at
/// `/sys/fs/cgroup/unified` (systemd's hybrid layout).
fn cgroup_hybrid() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 2 && f[1] == "/sys/fs/cgroup/unified" && f[2] == "cgroup2"
        })
}

/// Runs a script with `berth run`, then the bundle Berth wrote for it (its `config.json`, the
/// rootfs mounted again over the same layer) with another OCI runtime: `runtime` plus
/// `--root STATE run --bundle DIR ID`. Both must print the same identity, hostname,
/// capabilities, process count and /dev (less the `/dev` entries in `ignore_dev`).
fn cross_check(name: &str, ignore_dev: &[&str], mut runtime: Command) {
    let env = Env::new();
    let script = "id; hostname; grep -E 'CapEff|CapBnd|CapInh' /proc/self/status; set -- /proc/[0-9]*; echo $#; ls /dev | tr '\\n' ' '";
    let out = env.berth(&["run", "-h", "cross", "bb:1", "sh", "-c", script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The /dev listing is the last line, one space after each entry.
    let dev_filtered = |out: &[u8]| {
        let text = String::from_utf8_lossy(out).into_owned();
        let (head, dev) = text.rsplit_once('\n').unwrap_or(("", &text));
        let dev: String = dev
            .split_terminator(' ')
            .filter(|e| !ignore_dev.contains(e))
            .map(|e| format!("{e} "))
            .collect();
        format!("{head}\n{dev}")
    };
    let berth_out = dev_filtered(&out.stdout);
    let dir = env.containers().pop().unwrap();
    let layers: Vec<PathBuf> = std::fs::read_dir(env.data_root().join("layers/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path().join("fs"))
        .collect();
    assert_eq!(layers.len(), 1);
    let rootfs = dir.join("rootfs");
    mount_overlay(&layers[0], &dir.join("upper"), &dir.join("work"), &rootfs);
    let state_root = env.tmp.path().join(format!("{name}-root"));
    let out = runtime
        .arg("--root")
        .arg(&state_root)
        .args(["run", "--bundle"])
        .arg(&dir)
        .arg(format!("berth-cross-{name}-{}", std::process::id()))
        .output()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let _ = Command::new("umount").arg("-l").arg(&rootfs).status();
    assert!(
        out.status.success(),
        "{name} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        dev_filtered(&out.stdout),
        berth_out,
        "{name} and berth disagree"
    );
    assert!(berth_out.contains("CapEff:\t00000000a80425fb"));
}

fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) {
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .arg(target));
}

/// `--read-only` and `--tmpfs` (issue 12, "Run flags"): the root file system refuses writes
/// while `/dev/shm`, volumes and tmpfs mounts take them; tmpfs gets Docker's default options
/// and honours `size=`, `mode=` and `exec`; `inspect` shows both; bad values exit 125.
#[test]
fn read_only_root_and_tmpfs_mounts() {
    let env = Env::new();
    let script = "touch /x 2>/dev/null && echo root-rw || echo root-ro; \
                  mkdir /made 2>/dev/null && echo mkdir-rw || echo mkdir-ro; \
                  echo 1.2.3.4 x >> /etc/hosts 2>/dev/null && echo hosts-rw || echo hosts-ro; \
                  touch /run/a /dev/shm/a /data/a && echo writable; \
                  grep ' /run ' /proc/mounts; \
                  stat -c %a /run; \
                  cp /bin/busybox /run/true; /run/true 2>/dev/null && echo exec || echo noexec";
    let (code, out, err) = env.sh(
        &[
            "--read-only",
            "--tmpfs",
            "/run:size=1m,mode=1770",
            "-v",
            "/data",
        ],
        script,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        ["root-ro", "mkdir-ro", "hosts-ro", "writable"],
        "{out}"
    );
    // Docker's defaults: noexec, nosuid, nodev; the size and mode asked for.
    let run = lines[4];
    assert!(run.starts_with("tmpfs /run tmpfs rw,"), "{run}");
    for want in ["nosuid", "nodev", "noexec", "size=1024k", "mode=1770"] {
        assert!(run.contains(want), "{want} missing in {run}");
    }
    assert_eq!(lines[5..], ["1770", "noexec"], "{out}");
    // Without `--read-only` the root file system is writable; `exec` lifts the default.
    let (code, out, err) = env.sh(&["--tmpfs", "/run:exec", "-v", "/data"], script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        ["root-rw", "mkdir-rw", "hosts-rw", "writable"],
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"exec"), "{out}");
    // `inspect` shows them as Docker does.
    env.ok(&[
        "create",
        "--name",
        "ro",
        "--read-only",
        "--tmpfs",
        "/run:size=1m",
        "--tmpfs",
        "/cache",
        "bb:1",
        "true",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "ro"])).unwrap();
    let host = &doc[0]["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(
        host["Tmpfs"],
        serde_json::json!({"/run": "size=1m", "/cache": ""})
    );
    // The daemon's refusals.
    for (flag, want) in [
        (
            "run",
            "invalid mount path: 'run' mount path must be absolute",
        ),
        ("/", "invalid specification: destination can't be '/'"),
        ("/run:bogus", "invalid tmpfs option \"bogus\""),
    ] {
        let out = env.berth(&["run", "--rm", "--tmpfs", flag, "bb:1", "true"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flag}: {err}");
        assert!(err.contains(want), "{flag}: {err}");
    }
}

/// `--sysctl` (issue 12, "Run flags"): namespaced parameters are written in the container's own
/// network and IPC namespaces (the host's values stay), shown by `inspect`; the others, and
/// `net.*` with the host's network, are refused as Docker refuses them.
#[test]
fn sysctls_are_set_in_the_containers_namespaces() {
    let env = Env::new();
    let host = |p: &str| std::fs::read_to_string(p).unwrap();
    let before = (
        host("/proc/sys/kernel/shmmax"),
        host("/proc/sys/fs/mqueue/msg_max"),
    );
    let script = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax \
                  /proc/sys/fs/mqueue/msg_max";
    for network in ["none", "bridge"] {
        let (code, out, err) = env.sh(
            &[
                "--network",
                network,
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "--sysctl",
                "kernel.shmmax=123456",
                "--sysctl",
                "fs.mqueue.msg_max=17",
            ],
            script,
        );
        assert_eq!(
            (code, out.as_str()),
            (0, "1\n123456\n17\n"),
            "{network}: {err}"
        );
    }
    // IPC parameters are fine with the host's network.
    let (code, out, err) = env.sh(
        &["--network", "host", "--sysctl", "kernel.shmmax=654321"],
        "cat /proc/sys/kernel/shmmax",
    );
    assert_eq!((code, out.as_str()), (0, "654321\n"), "{err}");
    // The host's own values are untouched.
    assert_eq!(
        before,
        (
            host("/proc/sys/kernel/shmmax"),
            host("/proc/sys/fs/mqueue/msg_max")
        )
    );
    // Joining another container's namespace: allowed, unless that one is the host's.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "own",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "bb:1",
        "sleep",
        "300",
    ]);
    let (code, out, err) = env.sh(
        &[
            "--network",
            "container:own",
            "--sysctl",
            "net.ipv4.ip_forward=1",
        ],
        "cat /proc/sys/net/ipv4/ip_forward",
    );
    assert_eq!((code, out.as_str()), (0, "1\n"), "{err}");
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "container:hostnet",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "bb:1",
        "true",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("not allowed in host network namespace"),
        "{err}"
    );
    env.ok(&[
        "create",
        "--name",
        "sys",
        "--network",
        "none",
        "--sysctl",
        "net.core.somaxconn=1024",
        "bb:1",
        "true",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "sys"])).unwrap();
    assert_eq!(
        doc[0]["HostConfig"]["Sysctls"],
        serde_json::json!({"net.core.somaxconn": "1024"})
    );
    for (flags, want) in [
        (
            &["--sysctl", "kernel.hostname=x"][..],
            "invalid argument \"kernel.hostname=x\" for \"--sysctl\" flag: sysctl 'kernel.hostname=x' is not allowed",
        ),
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..],
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace",
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "true"]);
        let out = env.berth(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

/// `--group-add` and `--shm-size` (issue 12, "Run flags"): the groups by name from the image's
/// `/etc/group` or by number, after the user's own; `/dev/shm` at the size asked for (64 MiB by
/// default); `inspect` shows both; Docker's refusals exit 125.
#[test]
fn group_add_and_shm_size() {
    let env = Env::new();
    let groups = |flags: &[&str]| {
        let (code, out, err) = env.sh(flags, "grep '^Groups:' /proc/self/status");
        assert_eq!(code, 0, "{err}");
        let mut gids: Vec<u32> = out
            .split_whitespace()
            .skip(1)
            .map(|g| g.parse().unwrap())
            .collect();
        gids.sort_unstable();
        gids
    };
    assert_eq!(groups(&["-u", "app"]), [1000]);
    assert_eq!(
        groups(&["-u", "app", "--group-add", "root", "--group-add", "4242"]),
        [0, 1000, 4242]
    );
    let shm = |flags: &[&str]| {
        let (code, out, err) = env.sh(flags, "grep ' /dev/shm ' /proc/mounts");
        assert_eq!(code, 0, "{err}");
        out
    };
    assert!(shm(&[]).contains("size=65536k"), "{}", shm(&[]));
    let big = shm(&["--shm-size", "128m"]);
    assert!(big.contains("size=131072k"), "{big}");
    env.ok(&[
        "create",
        "--name",
        "grp",
        "--group-add",
        "root",
        "--shm-size",
        "1g",
        "bb:1",
        "true",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "grp"])).unwrap();
    assert_eq!(
        doc[0]["HostConfig"]["GroupAdd"],
        serde_json::json!(["root"])
    );
    assert_eq!(doc[0]["HostConfig"]["ShmSize"], 1_073_741_824_i64);
    for (flags, want) in [
        (
            &["--group-add", "ghosts"][..],
            "unable to find group ghosts: no matching entries in group file",
        ),
        (&["--shm-size", "-1"][..], "SHM size can not be less than 0"),
        (
            &["--shm-size", "big"][..],
            "invalid argument \"big\" for \"--shm-size\" flag: invalid size: 'big'",
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "true"]);
        let out = env.berth(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    assert!(env.container_ids().len() == 1, "{:?}", env.container_ids());
}

/// `--init` (issue 12, "Run flags"): PID 1 is Berth's init, not the command; it forwards
/// `stop`'s SIGTERM to a command that would ignore it as PID 1, reaps orphans, and passes the
/// command's exit status and Docker's 126/127 through.
#[test]
fn init_forwards_signals_and_reaps_orphans() {
    let env = Env::new();
    let (code, out, err) = env.sh(&["--init"], "echo $$; exit 3");
    assert_eq!(code, 3, "{err}");
    assert_ne!(out.trim(), "1", "the command is not PID 1 under --init");
    let (_, out, _) = env.sh(&[], "echo $$");
    assert_eq!(out.trim(), "1");
    // PID 1 holds nothing of the runtime's (CVE-2024-21626), only stdio; its binary (Berth's,
    // a read-only mount) cannot be written through `/proc/1/exe` (CVE-2019-5736).
    let (code, out, err) = env.sh(
        &["--init"],
        "echo $(ls /proc/1/fd); (echo x >> /proc/1/exe) 2>/dev/null && echo exe-rw || echo exe-ro",
    );
    assert_eq!((code, out.as_str()), (0, "0 1 2\nexe-ro\n"), "{err}");
    // An orphan (the background sleep of a shell that is gone) is reaped by PID 1.
    let (code, out, err) = env.sh(
        &["--init"],
        "sh -c 'sleep 0.2 & exec true'; sleep 1; \
         grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l",
    );
    assert_eq!((code, out.trim()), (0, "0"), "{err}");
    // A terminal (the command takes its foreground) and piped stdin work under the init.
    let out = env.berth(&[
        "run",
        "--rm",
        "-t",
        "--init",
        "bb:1",
        "sh",
        "-c",
        "tty; exit 4",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    let mut cat = env.cmd(&["run", "--rm", "-i", "--init", "bb:1", "cat"]);
    let mut child = cat
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through the init\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "through the init\n")
    );
    let out = env.berth(&["run", "--rm", "--init", "bb:1", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    // `sleep` as PID 1 ignores SIGTERM; under the init it gets it and dies at once.
    env.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "fw",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "fw"])).unwrap();
    assert_eq!(doc[0]["HostConfig"]["Init"], true);
    let started = std::time::Instant::now();
    env.ok(&["stop", "fw"]);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let code = env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "fw"]);
    assert_eq!(code.trim(), "143");
}

/// The Docker Engine beside us, given the same image and the same new flags (`--read-only`,
/// `--tmpfs`, `--shm-size`, `--group-add`, `--sysctl`), shows the container the same mounts,
/// groups and kernel parameters.
#[test]
fn new_run_flags_match_the_docker_engine() {
    require("docker", "the machine's Docker Engine");
    let env = Env::new();
    let tag = format!("berth-run-flags-{}:1", berth_tests::nonce());
    struct Rmi(String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
        }
    }
    let _rmi = Rmi(tag.clone());
    env.ok(&["tag", "bb:1", &tag]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bb.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), &tag]);
    run(Command::new("docker").args(["load", "-i"]).arg(&archive));
    let flags = [
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/run:size=1m,mode=1770,exec",
        "--tmpfs",
        "/cache",
        "--shm-size",
        "128m",
        "--group-add",
        "4242",
        "--sysctl",
        "kernel.shmmax=123456",
        "--sysctl",
        "net.ipv4.ip_forward=1",
    ];
    let script = "grep -E ' /(run|cache|dev/shm) ' /proc/mounts | cut -d' ' -f2-4 | sort; \
                  touch /x 2>/dev/null && echo root-rw || echo root-ro; \
                  stat -c %a /run /cache; grep ^Groups: /proc/self/status; \
                  cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward";
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&[&tag, "sh", "-c", script]);
    let docker = run(Command::new("docker").args(&args));
    let berth = env.ok(&args);
    assert!(
        berth.contains("root-ro") && berth.contains("123456"),
        "{berth}"
    );
    assert_eq!(berth, docker, "berth:\n{berth}\ndocker:\n{docker}");
}

/// `--uts host` and `--ipc host` keep the host's namespaces (and its hostname and `/dev/shm`);
/// `--ipc none` has no `/dev/shm`; Docker's refusals.
#[test]
fn uts_and_ipc_modes_share_the_hosts_namespaces_or_refuse() {
    let env = Env::new();
    let host_ns = |t: &str| {
        std::fs::read_link(format!("/proc/self/ns/{t}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    // A file only the host's /dev/shm has, removed whatever happens.
    struct Removed(PathBuf);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let marker = format!("berth-ipc-test-{}", std::process::id());
    let file = Removed(Path::new("/dev/shm").join(&marker));
    std::fs::write(&file.0, "shared\n").unwrap();
    let script = format!(
        "readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; hostname; cat /dev/shm/{marker} 2>/dev/null || echo absent; grep -c ' /dev/shm ' /proc/self/mounts || true"
    );
    let lines = |flags: &[&str]| {
        let (code, out, err) = env.sh(flags, &script);
        assert_eq!(code, 0, "{flags:?}: {err}");
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let private = lines(&[]);
    assert_ne!(private[0], host_ns("uts"), "{private:?}");
    assert_ne!(private[1], host_ns("ipc"), "{private:?}");
    assert_ne!(private[2], host_name);
    assert_eq!(private[3], "absent", "{private:?}");
    assert_eq!(private[4], "1", "a /dev/shm of its own: {private:?}");
    let host = lines(&["--uts", "host", "--ipc", "host"]);
    assert_eq!(host[0], host_ns("uts"), "{host:?}");
    assert_eq!(host[1], host_ns("ipc"), "{host:?}");
    assert_eq!(host[2], host_name);
    assert_eq!(host[3], "shared", "the host's /dev/shm: {host:?}");
    let none = lines(&["--ipc", "none"]);
    assert_ne!(none[1], host_ns("ipc"), "{none:?}");
    assert_eq!(none[4], "0", "no /dev/shm mount: {none:?}");
    drop(file);
    // Recorded as Docker records them; exec stays in the shared namespace.
    let id = env.detach(&["--uts", "host", "--ipc", "host"], "sleep 30");
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.UTSMode}} {{.HostConfig.IpcMode}}",
            &id
        ])
        .trim(),
        "host host"
    );
    assert_eq!(env.ok(&["exec", &id, "hostname"]).trim(), host_name);
    env.ok(&["rm", "-f", &id]);
    // Docker's refusals; a sysctl of the host's IPC namespace would change the host.
    for (flags, want) in [
        (
            &["-h", "x", "--uts", "host"][..],
            "conflicting options: hostname and the UTS mode",
        ),
        (
            &["--ipc", "host", "--sysctl", "kernel.shmmax=1"][..],
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace",
        ),
        (&["--uts", "private"][..], "--uts: invalid UTS mode"),
        (&["--ipc", "shared"][..], "--ipc: invalid IPC mode"),
    ] {
        let (code, _, err) = env.sh(flags, "true");
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}
