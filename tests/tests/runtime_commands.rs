//! Container commands end to end, as root: `inspect` (containers), `rename` (and the names
//! lock under concurrent `run --name`), `top`, `stats`, `container prune`, `ps --filter`,
//! `logs --since/--until`, `run --env-file`, `diff`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::{bin, require, ContainerEnv};
use serde_json::Value;

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
        require("ps", "install it with `apt-get install procps`");
        Self(ContainerEnv::new(&[]))
    }

    /// Runs berth, asserting failure; stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should have failed: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// `inspect CONTAINER` as JSON (the one document).
    fn inspect(&self, c: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["container", "inspect", c])).unwrap();
        v[0].clone()
    }

    /// Waits for the container to have exited.
    fn wait(&self, c: &str) {
        self.ok(&["wait", c]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn inspect_shows_state_config_limits_mounts_and_the_oci_spec() {
    let env = Env::new();
    let vol_dir = env.tmp.path().join("shared");
    std::fs::create_dir_all(&vol_dir).unwrap();
    let bind = format!("{}:/shared:ro", vol_dir.display());
    let id = env.detach(
        &[
            "--name",
            "web",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "-e",
            "COLOR=blue",
            "-v",
            "data1:/data",
            "-v",
            &bind,
            "--restart",
            "on-failure:3",
        ],
        "head -c 5000 /dev/zero > /blob; sleep 300",
    );
    let fmt = |f: &str| env.ok(&["inspect", "--format", f, "web"]).trim().to_owned();
    assert_eq!(fmt("{{.State.Status}}"), "running");
    assert_eq!(fmt("{{.State.Running}}"), "true");
    assert_eq!(fmt("{{.Name}}"), "/web");
    assert_eq!(fmt("{{.Id}}"), id);
    assert_eq!(fmt("{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(fmt("{{.HostConfig.NanoCpus}}"), "500000000");
    assert_eq!(fmt("{{.HostConfig.PidsLimit}}"), "50");
    assert_eq!(fmt("{{.HostConfig.RestartPolicy.Name}}"), "on-failure");
    assert_eq!(fmt("{{.HostConfig.RestartPolicy.MaximumRetryCount}}"), "3");
    assert_eq!(fmt("{{.HostConfig.NetworkMode}}"), "bridge");
    assert_eq!(
        fmt("{{json .Config.Cmd}}"),
        r#"["sh","-c","head -c 5000 /dev/zero > /blob; sleep 300"]"#
    );
    assert_eq!(fmt("{{.Config.Image}}"), "bb:1");
    assert_eq!(fmt("{{.Path}}"), "sh");
    assert_eq!(
        fmt("{{.OCISpec.linux.cgroupsPath}}"),
        format!("/berth/{id}")
    );
    assert_eq!(fmt("{{.OCISpec.linux.resources.memory.limit}}"), "67108864");

    let doc = env.inspect(&id[..12]);
    let pid = doc["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0, "{doc}");
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "{doc}");
    assert_eq!(doc["State"]["ExitCode"], 0);
    assert!(doc["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&"COLOR=blue".into()));
    assert_eq!(doc["Config"]["Hostname"], &id[..12]);
    let mounts = doc["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{doc}");
    let vol = mounts.iter().find(|m| m["Type"] == "volume").unwrap();
    assert_eq!(
        (&vol["Name"], &vol["Destination"], &vol["RW"]),
        (&"data1".into(), &"/data".into(), &true.into())
    );
    let b = mounts.iter().find(|m| m["Type"] == "bind").unwrap();
    assert_eq!(
        (&b["Source"], &b["Destination"], &b["RW"]),
        (
            &vol_dir.display().to_string().into(),
            &"/shared".into(),
            &false.into()
        )
    );
    // The whole spec, as the container runs it.
    let spec: Value = serde_json::from_slice(
        &std::fs::read(
            env.data_root()
                .join("containers")
                .join(&id)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["OCISpec"], spec);

    // Without --type a container comes before an image; --type picks one kind.
    let both = env.ok(&["inspect", "--format", "{{.Id}}", "web", "bb:1"]);
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines[0], id);
    assert!(lines[1].starts_with("sha256:"), "{both}");
    let err = env.fails(&["inspect", "--type", "container", "bb:1"]);
    assert!(err.contains("No such container: bb:1"), "{err}");
    let err = env.fails(&["inspect", "--type", "image", "web"]);
    assert!(err.contains("No such image: web"), "{err}");
    let err = env.fails(&["inspect", "--type", "bogus", "web"]);
    assert!(
        err.contains(
            "unknown type: \"bogus\": must be one of \"container\", \"image\", \"volume\""
        ),
        "{err}"
    );
    let out = env.berth(&["inspect", "nope", "web"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("No such object: nope"));
    let docs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1);

    // --size: the writable layer, and with the image's files.
    let sizes = || {
        let out = env.ok(&[
            "container",
            "inspect",
            "-s",
            "--format",
            "{{.SizeRw}} {{.SizeRootFs}}",
            "web",
        ]);
        let (rw, root) = out.trim().split_once(' ').unwrap();
        (rw.parse::<u64>().unwrap(), root.parse::<u64>().unwrap())
    };
    eventually("the blob", || sizes().0 >= 5000);
    let (rw, root) = sizes();
    assert!(root > rw + 100_000, "busybox is in the image: {rw} {root}");
    assert!(doc.get("SizeRw").is_none(), "only with --size");

    env.ok(&["kill", "web"]);
    env.wait("web");
    let doc = env.inspect("web");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["Running"], false);
    assert_eq!(doc["State"]["Pid"], 0);
    assert_eq!(doc["State"]["ExitCode"], 137);
    assert_ne!(doc["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
}

#[test]
fn rename_follows_docker_and_concurrent_names_stay_unique() {
    let env = Env::new();
    let id = env.detach(&["--name", "web"], "sleep 300");
    env.ok(&["rename", "web", "web2"]);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]), "web2\n");
    env.ok(&["container", "rename", &id[..12], "web3"]);
    assert_eq!(env.inspect(&id)["Name"], "/web3");
    env.detach(&["--name", "db"], "sleep 300");
    let err = env.fails(&["rename", "web3", "db"]);
    assert!(
        err.contains(
            "Error when allocating new name: Conflict. The container name \"/db\" is already in \
             use by container \""
        ) && err.contains("You have to remove (or rename) that container"),
        "{err}"
    );
    let err = env.fails(&["rename", "web3", "bad name"]);
    assert!(
        err.contains(
            "Error when allocating new name: Invalid container name (/bad name), only \
             [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ),
        "{err}"
    );
    let err = env.fails(&["rename", "web3", "web3"]);
    assert!(
        err.contains("Renaming a container with the same name as its current name"),
        "{err}"
    );
    let err = env.fails(&["rename", "nope", "x1"]);
    assert!(err.contains("No such container: nope"), "{err}");
    let err = env.fails(&["run", "--name", "_x", "bb:1", "true"]);
    assert!(err.contains("Invalid container name (_x)"), "{err}");
    // The old name is free again.
    env.detach(&["--name", "web"], "sleep 300");

    // Six concurrent `run --name same`: exactly one gets the name.
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(bin("berth"))
                .arg("--data-root")
                .arg(env.data_root())
                .args(["run", "-d", "--name", "same", "bb:1", "sleep", "300"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        outs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(text(&o.stderr).contains("Conflict."), "{}", text(&o.stderr));
    }
    let names = env.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.lines().filter(|n| *n == "same").count(), 1, "{names}");
}

#[test]
fn top_lists_the_containers_processes() {
    let env = Env::new();
    let id = env.detach(&["--name", "web"], "sleep 300 & sleep 301; wait");
    eventually("both sleeps", || {
        let out = env.ok(&["top", "web"]);
        out.lines().any(|l| l.ends_with("sleep 300"))
            && out.lines().any(|l| l.ends_with("sleep 301"))
    });
    let out = env.ok(&["top", "web"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    // The shell and its two sleeps, nothing of the host's.
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().any(|r| r.ends_with("sleep 300")), "{out}");
    assert!(rows.iter().any(|r| r.ends_with("sleep 301")), "{out}");
    let pid = env.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().nth(1) == Some(&pid.to_string())),
        "init {pid} missing: {out}"
    );
    // Docker's tabwriter: columns at least 20 wide.
    assert!(
        out.starts_with(&format!("{:<20}{:<20}", "UID", "PID")),
        "{out}"
    );

    let out = env.ok(&["container", "top", "web", "-o", "pid,comm"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(lines.filter(|l| l.ends_with("sleep")).count(), 2, "{out}");

    let err = env.fails(&["top", "web", "-o", "user=PID"]);
    assert!(
        err.contains("specifying \"user=PID\" is not allowed"),
        "{err}"
    );
    env.ok(&["kill", "web"]);
    env.wait("web");
    let err = env.fails(&["top", "web"]);
    assert!(
        err.contains(&format!("Container {id} is not running")),
        "{err}"
    );
}

#[test]
fn stats_reads_the_cgroups() {
    let env = Env::new();
    let busy = env.detach(
        &[
            "--name",
            "busy",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--network",
            "none",
        ],
        "while :; do :; done",
    );
    let idle = env.detach(&["--name", "idle"], "sleep 300");
    env.ok(&["run", "--name", "done", "bb:1", "true"]);
    let out = env.ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "only running ones: {out}");
    let busy_row = rows.iter().find(|r| r.starts_with(&busy[..12])).unwrap();
    assert!(busy_row.contains(" / 64MiB "), "{busy_row}");
    assert!(rows.iter().any(|r| r.starts_with(&idle[..12])), "{out}");

    let json = env.ok(&["stats", "--no-stream", "--format", "json", "busy"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Name"], "busy");
    assert_eq!(v["Container"], "busy");
    assert_eq!(v["ID"], &busy[..12]);
    assert_eq!(v["PIDs"], "1");
    // `--network none`: only `lo`, which Docker does not count.
    assert_eq!(v["NetIO"], "0B / 0B");
    let cpu: f64 = v["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    // A busy loop under `--cpus 0.5`: clearly busy, never more than half a CPU (with slack).
    assert!((1.0..=60.0).contains(&cpu), "{v}");
    let mem = v["MemUsage"].as_str().unwrap();
    assert!(mem.ends_with(" / 64MiB") && !mem.starts_with("0B"), "{mem}");

    let out = env.ok(&[
        "container",
        "stats",
        "-a",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}} {{.MemUsage}} {{.PIDs}}",
    ]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains(&format!("{busy} busy ")), "{out}");
    assert!(out.lines().any(|l| l.ends_with(" done 0B / 0B 0")), "{out}");
    let err = env.fails(&["stats", "--no-stream", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn container_prune_removes_stopped_containers_only() {
    let env = Env::new();
    let running = env.detach(&["--name", "up"], "sleep 300");
    let exited = env.detach(&["--name", "gone"], "echo data > /file; exit 3");
    env.wait("gone");
    let err = env.fails(&["container", "prune"]);
    assert!(
        err.contains("WARNING! This will remove all stopped containers."),
        "{err}"
    );
    // `until=1h`: created less than an hour ago, so kept.
    let out = env.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let err = env.fails(&["container", "prune", "-f", "--filter", "name=x"]);
    assert!(err.contains("Invalid filter 'name'"), "{err}");
    let out = env.ok(&["container", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Containers:\n{exited}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    assert!(!out.contains(&running), "{out}");
    assert!(
        !out.ends_with("space: 0B\n"),
        "the file it wrote counts: {out}"
    );
    assert!(!env.data_root().join("containers").join(&exited).exists());
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "up\n");
}

#[test]
fn ps_filters_follow_docker() {
    let env = Env::new();
    let first = env.detach(&["--name", "one", "-v", "vol1:/data"], "exit 3");
    env.wait("one");
    std::thread::sleep(Duration::from_millis(20));
    let second = env.detach(&["--name", "two"], "exit 0");
    env.wait("two");
    std::thread::sleep(Duration::from_millis(20));
    let third = env.detach(&["--name", "three"], "sleep 300");
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend_from_slice(&["--filter", f]);
        }
        env.ok(&args).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(names(&["exited=3"]), ["one"]);
    assert_eq!(names(&["exited=0"]), ["two"]);
    assert_eq!(names(&["exited=0", "exited=3"]), ["two", "one"]);
    assert_eq!(names(&["status=running"]), ["three"]);
    assert_eq!(names(&["status=exited"]), ["two", "one"]);
    assert_eq!(names(&["status=exited", "name=one"]), ["one"]);
    assert_eq!(names(&["name=t"]), ["three", "two"]);
    assert_eq!(names(&["name=^/t.o$"]), ["two"]);
    assert_eq!(names(&[&format!("id={}", &second[..10])]), ["two"]);
    assert_eq!(names(&["ancestor=bb:1"]), ["three", "two", "one"]);
    assert!(names(&["ancestor=nosuchimage"]).is_empty());
    assert_eq!(names(&["before=two"]), ["one"]);
    assert_eq!(names(&["since=two"]), ["three"]);
    assert_eq!(names(&["volume=vol1"]), ["one"]);
    assert_eq!(names(&["volume=/data"]), ["one"]);
    // `status` shows stopped containers without -a.
    let out = env.ok(&["ps", "-f", "status=exited", "-q", "--no-trunc"]);
    assert_eq!(out, format!("{second}\n{first}\n"));
    assert_eq!(env.ok(&["ps", "-q", "-f", "name=one"]), "");
    assert_eq!(
        env.ok(&["container", "ls", "-q", "--no-trunc", "-f", "name=three"]),
        format!("{third}\n")
    );
    for (filter, want) in [
        ("colour=red", "Invalid filter 'colour'"),
        ("status=sleeping", "Invalid filter 'status=sleeping'"),
        ("is-task=maybe", "Invalid filter 'is-task=[maybe]'"),
        ("health=x", "Unrecognised filter value for health: x"),
        ("exited=x", "strconv.Atoi: parsing \"x\": invalid syntax"),
        ("before=nope", "no such container nope"),
        ("nonsense", "bad format of filter (expected name=value)"),
    ] {
        let err = env.fails(&["ps", "-f", filter]);
        assert!(err.contains(want), "{filter}: {err}");
    }
}

#[test]
fn logs_since_and_until_with_tail_and_follow() {
    let env = Env::new();
    env.detach(
        &["--name", "talk"],
        "echo one; sleep 2; echo two; echo three; sleep 300",
    );
    eventually("three lines", || {
        env.ok(&["logs", "talk"]) == "one\ntwo\nthree\n"
    });
    let stamped = env.ok(&["logs", "-t", "talk"]);
    let first = stamped.split(' ').next().unwrap();
    let first = chrono::DateTime::parse_from_rfc3339(first).unwrap();
    // Between the first line and the second (two seconds apart).
    let mid = first + chrono::Duration::milliseconds(1000);
    let rfc3339 = mid.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let unix = format!("{}.{:09}", mid.timestamp(), mid.timestamp_subsec_nanos());
    assert_eq!(
        env.ok(&["logs", "--since", &rfc3339, "talk"]),
        "two\nthree\n"
    );
    assert_eq!(env.ok(&["logs", "--until", &rfc3339, "talk"]), "one\n");
    assert_eq!(env.ok(&["logs", "--since", &unix, "talk"]), "two\nthree\n");
    assert_eq!(
        env.ok(&["logs", "--since", &unix, "--tail", "1", "talk"]),
        "three\n"
    );
    // --tail picks the last line first, then --until drops it, as Docker's json-file reader.
    assert_eq!(
        env.ok(&["logs", "--until", &unix, "--tail", "1", "talk"]),
        ""
    );
    assert_eq!(
        env.ok(&["logs", "--since", "1h", "talk"]),
        "one\ntwo\nthree\n"
    );
    assert_eq!(env.ok(&["logs", "--until", "1h", "talk"]), "");
    let out = env.ok(&["logs", "-t", "--since", &rfc3339, "talk"]);
    assert_eq!(out.lines().count(), 2);
    assert!(out.lines().all(|l| l.contains("Z t")), "{out}");
    // `-f --until`: follows a running container, and stops at that time (past: at once;
    // `-2s` is two seconds from now).
    let start = Instant::now();
    let out = env.ok(&["logs", "-f", "--until", &rfc3339, "talk"]);
    assert_eq!(out, "one\n");
    assert!(start.elapsed() < Duration::from_secs(1));
    let start = Instant::now();
    let out = env.ok(&["logs", "-f", "--since", &rfc3339, "--until", "-2s", "talk"]);
    assert_eq!(out, "two\nthree\n");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    let err = env.fails(&["logs", "--since", "yesterday", "talk"]);
    assert!(
        err.contains(
            "invalid value for \"since\": failed to parse value as time or duration: \"yesterday\""
        ),
        "{err}"
    );
}

#[test]
fn run_env_file_follows_dockers_format() {
    let env = Env::new();
    let file = env.tmp.path().join("app.env");
    std::fs::write(
        &file,
        "# settings\nGREETING=hello world\n\n  SPACED= kept \nFROM_HOST\nNOT_ON_HOST\nOVERRIDDEN=file\n",
    )
    .unwrap();
    let second = env.tmp.path().join("more.env");
    std::fs::write(&second, "SECOND=2\n").unwrap();
    let out = Command::new(bin("berth"))
        .arg("--data-root")
        .arg(env.data_root())
        .args(["run", "--rm", "--env-file"])
        .arg(&file)
        .arg("--env-file")
        .arg(&second)
        .args(["-e", "OVERRIDDEN=flag", "bb:1", "sh", "-c"])
        .arg(
            "echo \"[$GREETING][$SPACED][$FROM_HOST][${NOT_ON_HOST-unset}][$OVERRIDDEN][$SECOND]\"",
        )
        .env("FROM_HOST", "host value")
        .env_remove("NOT_ON_HOST")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "[hello world][ kept ][host value][unset][flag][2]\n"
    );

    let missing = env.tmp.path().join("missing.env");
    let out = env.berth(&[
        "run",
        "--env-file",
        missing.to_str().unwrap(),
        "bb:1",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("missing.env"),
        "{}",
        text(&out.stderr)
    );
    let bad = env.tmp.path().join("bad.env");
    std::fs::write(&bad, "MY VAR=1\n").unwrap();
    let out = env.berth(&["run", "--env-file", bad.to_str().unwrap(), "bb:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.env") && err.contains("variable 'MY VAR' contains whitespaces"),
        "{err}"
    );
    // Nothing was created for the refused runs.
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn diff_lists_what_changed_against_the_image() {
    let env = Env(ContainerEnv::new(&[("etc/motd", "hello\n")]));
    env.ok(&[
        "run",
        "--name",
        "changed",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo hi > /etc/new; rm /bin/ls; mkdir -p /tmp/x; echo y >> /etc/motd",
    ]);
    // Docker's lines and order; Berth's own mount points and /etc files are not changes.
    assert_eq!(
        env.ok(&["diff", "changed"]),
        "C /bin\nD /bin/ls\nC /etc\nC /etc/motd\nA /etc/new\nA /tmp\nA /tmp/x\n"
    );
    // Nothing changed: nothing printed. A running container's changes show as they happen.
    env.ok(&[
        "run",
        "--name",
        "quiet",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    assert_eq!(env.ok(&["container", "diff", "quiet"]), "");
    env.detach(
        &["--name", "busy", "--network", "none"],
        "touch /made-here; sleep 300",
    );
    eventually("the running container's change", || {
        env.ok(&["diff", "busy"]) == "A /made-here\n"
    });
    assert!(env.fails(&["diff", "nope"]).contains("No such container"));
    env.ok(&["rm", "-f", "changed", "quiet", "busy"]);
}
