//! Container logs end to end, as root: `--log-opt max-size`/`max-file` rotate the json-file log
//! and `logs` reads across the files (also while following), a line without end is logged in
//! pieces `logs` joins again, `--log-driver none` keeps nothing, `daemon.json`'s `log-opts` are
//! the defaults, and bad drivers and options are refused before anything is created.

use std::path::PathBuf;
use std::process::Stdio;

use berth_tests::ContainerEnv;

fn log_file(env: &ContainerEnv, id: &str, suffix: &str) -> PathBuf {
    env.data_root()
        .join("containers")
        .join(id)
        .join(format!("{id}-json.log{suffix}"))
}

/// Waits for the container to exit.
fn wait(env: &ContainerEnv, id: &str) {
    let out = env.ok(&["wait", id]);
    assert_eq!(out.trim(), "0", "{out}");
}

/// `line N` for N in `from..to`, one per line.
fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

const COUNT: &str = "i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done";

#[test]
fn max_size_and_max_file_rotate_and_logs_reads_across_the_files() {
    let env = ContainerEnv::new(&[]);
    let id = env.detach(
        &["--log-opt", "max-size=2k", "--log-opt", "max-file=3"],
        COUNT,
    );
    wait(&env, &id);
    // Three files at most, none past 2 KiB.
    for suffix in ["", ".1", ".2"] {
        let f = log_file(&env, &id, suffix);
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len > 0 && len <= 2048, "{}: {len}", f.display());
    }
    assert!(!log_file(&env, &id, ".3").exists());
    // `logs` gives the kept lines, oldest file first, in order and up to the last one.
    let out = env.ok(&["logs", &id]);
    let first: usize = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("line "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(first > 0, "the oldest lines were rotated away: {out}");
    assert_eq!(out, lines(first, 300));
    assert_eq!(env.ok(&["logs", "--tail", "3", &id]), lines(297, 300));
    let config = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}",
        &id,
    ]);
    assert_eq!(config.trim(), "json-file 2k");
    env.ok(&["rm", &id]);
}

#[test]
fn logs_follow_goes_on_across_a_rotation() {
    let env = ContainerEnv::new(&[]);
    // ~100 lines over ~2 s, rotating every ~20 lines; five files keep them all.
    let id = env.detach(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=8"],
        "i=0; while [ $i -lt 100 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.02; done",
    );
    let follower = env
        .cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), lines(0, 100));
    assert!(log_file(&env, &id, ".1").exists(), "the log never rotated");
    env.ok(&["rm", &id]);
}

#[test]
fn a_line_without_end_is_logged_in_pieces_that_logs_joins() {
    let env = ContainerEnv::new(&[]);
    let id = env.detach(&[], "head -c 100000 /dev/zero | tr '\\0' x; echo");
    wait(&env, &id);
    let out = env.ok(&["logs", &id]);
    assert_eq!(out, "x".repeat(100_000) + "\n");
    // Each entry holds 16 KiB at most.
    let text = std::fs::read_to_string(log_file(&env, &id, "")).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 7, "100001 bytes in 16 KiB pieces");
    assert!(entries
        .iter()
        .all(|e| e["log"].as_str().unwrap().len() <= 16 * 1024));
    env.ok(&["rm", &id]);
}

#[test]
fn log_driver_none_keeps_nothing_and_logs_says_so() {
    let env = ContainerEnv::new(&[]);
    let id = env.detach(&["--log-driver", "none"], "echo hidden");
    wait(&env, &id);
    assert!(!log_file(&env, &id, "").exists());
    let out = env.berth(&["logs", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("configured logging driver does not support reading"),
        "{out:?}"
    );
    env.ok(&["rm", &id]);
}

#[test]
fn daemon_log_opts_are_the_default_and_bad_options_are_refused() {
    let env = ContainerEnv::new(&[]);
    let daemon = env.tmp.path().join("daemon.json");
    std::fs::write(
        &daemon,
        r#"{"log-driver": "json-file", "log-opts": {"max-size": "1k", "max-file": "2"}}"#,
    )
    .unwrap();
    let cfg = daemon.to_str().unwrap();
    let out = env.ok(&["--config-file", cfg, "run", "-d", "bb:1", "sh", "-c", COUNT]);
    let id = out.trim().to_owned();
    wait(&env, &id);
    assert!(log_file(&env, &id, ".1").exists());
    assert!(!log_file(&env, &id, ".2").exists());
    assert!(std::fs::metadata(log_file(&env, &id, "")).unwrap().len() <= 1024);
    env.ok(&["rm", &id]);

    for (flags, want) in [
        (&["--log-driver", "syslog"][..], "not `syslog`"),
        (
            &["--log-opt", "max-size=0"][..],
            "max-size must be a positive number",
        ),
        (
            &["--log-opt", "max-file=0"][..],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "tag=x"][..],
            "unknown log opt 'tag' for json-file log driver",
        ),
        (&["--log-opt", "max-size"][..], "use KEY=VALUE"),
    ] {
        let (code, _, err) = env.sh(flags, "true");
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    assert!(env.container_ids().is_empty());
}

#[test]
fn a_foreground_run_is_logged_too_but_not_with_rm() {
    let env = ContainerEnv::new(&[]);
    let out = env.berth(&[
        "run",
        "--name",
        "fg",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo out; echo err >&2; printf tail",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\ntail");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Each stream back to its own, the unfinished last line included.
    let logs = env.berth(&["logs", "fg"]);
    assert!(logs.status.success(), "{logs:?}");
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\ntail");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");
    // With --log-driver none nothing is kept; with --rm the container goes with its log.
    env.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "bb:1",
        "echo",
        "x",
    ]);
    let (_, id) = env.find("quiet");
    assert!(!log_file(&env, &id, "").exists());
    let (code, out, _) = env.sh(&["--network", "none"], "echo gone");
    assert_eq!((code, out.as_str()), (0, "gone\n"));
    env.ok(&["rm", "fg", "quiet"]);
}
