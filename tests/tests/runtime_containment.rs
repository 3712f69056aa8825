//! Containment of a container's process, end to end as root (issue 8, items 2, 3, 5 and the
//! foreground/kill parts of 8): it gets no terminal of the caller's (TIOCSTI cannot type into
//! the caller's shell), runs in a session and process group of its own (`kill(0)`/`kill(-1)`
//! reach only the container), the data root is closed to other users, a foreground container
//! can be stopped, a `PTRACE_TRACEME` in init does not wedge it, and a `berth` killed mid-`run`
//! leaves nothing behind after the next command.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{bin, require, ContainerEnv};

/// Runs `script` in a shell under a fresh pty (`script(1)`), as a user at a terminal would;
/// stdout of the session.
fn under_pty(script: &str) -> String {
    require("script", "install it with `apt-get install bsdutils`");
    let out = Command::new("setsid")
        .args(["-w", "script", "-qec", script, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn berth_cmd(env: &ContainerEnv) -> String {
    format!(
        "{} --data-root {}",
        bin("berth").display(),
        env.data_root().display()
    )
}

#[test]
fn no_terminal_of_the_callers_reaches_the_container() {
    let env = ContainerEnv::new(&[]);
    let b = berth_cmd(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    // After each attempt the caller's shell reads a line: anything pushed into its terminal's
    // input queue would be read here.
    for (what, cmd) in [
        ("run", format!("{b} run --rm --network none bb:1")),
        ("run -i", format!("{b} run --rm -i --network none bb:1")),
        ("exec", format!("{b} exec box")),
        ("exec -i", format!("{b} exec -i box")),
    ] {
        let out = under_pty(&format!(
            "{cmd} berth-check tiocsti 'echo INJECTED\n' </dev/null; {cmd} berth-check report </dev/null; \
             read -t 1 line; echo \"got=[$line]\""
        ));
        for fd in 0..3 {
            assert!(
                out.contains(&format!("tiocsti{fd}=ENOTTY")),
                "{what}: fd {fd} is a terminal:\n{out}"
            );
            assert!(out.contains(&format!("tty{fd}=none")), "{what}:\n{out}");
        }
        assert!(
            out.contains("ctty=ENXIO"),
            "{what}: has a controlling terminal:\n{out}"
        );
        assert!(
            out.contains("got=[]"),
            "{what}: the caller's input was typed into:\n{out}"
        );
    }
    // Its own session and process group: it leads both (`sid == pgid == pid`).
    let (code, out, err) = env.sh(&["--network", "none"], "berth-check report");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pid=1\nsid=1\npgid=1\n"), "{out}");
    let out = env.ok(&["exec", "box", "berth-check", "report"]);
    let pid: String = out.lines().next().unwrap().replace("pid=", "");
    assert!(out.contains(&format!("sid={pid}\npgid={pid}\n")), "{out}");
    // -t still gives a terminal, the container's own.
    let out = under_pty(&format!(
        "{b} run --rm -t --network none bb:1 berth-check report"
    ));
    assert!(out.contains("tty0=/dev/pts/0"), "{out}");
    assert!(out.contains("ctty=yes"), "{out}");
}

#[test]
fn signals_from_the_container_reach_only_the_container() {
    let env = ContainerEnv::new(&[]);
    let b = berth_cmd(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    for (what, cmd) in [
        (
            "run kill 0",
            format!("{b} run --rm --network none bb:1 berth-check kill 0 15"),
        ),
        (
            "run kill -1",
            format!("{b} run --rm --network none bb:1 berth-check kill -1 15"),
        ),
        (
            "run -i kill 0",
            format!("{b} run --rm -i --network none bb:1 berth-check kill 0 15 </dev/null"),
        ),
        ("exec kill 0", format!("{b} exec box berth-check kill 0 15")),
        (
            "exec -i kill 0",
            format!("{b} exec -i box berth-check kill 0 15 </dev/null"),
        ),
        (
            "exec kill -1",
            format!("{b} exec box berth-check kill -1 15"),
        ),
    ] {
        // The caller's process group: the shell, a sibling `sleep`, and berth.
        let script = format!(
            "sleep 30 & sib=$!; {cmd}; echo rc=$?; kill -0 $sib && echo sibling-alive; kill $sib"
        );
        let out = Command::new("setsid")
            .args(["-w", "sh", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("sibling-alive"),
            "{what}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `kill(-1)` from a lone PID 1 finds nobody to signal (ESRCH): it cannot see outside.
        // An exec'd process leads its own group, so `kill(0)` ends it (143).
        assert!(
            text.contains("kill=ok")
                || (what.contains("-1") && text.contains("kill=ESRCH"))
                || (what.starts_with("exec") && text.contains("rc=143")),
            "{what}: {text}"
        );
    }
    // The container's signals did not reach its monitor.
    let (_, id) = env.find("box");
    let state = env.state(&id);
    let monitor = state["Monitor"]["pid"].as_i64().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{monitor}")).exists(),
        "the monitor died"
    );
    // A detached container that signals its own group leaves its monitor running.
    let id = env.detach(&["--network", "none"], "berth-check kill 0 15; sleep 300");
    std::thread::sleep(Duration::from_millis(300));
    let state = env.state(&id);
    let monitor = state["Monitor"]["pid"].as_i64().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{monitor}")).exists(),
        "the monitor died"
    );
    assert!(env.ok(&["ps", "-q", "--no-trunc"]).contains(&id));
}

#[test]
fn the_data_root_is_closed_to_other_users() {
    require("setpriv", "install it with `apt-get install util-linux`");
    let env = ContainerEnv::new(&[]);
    // Let others reach the data root's parent, as /var/lib is.
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = env.data_root();
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data root mode {mode:o}");
    // A container leaves a setuid-root copy of busybox in its upper directory, and a secret
    // in its config.
    env.ok(&[
        "run",
        "--name",
        "suid",
        "--network",
        "none",
        "-e",
        "TOKEN=hunter2",
        "bb:1",
        "sh",
        "-c",
        "cp /bin/busybox /suid && chmod 4755 /suid",
    ]);
    let (dir, _) = env.find("suid");
    let suid = dir.join("upper/suid");
    assert!(suid.exists());
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = nobody(&[suid.to_str().unwrap(), "id", "-u"]);
    assert!(
        !out.status.success(),
        "nobody ran the setuid file: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for p in [root.clone(), dir.join("config.json"), root.join("layers")] {
        let out = nobody(&["cat", p.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "nobody reached {}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An existing, looser data root is tightened, with a notice.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.berth(&["ps", "-a"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was open to other users (mode 0755); it is now 0700"),
        "{stderr}"
    );
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Waits until `ps` lists the container as running and its init PID is recorded.
fn wait_running(env: &ContainerEnv, name: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok((_, id)) = std::panic::catch_unwind(|| env.find(name)) {
            if env.state(&id)["Init"]["pid"].as_i64().is_some() {
                return id;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_foreground_container_can_be_stopped_killed_and_inspected() {
    let env = ContainerEnv::new(&[]);
    let mut fg = env
        .cmd(&[
            "run",
            "--name",
            "fg",
            "--network",
            "none",
            "bb:1",
            "sh",
            "-c",
            "trap 'exit 7' TERM; : > /etc/trapped; while true; do sleep 0.1; done",
        ])
        .spawn()
        .unwrap();
    let id = wait_running(&env, "fg");
    env.wait_file(&id, "/etc/trapped");
    let inspect = env.ok(&["inspect", "-f", "{{.State.Pid}} {{.State.Running}}", "fg"]);
    assert!(!inspect.starts_with("0 "), "{inspect}");
    assert!(inspect.trim().ends_with("true"), "{inspect}");
    let top = env.ok(&["top", "fg"]);
    assert!(top.contains("sleep") || top.contains("sh"), "{top}");
    env.ok(&["stop", "-t", "10", "fg"]);
    let status = fg.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(env.state(&id)["ExitCode"], 7);
    // `rm -f` of a running foreground container.
    let mut fg = env
        .cmd(&[
            "run",
            "--name",
            "fg2",
            "--network",
            "none",
            "bb:1",
            "sleep",
            "300",
        ])
        .spawn()
        .unwrap();
    wait_running(&env, "fg2");
    env.ok(&["rm", "-f", "fg2"]);
    assert_eq!(fg.wait().unwrap().code(), Some(137));
    // PTRACE_TRACEME in init: the signal from `stop` still arrives (berth detaches).
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "bb:1",
        "berth-check",
        "traceme",
    ]);
    let id = id.trim();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    env.ok(&["stop", "-t", "30", id]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "stop waited for its timeout"
    );
    assert_eq!(env.state(id)["ExitCode"], 42, "{}", env.ok(&["logs", id]));
}

fn mounts_under(env: &ContainerEnv) -> Vec<String> {
    let prefix = env.data_root().display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_berth_leaves_nothing_after_the_next_command() {
    let env = ContainerEnv::new(&[]);
    for (name, rm) in [("gone", true), ("kept", false)] {
        let mut args = vec!["run", "--name", name, "--network", "none"];
        if rm {
            args.push("--rm");
        }
        args.extend_from_slice(&["bb:1", "sleep", "300"]);
        let mut fg = env.cmd(&args).spawn().unwrap();
        let id = wait_running(&env, name);
        fg.kill().unwrap();
        fg.wait().unwrap();
        // The next command that looks at containers cleans up.
        let ps = env.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}"]);
        if rm {
            assert!(!ps.contains(&id), "{ps}");
            assert!(!env.data_root().join("containers").join(&id).exists());
        } else {
            assert!(ps.contains(&format!("{id} Exited (137)")), "{ps}");
        }
        assert!(mounts_under(&env).is_empty(), "{:?}", mounts_under(&env));
        for d in berth_tests::container_cgroup_dirs(&id) {
            assert!(!d.exists(), "{} left", d.display());
        }
    }
    env.ok(&["rm", "kept"]);
}

/// The checker's report without what legitimately differs between runtimes (the root file
/// system's type: overlay under berth, the bundle's directory under runc), sorted (mount
/// order differs). With `points_only`, mounts are compared by mount point alone: crun masks a
/// file with the host's `/dev/null` (devtmpfs) where runc and berth bind the container's, and
/// drops `nosuid,nodev,noexec` when it remounts a path read-only.
fn normalized(report: &str, points_only: bool) -> Vec<String> {
    let mut lines: Vec<String> = report
        .lines()
        .filter(|l| !l.starts_with("mount=/ "))
        .map(|l| match (points_only, l.strip_prefix("mount=")) {
            (true, Some(rest)) => format!("mount={}", rest.split(' ').next().unwrap_or("")),
            _ => l.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_checker_reports_the_same_under_berth_runc_and_crun() {
    require(
        "runc",
        "install it with `apt-get install runc` (tests/run does)",
    );
    require(
        "crun",
        "install it with `apt-get install crun` (tests/run does)",
    );
    let env = ContainerEnv::new(&[]);
    let berth = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "berth-check",
        "report",
    ]);
    // The same spec: berth's own config.json for this container, with the unpacked image as
    // the bundle's root and a cgroup of the test's own.
    let id = env.ok(&[
        "create",
        "--network",
        "none",
        "bb:1",
        "berth-check",
        "report",
    ]);
    let (dir, _) = env.find(id.trim());
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    spec["root"] = serde_json::json!({ "path": env.tmp.path().join("rfs"), "readonly": false });
    let bundle = env.tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    for (runtime, script) in [
        ("runc", "exec runc run \"$0\""),
        // crun refuses hybrid cgroups; hide the unified mount in a private mount namespace.
        (
            "crun",
            "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run \"$0\"",
        ),
    ] {
        let name = format!("berth-cmp-{runtime}-{}", std::process::id());
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/berth-test/{name}"));
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, &name])
            .current_dir(&bundle)
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let points_only = runtime == "crun";
        assert_eq!(
            normalized(&berth, points_only),
            normalized(&theirs, points_only),
            "berth and {runtime} differ for the same spec"
        );
        for d in [
            "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "unified",
        ] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{d}/berth-test/{name}"));
        }
    }
}
