//! What Docker users type that berth lacked or got wrong (issue 12, items 3–7 and 9): `info`,
//! `version`, `-v`, Docker's `daemon.json` as a fallback for the registry keys, `system df`
//! counting containers and volumes, `kill` then `start`, `rmi`/`image prune` of an image a
//! container uses, dangling images in `images`, and typo suggestions.

use berth_tests::{bin, ContainerEnv};

fn text(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn info_and_version_have_dockers_shape() {
    let env = ContainerEnv::new(&[]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    env.ok(&[
        "create",
        "--name",
        "made",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    let info = env.ok(&["info"]);
    for want in [
        "Containers: 2\n",
        "  Running: 1\n",
        "  Paused: 0\n",
        "  Stopped: 1\n",
        "Images: 1\n",
        "Storage Driver: ",
        "Cgroup Driver: cgroupfs\n",
        "Insecure Registries:\n  127.0.0.0/8\n",
        &format!("Berth Root Dir: {}\n", env.data_root().display()),
    ] {
        assert!(info.contains(want), "missing {want:?} in\n{info}");
    }
    let cgroup = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert!(
        info.contains(&format!("Cgroup Version: {cgroup}\n")),
        "{info}"
    );
    // The same section headers and keys as the Docker Engine's on this machine.
    let docker = std::process::Command::new("docker")
        .arg("info")
        .output()
        .unwrap();
    let docker = String::from_utf8_lossy(&docker.stdout);
    for key in [
        "Client:",
        "Server:",
        " Containers:",
        "  Running:",
        "  Stopped:",
        " Images:",
        " Storage Driver:",
        " Logging Driver:",
        " Cgroup Driver:",
        " Cgroup Version:",
        " Kernel Version:",
        " Operating System:",
        " Architecture:",
        " CPUs:",
        " Total Memory:",
        " Insecure Registries:",
    ] {
        assert!(docker.contains(key), "docker info lacks {key:?}");
        assert!(info.contains(key), "berth info lacks {key:?}");
    }
    assert_eq!(
        env.ok(&[
            "info",
            "--format",
            "{{.DockerRootDir}} {{.ContainersRunning}}"
        ])
        .trim(),
        format!("{} 1", env.data_root().display())
    );
    assert_eq!(env.ok(&["system", "info", "-f", "{{.Images}}"]).trim(), "1");
    let version = env.ok(&["version"]);
    assert!(version.starts_with("Client: Berth\n Version:"), "{version}");
    assert_eq!(
        env.ok(&["version", "--format", "{{.Client.Version}}"])
            .trim(),
        env!("CARGO_PKG_VERSION")
    );
    for flag in ["-v", "--version"] {
        let out = std::process::Command::new(bin("berth"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("berth version {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn dockers_daemon_json_gives_the_registry_keys_when_berths_is_missing() {
    assert!(
        !std::path::Path::new(berth_config_default()).exists(),
        "{} exists on this machine; this test needs berth's own daemon.json absent",
        berth_config_default()
    );
    let env = ContainerEnv::new(&[]);
    let docker = env.tmp.path().join("docker-daemon.json");
    std::fs::write(
        &docker,
        r#"{"data-root": "/nonexistent/docker", "mtu": 1400,
            "registry-mirrors": ["http://127.0.0.1:5999"], "insecure-registries": ["reg.test:5000"]}"#,
    )
    .unwrap();
    let mut cmd = env.cmd(&["--debug", "info"]);
    cmd.env("BERTH_DOCKER_DAEMON_JSON", &docker);
    let (code, out, err) = text(&cmd.output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Registry Mirrors:\n  http://127.0.0.1:5999\n"),
        "{out}"
    );
    assert!(out.contains("  reg.test:5000\n"), "{out}");
    assert!(
        out.contains(&format!(
            "Daemon Config: {} (its registry settings only",
            docker.display()
        )),
        "{out}"
    );
    assert!(err.contains("using the registry settings of"), "{err}");
    // Never Docker's data root.
    assert!(
        out.contains(&format!("Berth Root Dir: {}\n", env.data_root().display())),
        "{out}"
    );
    assert!(!std::path::Path::new("/nonexistent/docker").exists());
}

fn berth_config_default() -> &'static str {
    "/etc/berth/daemon.json"
}

#[test]
fn system_df_counts_containers_and_volumes() {
    let env = ContainerEnv::new(&[]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "-v",
        "data:/data",
        "bb:1",
        "sleep",
        "300",
    ]);
    env.ok(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]);
    env.ok(&["volume", "create", "spare"]);
    let df = env.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Images 1 1\n"), "{df}");
    assert!(df.contains("Containers 2 1\n"), "{df}");
    assert!(df.contains("Local Volumes 2 1\n"), "{df}");
    let sizes = env.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    assert!(sizes.contains("Containers|100kB|100kB (100%)"), "{sizes}");
}

#[test]
fn kill_then_start_runs_again() {
    let env = ContainerEnv::new(&[]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "kk",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    for round in 0..3 {
        env.ok(&["kill", "kk"]);
        let ps = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.contains("kk Exited (137)"), "round {round}: {ps}");
        env.ok(&["start", "kk"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let ps = env.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.contains("kk Up"), "round {round}: {ps}");
    }
}

#[test]
fn an_image_a_container_uses_is_not_deleted() {
    let env = ContainerEnv::new(&[]);
    env.ok(&[
        "create",
        "--name",
        "cc",
        "--network",
        "none",
        "bb:1",
        "echo",
        "still-here",
    ]);
    let id = env.ok(&["images", "-q", "--no-trunc"]).trim().to_owned();
    let (code, _, err) = text(&env.berth(&["rmi", "bb:1"]));
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "conflict: unable to remove repository reference \"bb:1\" (must force) - container"
        ),
        "{err}"
    );
    let (code, _, err) = text(&env.berth(&["rmi", &id[7..19]]));
    assert_eq!(code, 1);
    assert!(
        err.contains("(must be forced) - image is being used by stopped container"),
        "{err}"
    );
    env.ok(&["image", "prune", "-a", "-f"]);
    // -f untags; the image stays, dangling, and is listed as Docker lists it.
    let out = env.ok(&["rmi", "-f", "bb:1"]);
    assert!(out.contains("Untagged: bb:1"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    let images = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(images.trim(), format!("<none>:<none> {}", &id[7..19]));
    env.ok(&["image", "prune", "-f"]);
    // Its layers are intact: the container still runs.
    let out = env.ok(&["start", "-a", "cc"]);
    assert_eq!(out, "still-here\n");
    // A running container's image cannot be forced away.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--network",
        "none",
        &id[7..19],
        "sleep",
        "300",
    ]);
    let (code, _, err) = text(&env.berth(&["rmi", "-f", &id[7..19]]));
    assert_eq!(code, 1);
    assert!(
        err.contains("(cannot be forced) - image is being used by running container"),
        "{err}"
    );
    // Once no container uses it, prune removes it.
    env.ok(&["rm", "-f", "cc", "rr"]);
    env.ok(&["image", "prune", "-f"]);
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn typos_suggest_only_commands_users_may_type() {
    let out = std::process::Command::new(bin("berth"))
        .arg("contianer")
        .output()
        .unwrap();
    let (code, _, err) = text(&out);
    assert_eq!(code, 2);
    assert!(err.contains("'container'"), "{err}");
    assert!(!err.contains("container-monitor"), "{err}");
}

/// The monitor's PID from `state.json`.
fn monitor_pid(env: &ContainerEnv, name: &str) -> i64 {
    let (_, id) = env.find(name);
    env.state(&id)["Monitor"]["pid"].as_i64().unwrap()
}

#[test]
fn restart_policies_outlive_their_monitor() {
    let env = ContainerEnv::new(&[]);
    for (name, policy) in [
        ("always", "always"),
        ("unless", "unless-stopped"),
        ("never", "no"),
        ("halted", "always"),
    ] {
        env.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "--network",
            "none",
            "bb:1",
            "sleep",
            "300",
        ]);
    }
    env.ok(&["stop", "-t", "1", "halted"]);
    // Kill every monitor, as a crash or a reboot would (their containers die with them).
    for name in ["always", "unless", "never"] {
        let pid = monitor_pid(&env, name);
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The next berth command brings back what the policies ask for.
    let ps = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("always Up"), "{ps}");
    assert!(ps.contains("unless Up"), "{ps}");
    assert!(ps.contains("never Exited (137)"), "{ps}");
    assert!(ps.contains("halted Exited"), "{ps}");
    // `system restore` (what the systemd unit runs at boot) prints what it started.
    let pid = monitor_pid(&env, "always");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, id) = env.find("always");
    assert_eq!(env.ok(&["system", "restore"]).trim(), id);
    assert_ne!(monitor_pid(&env, "always"), pid);
    assert_eq!(
        env.ok(&["system", "restore"]).trim(),
        "",
        "nothing left to restore"
    );
}

#[test]
fn inspect_shows_what_docker_shows() {
    let env = ContainerEnv::new(&[]);
    env.ok(&[
        "run",
        "--name",
        "base",
        "--network",
        "none",
        "bb:1",
        "touch",
        "/made",
    ]);
    env.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "added made",
        "base",
        "mine:1",
    ]);
    assert_eq!(
        env.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}",
            "mine:1"
        ])
        .trim(),
        "Ann <ann@example.com>|added made"
    );
    env.ok(&[
        "create",
        "--name",
        "hc",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::53/udp",
        "--cap-add",
        "NET_ADMIN",
        "--restart",
        "on-failure:2",
        "bb:1",
        "true",
    ]);
    let ports = env.ok(&[
        "inspect", "-f",
        "{{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{range $b}}{{.HostIp}}:{{.HostPort}}{{end}} {{end}}",
        "hc",
    ]);
    assert_eq!(ports.trim(), "53/udp=127.0.0.1: 80/tcp=:8080");
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.CapAdd}} {{.HostConfig.Privileged}}",
            "hc"
        ])
        .trim(),
        "on-failure [NET_ADMIN] false"
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{range .Config.Cmd}}<{{.}}>{{end}}", "hc"])
            .trim(),
        "<true>"
    );
}

/// `-l`/`--label`/`--label-file`, `--cidfile`, `--stop-signal` and `--stop-timeout` (issue 12,
/// "Run flags"), as Docker: labels in `inspect` and `ps --filter label=…`; the ID file
/// written, and an existing one refused before a container is made; `stop` uses the
/// container's signal and timeout unless `-s`/`-t` say otherwise.
#[test]
fn labels_cidfile_and_stop_settings() {
    let env = ContainerEnv::new(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("labels");
    std::fs::write(&file, "c=\"a label\"\n# a comment\n\nd\na=from-file\n").unwrap();
    env.ok(&[
        "create",
        "--name",
        "lab",
        "--network",
        "none",
        "--label-file",
        file.to_str().unwrap(),
        "-l",
        "a=1",
        "--label",
        "b",
        "bb:1",
        "true",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "lab"])).unwrap();
    assert_eq!(
        doc[0]["Config"]["Labels"],
        serde_json::json!({"a": "1", "b": "", "c": "\"a label\"", "d": ""})
    );
    let id = doc[0]["Id"].as_str().unwrap().to_owned();
    let ps = env.ok(&["ps", "-a", "-q", "--no-trunc", "--filter", "label=a=1"]);
    assert_eq!(ps.trim(), id);
    let ps = env.ok(&["ps", "-a", "-q", "--filter", "label=a=2"]);
    assert_eq!(ps.trim(), "");
    let out = env.berth(&["create", "-l", "=x", "bb:1", "true"]);
    let (code, _, err) = text(&out);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid label '=x': empty name"), "{err}");

    // --cidfile: the ID, no newline; an existing file is refused and no container is made.
    let cid = dir.path().join("cid");
    let cid_arg = cid.to_str().unwrap();
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cidfile",
        cid_arg,
        "bb:1",
        "true",
    ]);
    let written = std::fs::read_to_string(&cid).unwrap();
    assert_eq!(written.len(), 64, "{written:?}");
    assert!(
        written.chars().all(|c| c.is_ascii_hexdigit()),
        "{written:?}"
    );
    let before = env.container_ids().len();
    let (code, _, err) = text(&env.berth(&["run", "--cidfile", cid_arg, "bb:1", "true"]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!(
            "container ID file found, make sure the other container isn't running or delete {cid_arg}"
        )),
        "{err}"
    );
    assert_eq!(env.container_ids().len(), before);
    // A failed create leaves no file behind.
    let cid2 = dir.path().join("cid2");
    let out = env.berth(&["run", "--cidfile", cid2.to_str().unwrap(), "no-such-image"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(!cid2.exists());

    // --stop-signal: `stop` sends it; the trap's exit code proves it arrived.
    let trap = "trap 'exit 7' USR1; trap '' TERM; : > /etc/trapped; while :; do sleep 0.1; done";
    env.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--network",
        "none",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "30",
        "bb:1",
        "sh",
        "-c",
        trap,
    ]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "sig"])).unwrap();
    assert_eq!(doc[0]["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(doc[0]["Config"]["StopTimeout"], 30);
    let (_, sig_id) = env.find("sig");
    env.wait_file(&sig_id, "/etc/trapped");
    let started = std::time::Instant::now();
    env.ok(&["stop", "sig"]);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let code = env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sig"]);
    assert_eq!(code.trim(), "7");
    // --stop-timeout: SIGTERM is ignored, so SIGKILL comes after 1 s, not Docker's 10.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--stop-timeout",
        "1",
        "bb:1",
        "sh",
        "-c",
        trap,
    ]);
    let started = std::time::Instant::now();
    env.ok(&["stop", "slow"]);
    let took = started.elapsed();
    assert!(took.as_secs() < 6 && took.as_millis() >= 900, "{took:?}");
    let code = env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "slow"]);
    assert_eq!(code.trim(), "137");
    // `-s` still wins over the container's signal.
    env.ok(&["start", "sig"]);
    env.ok(&["stop", "-s", "KILL", "sig"]);
    let code = env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sig"]);
    assert_eq!(code.trim(), "137");
    let (code, _, err) = text(&env.berth(&["create", "--stop-signal", "NOPE", "bb:1", "true"]));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("Invalid signal: NOPE"), "{err}");
}
