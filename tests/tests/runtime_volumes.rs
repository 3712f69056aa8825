//! Volumes end to end, as root: named volumes outliving their containers, `:ro`, bind mounts of
//! host directories, copy-up of image content, `volume create|ls|inspect|rm|prune`, the in-use
//! check, and `rm -v` / `--rm` taking anonymous volumes along.

use std::path::PathBuf;

use berth_tests::ContainerEnv;

/// The shared container test environment (cleans up after itself), plus this file's helpers.
struct Env(ContainerEnv);

impl std::ops::Deref for Env {
    type Target = ContainerEnv;
    fn deref(&self) -> &ContainerEnv {
        &self.0
    }
}

impl Env {
    /// A data root with `bb:1`: busybox plus `/seed/hello.txt` (for copy-up).
    fn new() -> Self {
        Self(ContainerEnv::new(&[
            ("seed/hello.txt", "seeded\n"),
            ("seed/sub/deep", "deep\n"),
        ]))
    }

    /// Runs berth, asserting failure; stderr.
    fn fails(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.berth(args);
        assert!(!out.status.success(), "berth {args:?} succeeded");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.data_root().join("volumes").join(name)
    }

    fn container_id(&self, name: &str) -> String {
        let out = self.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
        out.lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(_, n)| *n == name)
                    .map(|(id, _)| id.to_owned())
            })
            .unwrap_or_else(|| panic!("no container {name} in {out}"))
    }

    fn config(&self, id: &str) -> serde_json::Value {
        let p = self
            .data_root()
            .join("containers")
            .join(id)
            .join("config.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }
}

/// No mount of the test's directory is left on the host.
fn assert_no_mounts(env: &Env) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let prefix = env.tmp.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&prefix)),
        "mounts left behind:\n{mounts}"
    );
}

#[test]
fn named_volume_outlives_its_container_and_ro_refuses_writes() {
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data1:/data",
        "bb:1",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let id = env.container_id("writer");
    assert_eq!(env.state(&id)["Volumes"], serde_json::json!(["data1"]));
    let mounts = env.config(&id)["mounts"].clone();
    let m = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/data")
        .unwrap_or_else(|| panic!("{mounts}"));
    assert_eq!(m["type"], "bind");
    assert_eq!(
        m["source"],
        env.volume_dir("data1").join("_data").display().to_string()
    );
    assert_eq!(m["options"], serde_json::json!(["rbind", "rprivate"]));
    env.ok(&["rm", "writer"]);
    assert!(env.volume_dir("data1").join("_data/f").is_file());

    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "data1:/data:ro",
        "bb:1",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept\n");
    let (_, err) = env.fails(&[
        "run",
        "--rm",
        "-v",
        "data1:/data:ro",
        "bb:1",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!env.volume_dir("data1").join("_data/g").exists());

    // `--mount … ,readonly` is the same, and shows in config.json.
    env.ok(&[
        "run",
        "--name",
        "ro",
        "--mount",
        "type=volume,src=data1,dst=/data,readonly",
        "bb:1",
        "cat",
        "/data/f",
    ]);
    let id = env.container_id("ro");
    let mounts = env.config(&id)["mounts"].clone();
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/data"
                && m["options"] == serde_json::json!(["rbind", "rprivate", "ro"])),
        "{mounts}"
    );
    env.ok(&["rm", "ro"]);
    assert_no_mounts(&env);
}

#[test]
fn bind_mount_shows_host_files_and_writes_land_on_the_host() {
    let env = Env::new();
    let host = env.tmp.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h", host.display());
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "bb:1",
        "sh",
        "-c",
        "cat /h/in; echo from ctr > /h/out",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from ctr\n"
    );
    let mount = format!("type=bind,source={},target=/h,readonly", host.display());
    let (_, err) = env.fails(&["run", "--rm", "--mount", &mount, "bb:1", "touch", "/h/x"]);
    assert!(err.contains("Read-only file system"), "{err}");
    // A missing `--mount` bind source is refused, as Docker does.
    let missing = env.tmp.path().join("missing");
    let mount = format!("type=bind,src={},dst=/h", missing.display());
    let (code, err) = env.fails(&["run", "--rm", "--mount", &mount, "bb:1", "true"]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists());
    // Bad flags exit 125 with Docker's wording.
    let (code, err) = env.fails(&["run", "--rm", "-v", "vol:rel", "bb:1", "true"]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains("invalid volume specification: 'vol:rel'"),
        "{err}"
    );
    assert_no_mounts(&env);
}

#[test]
fn new_named_volume_is_filled_from_the_image() {
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/seed",
        "bb:1",
        "sh",
        "-c",
        "cat /seed/hello.txt /seed/sub/deep; echo mine > /seed/hello.txt",
    ]);
    assert_eq!(out, "seeded\ndeep\n");
    let data = env.volume_dir("seeded").join("_data");
    assert_eq!(
        std::fs::read_to_string(data.join("hello.txt")).unwrap(),
        "mine\n"
    );
    // An existing volume is not filled again.
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/seed",
        "bb:1",
        "cat",
        "/seed/hello.txt",
    ]);
    assert_eq!(out, "mine\n");
    // Only a volume created by this run is filled: one made by `volume create` stays empty.
    env.ok(&["volume", "create", "pre"]);
    let out = env.ok(&["run", "--rm", "-v", "pre:/seed", "bb:1", "ls", "/seed"]);
    assert_eq!(out, "");
    assert_no_mounts(&env);
}

#[test]
fn volume_commands_follow_docker() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["volume", "create", "--label", "a=b", "v1"]),
        "v1\n"
    );
    assert_eq!(env.ok(&["volume", "create", "v1"]), "v1\n");
    let anon = env.ok(&["volume", "create"]).trim().to_owned();
    assert_eq!(anon.len(), 64, "{anon}");
    let (_, err) = env.fails(&["volume", "create", "b$d"]);
    assert!(
        err.contains("Error response from daemon: create b$d: \"b$d\" includes invalid characters for a local volume name"),
        "{err}"
    );

    let ls = env.ok(&["volume", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(
        lines[0].starts_with("DRIVER") && lines[0].ends_with("VOLUME NAME"),
        "{ls}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("local") && l.ends_with(" v1")),
        "{ls}"
    );
    let mut q: Vec<String> = env
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    q.sort();
    let mut want = vec![anon.clone(), "v1".to_owned()];
    want.sort();
    assert_eq!(q, want);
    assert!(env
        .ok(&["volume", "ls", "--format", "{{.Name}}:{{.Driver}}"])
        .lines()
        .any(|l| l == "v1:local"));

    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "v1"])).unwrap();
    let v = &doc[0];
    assert_eq!(v["Name"], "v1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::json!({"a": "b"}));
    assert_eq!(
        v["Mountpoint"],
        env.volume_dir("v1").join("_data").display().to_string()
    );
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(
        env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"])
            .trim(),
        env.volume_dir("v1").join("_data").display().to_string()
    );
    let (_, err) = env.fails(&["volume", "inspect", "nope"]);
    assert!(err.contains("No such volume: nope"), "{err}");

    // In use by a stopped but existing container: refused.
    env.ok(&["run", "--name", "user", "-v", "v1:/x", "bb:1", "true"]);
    let id = env.container_id("user");
    let (_, err) = env.fails(&["volume", "rm", "v1"]);
    assert!(
        err.contains(&format!(
            "Error response from daemon: remove v1: volume is in use - [{id}]"
        )),
        "{err}"
    );
    let (_, err) = env.fails(&["volume", "rm", "-f", "v1"]);
    assert!(err.contains("volume is in use"), "{err}");
    // Prune leaves used volumes alone; by default it takes anonymous ones only (made by a
    // container, not by `volume create` without a name).
    env.ok(&["run", "--name", "tmp", "-v", "/anon", "bb:1", "true"]);
    let tmp = env.container_id("tmp");
    let made = env.state(&tmp)["Volumes"][0].as_str().unwrap().to_owned();
    env.ok(&["rm", "tmp"]);
    env.ok(&["volume", "create", "spare"]);
    let out = env.ok(&["volume", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Volumes:\n{made}\n\nTotal reclaimed space:"
        )),
        "{out}"
    );
    assert!(env.volume_dir("spare").exists() && env.volume_dir(&anon).exists());
    let out = env.ok(&["volume", "prune", "-f", "-a"]);
    assert!(
        out.contains("spare") && out.contains(&anon) && !out.contains("v1"),
        "{out}"
    );
    assert!(!env.volume_dir("spare").exists());
    assert!(env.volume_dir("v1").exists());

    env.ok(&["rm", "user"]);
    assert_eq!(env.ok(&["volume", "rm", "v1"]), "v1\n");
    assert!(!env.volume_dir("v1").exists());
    let (_, err) = env.fails(&["volume", "rm", "v1"]);
    assert!(
        err.contains("Error response from daemon: get v1: no such volume"),
        "{err}"
    );
    env.ok(&["volume", "rm", "-f", "v1"]);
    assert_eq!(
        env.ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_no_mounts(&env);
}

#[test]
fn rm_v_and_auto_remove_take_anonymous_volumes_along() {
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "ca",
        "-v",
        "/anon",
        "-v",
        "named1:/named",
        "bb:1",
        "sh",
        "-c",
        "echo x > /anon/f",
    ]);
    let id = env.container_id("ca");
    let vols = env.state(&id)["Volumes"].clone();
    let anon = vols[0].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    assert_eq!(vols[1], "named1");
    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", &anon])).unwrap();
    assert_eq!(
        doc[0]["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    assert!(env.volume_dir(&anon).join("_data/f").is_file());
    env.ok(&["rm", "-v", "ca"]);
    assert!(!env.volume_dir(&anon).exists());
    assert!(env.volume_dir("named1").exists(), "named volumes stay");

    // Without -v the anonymous volume stays.
    env.ok(&[
        "run",
        "--name",
        "cb",
        "--mount",
        "type=volume,target=/anon",
        "bb:1",
        "true",
    ]);
    let id = env.container_id("cb");
    let anon = env.state(&id)["Volumes"][0].as_str().unwrap().to_owned();
    env.ok(&["rm", "cb"]);
    assert!(env.volume_dir(&anon).exists());

    // `--rm` removes the container's anonymous volumes.
    let before: Vec<String> = env
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    env.ok(&["run", "--rm", "-v", "/anon2", "bb:1", "true"]);
    let after: Vec<String> = env
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(before, after);

    // So does a detached `--rm` container, once its monitor has removed it.
    let id = env
        .ok(&["run", "-d", "--rm", "-v", "/anon3", "bb:1", "true"])
        .trim()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "detached --rm container was not removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let after_detached: Vec<String> = env
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        before, after_detached,
        "anonymous volume of a detached --rm container removed"
    );
    assert_no_mounts(&env);
}
