//! Detached containers end to end, as root: `run -d` and its monitor, `ps`, `logs`, `stop`,
//! `kill`, `rm`, `wait`, `--rm`, `--restart`, and a killed monitor reported as exited.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{container_cgroup_dirs, run, ContainerEnv};

/// The shared container test environment (cleans up after itself), plus this file's helpers.
struct Env(ContainerEnv);

impl std::ops::Deref for Env {
    type Target = ContainerEnv;
    fn deref(&self) -> &ContainerEnv {
        &self.0
    }
}

impl Env {
    /// A data root with the busybox image `bb:1` imported.
    fn new() -> Self {
        Self(ContainerEnv::new(&[]))
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.data_root().join("containers").join(id)
    }

    /// `ps -a` line of the container, by its short ID.
    fn ps_line(&self, id: &str) -> String {
        self.ok(&["ps", "-a"])
            .lines()
            .find(|l| l.starts_with(&id[..12]))
            .unwrap_or_default()
            .to_owned()
    }
}

fn mounted(dir: &Path) -> bool {
    let target = dir.join("rootfs").display().to_string();
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&target))
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_detached_ps_logs_and_stop_of_a_stubborn_shell() {
    let env = Env::new();
    let id = env.detach(
        &["--name", "web"],
        "echo hi; echo err >&2; trap '' TERM; sleep 30",
    );
    let ps = env.ok(&["ps"]);
    let header = ps.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let line = env.ps_line(&id);
    assert!(line.contains(" Up "), "{line}");
    assert!(line.ends_with("web"), "{line}");
    assert!(line.contains("bb:1"), "{line}");
    assert!(line.contains("\"sh -c echo hi; echo…\""), "{line}");
    assert_eq!(env.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(env.ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(
        env.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "web running\n"
    );

    eventually("the logs", || {
        let out = env.berth(&["logs", &id[..8]]);
        (text(&out.stdout), text(&out.stderr)) == ("hi\n".into(), "err\n".into())
    });
    // The two streams are copied concurrently, so either line may be the last one.
    let out = env.berth(&["logs", "-t", "--tail", "1", "web"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let (line, want) = if stdout.is_empty() {
        (stderr, "err\n")
    } else {
        assert_eq!(stderr, "");
        (stdout, "hi\n")
    };
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, want);
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    let log = std::fs::read_to_string(env.dir(&id).join(format!("{id}-json.log"))).unwrap();
    // Docker's json-file format; the two streams' lines may be in either order.
    let mut entries: Vec<(String, String)> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
            (
                v["stream"].as_str().unwrap().to_owned(),
                v["log"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            ("stderr".to_owned(), "err\n".to_owned()),
            ("stdout".to_owned(), "hi\n".to_owned())
        ]
    );

    // A running container is not removed without -f.
    let out = env.berth(&["rm", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "cannot remove container \"/web\": container is running: stop the container \
             before removing or force remove"
        ),
        "{}",
        text(&out.stderr)
    );

    // SIGTERM is ignored: SIGKILL after the timeout.
    let start = Instant::now();
    assert_eq!(env.ok(&["stop", "-t", "1", "web"]), "web\n");
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(env.ok(&["wait", "web"]), "137\n");
    let line = env.ps_line(&id);
    assert!(line.contains("Exited (137) "), "{line}");
    assert_eq!(env.ok(&["ps", "-q"]), "");
    assert!(!mounted(&env.dir(&id)), "the monitor unmounts the rootfs");
    assert_eq!(env.ok(&["rm", "web"]), "web\n");
    assert!(!env.dir(&id).exists());
}

#[test]
fn stop_honoured_kill_wait_and_generated_names() {
    let env = Env::new();
    let id = env.detach(
        &[],
        "trap 'exit 0' TERM; : > /etc/trapped; while true; do sleep 0.1; done",
    );
    env.wait_file(&id, "/etc/trapped");
    let name = env.state(&id)["Name"].as_str().unwrap().to_owned();
    let (adjective, surname) = name.split_once('_').unwrap();
    assert!(!adjective.is_empty() && !surname.is_empty(), "{name}");
    let start = Instant::now();
    assert_eq!(env.ok(&["stop", &id]), format!("{id}\n"));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(env.ok(&["wait", &name]), "0\n");

    let id = env.detach(
        &[],
        "trap 'exit 7' TERM; : > /etc/trapped; while true; do sleep 0.1; done",
    );
    env.wait_file(&id, "/etc/trapped");
    assert_eq!(
        env.ok(&["kill", "-s", "TERM", &id[..12]]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(env.ok(&["wait", &id]), "7\n");
    let out = env.berth(&["kill", &id]);
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    let line = env.ps_line(&id);
    assert!(line.contains("Exited (7) "), "{line}");

    // `-l` and `-n` include exited containers; the newest first.
    assert_eq!(env.ok(&["ps", "-lq"]).trim(), &id[..12]);
    assert_eq!(env.ok(&["ps", "-n", "2", "-q"]).lines().count(), 2);
    let out = env.berth(&["logs", "nope"]);
    assert!(text(&out.stderr).contains("No such container: nope"));
}

#[test]
fn rm_force_removes_dir_mount_and_cgroups() {
    let env = Env::new();
    let id = env.detach(&["--pids-limit", "50"], "sleep 30");
    let dir = env.dir(&id);
    assert!(mounted(&dir));
    let cgroups = container_cgroup_dirs(&id);
    assert!(
        !cgroups.is_empty() && cgroups.iter().all(|d| d.is_dir()),
        "{cgroups:?}"
    );
    assert_eq!(env.ok(&["rm", "-f", &id]), format!("{id}\n"));
    assert!(!dir.exists());
    assert!(!mounted(&dir));
    assert!(cgroups.iter().all(|d| !d.exists()), "{cgroups:?}");
}

#[test]
fn run_rm_disappears_after_exit_and_logs_follow_returns() {
    let env = Env::new();
    let id = env.detach(&["--rm"], "sleep 0.3");
    eventually("the --rm container to go", || !env.dir(&id).exists());
    assert_eq!(env.ok(&["ps", "-aq"]), "");

    let id = env.detach(&[], "for i in 1 2 3; do echo $i; sleep 0.2; done; exit 3");
    let start = Instant::now();
    let out = env.berth(&["logs", "-f", &id]);
    assert_eq!(text(&out.stdout), "1\n2\n3\n");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(env.ok(&["wait", &id]), "3\n");
}

#[test]
fn killed_monitor_reports_exited() {
    let env = Env::new();
    let id = env.detach(&[], "sleep 30");
    let monitor = env.state(&id)["Monitor"]["pid"].as_i64().unwrap();
    assert!(env.ps_line(&id).contains(" Up "));
    run(Command::new("kill").args(["-9", &monitor.to_string()]));
    eventually("ps -a to report the container exited", || {
        env.ps_line(&id).contains("Exited (")
    });
    assert_eq!(env.ok(&["ps", "-q"]), "");
    // rm cleans up what the monitor left.
    assert_eq!(env.ok(&["rm", &id]), format!("{id}\n"));
    assert!(!env.dir(&id).exists());
    assert!(container_cgroup_dirs(&id).iter().all(|d| !d.exists()));
}

#[test]
fn restart_on_failure_retries_then_stops() {
    let env = Env::new();
    let id = env.detach(&["--restart=on-failure:3"], "echo run; exit 1");
    assert_eq!(env.ok(&["wait", &id]), "1\n");
    let logs = env.ok(&["logs", &id]);
    assert_eq!(logs, "run\n".repeat(4), "1 run + 3 restarts");
    let state = env.state(&id);
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 1);
    assert_eq!(state["RestartCount"], 3);
    assert_eq!(state["RestartPolicy"]["Name"], "on-failure");
    assert!(env.ps_line(&id).contains("Exited (1)"));

    // A clean exit is not a failure.
    let id = env.detach(&["--restart", "on-failure"], "echo run");
    assert_eq!(env.ok(&["wait", &id]), "0\n");
    assert_eq!(env.ok(&["logs", &id]), "run\n");
    assert_eq!(env.state(&id)["RestartCount"], 0);
}

#[test]
fn restart_always_until_stopped() {
    let env = Env::new();
    let id = env.detach(&["--restart", "always"], "echo run; sleep 0.1");
    eventually("three runs", || env.ok(&["logs", &id]).lines().count() >= 3);
    assert!(env.state(&id)["RestartCount"].as_u64().unwrap() >= 2);
    env.ok(&["stop", "-t", "1", &id]);
    let state = env.state(&id);
    assert_eq!(state["Status"], "exited");
    let runs = env.ok(&["logs", &id]).lines().count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.ok(&["logs", &id]).lines().count(), runs);
    assert_eq!(env.state(&id)["Status"], "exited");
    assert!(env.ps_line(&id).contains("Exited ("));
    assert!(!mounted(&env.dir(&id)));
}

#[test]
fn restart_flag_is_checked_like_dockers() {
    let env = Env::new();
    for (flags, msg) in [
        (
            &["--restart", "always", "--rm"][..],
            "Conflicting options: --restart and --rm",
        ),
        (
            &["--restart", "sometimes"][..],
            "invalid restart policy: unknown policy 'sometimes'",
        ),
        (
            &["--restart", "always:2"][..],
            "maximum retry count can only be used with 'on-failure'",
        ),
        (
            &["--restart", "on-failure:x"][..],
            "maximum retry count must be an integer",
        ),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "true"]);
        let out = env.berth(&args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert!(
            text(&out.stderr).contains(msg),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}
