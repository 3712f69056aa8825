//! `berth build` end to end, as root: the same Dockerfiles built by berth and by the Docker
//! Engine's classic builder (`DOCKER_BUILDKIT=0`, from `bb:1` loaded into Docker under a unique
//! name) give the same files, modes, owners, env, cmd and entrypoint; the image runs under
//! `berth run` and, after `berth save | docker load`, under Docker; the cache; bad input.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_tests::{nonce, ContainerEnv};
use serde_json::Value;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\n";

fn env() -> ContainerEnv {
    ContainerEnv::new(&[
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/motd", "welcome\n"),
    ])
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
}

fn build(env: &ContainerEnv, args: &[&str]) -> Output {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    env.cmd(&a).env("BERTH_NO_PROGRESS", "1").output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .output()
        .unwrap()
}

/// `path -> "type mode uid:gid size link"` for entries under `prefixes` of an exported tar.
fn tree(tar_bytes: &[u8], prefixes: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if !prefixes
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let h = e.header();
        let kind = format!("{:?}", h.entry_type());
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let size = if h.entry_type().is_file() {
            h.size().unwrap()
        } else {
            0
        };
        out.insert(
            path,
            format!(
                "{kind} {:o} {}:{} {size} {link}",
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap()
            ),
        );
    }
    out
}

fn berth_export(env: &ContainerEnv, image: &str) -> Vec<u8> {
    let id = env.ok(&["create", image]).trim().to_owned();
    let out = env.berth(&["export", &id]);
    let _ = env.berth(&["rm", &id]);
    assert!(out.status.success());
    out.stdout
}

fn docker_export(image: &str) -> Vec<u8> {
    let id =
        String::from_utf8_lossy(&ok(&docker(&["create", image]), "docker create").into_bytes())
            .trim()
            .to_owned();
    let out = docker(&["export", &id]);
    let _ = docker(&["rm", &id]);
    out.stdout
}

fn config(inspect: &str) -> Value {
    let v: Value = serde_json::from_str(inspect).unwrap();
    let c = &v[0]["Config"];
    serde_json::json!({
        "Env": c["Env"], "Cmd": c["Cmd"], "Entrypoint": c["Entrypoint"],
        "User": c["User"], "WorkingDir": c["WorkingDir"], "Labels": c["Labels"],
        "ExposedPorts": c["ExposedPorts"], "Volumes": c["Volumes"],
    })
}

const COMPARED: &str = r#"ARG BASE
FROM ${BASE} AS build
ARG GREETING=hello
WORKDIR /src
COPY src/ ./
RUN echo "$GREETING" > /src/out.txt && chmod 604 /src/out.txt \
 && mkdir -p /src/gen && echo gen > /src/gen/a

FROM ${BASE} AS onb
ONBUILD RUN echo triggered > /onbuild.txt

FROM onb
ARG LATE=1
ENV APP=/app PATH=/app/bin:$PATH
WORKDIR $APP
COPY --from=build /src/out.txt /src/gen ./data/
COPY --chown=app:app conf/ conf/
COPY run.sh bin/
COPY . ctx/
RUN rm /etc/motd && echo "late=$LATE" > late.txt && ln -s late.txt link.txt
USER app
EXPOSE 8080
VOLUME /app/state
LABEL org.example.name="berth test"
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/late.txt /app/data/out.txt"]
"#;

#[test]
fn build_matches_docker_classic_builder() {
    assert!(
        Command::new("ip").args(["link", "show", "docker0"]).output().unwrap().status.success(),
        "docker0 is missing: ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 mtu 1400 up"
    );
    let env = env();
    let n = nonce();
    let base = format!("berthbuild-{n}:base");
    env.ok(&["tag", "bb:1", &base]);
    let saved = env.berth(&["save", &base]);
    let mut load = Command::new("docker")
        .args(["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&saved.stdout).unwrap();
    assert!(load.wait().unwrap().success());

    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[
            ("Dockerfile", COMPARED),
            (".dockerignore", "*.log\n!keep.log\nsecret/\n"),
            ("src/main.c", "int main(){}\n"),
            ("src/lib/util.c", "void f(){}\n"),
            ("conf/app.conf", "a=1\n"),
            ("run.sh", "#!/bin/sh\necho run\n"),
            ("x.log", "ignored\n"),
            ("keep.log", "kept\n"),
            ("secret/key", "nope\n"),
        ],
    );
    let ctx_s = ctx.to_str().unwrap();
    let tag = format!("berthbuild-{n}:out");
    let arg = format!("BASE={base}");
    let out = build(
        &env,
        &[
            "--build-arg",
            &arg,
            "--build-arg",
            "LATE=2",
            "-t",
            &tag,
            ctx_s,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out, "berth build");
    assert!(stderr.contains("Step 1/"), "{stderr}");
    assert!(stderr.contains("# Executing 1 build trigger"), "{stderr}");
    assert!(stderr.contains("Successfully tagged"), "{stderr}");
    let docker_out = docker(&[
        "build",
        "--build-arg",
        &arg,
        "--build-arg",
        "LATE=2",
        "-t",
        &tag,
        ctx_s,
    ]);
    let cleanup = || {
        let _ = docker(&["rmi", "-f", &tag, &base]);
    };
    if !docker_out.status.success() {
        cleanup();
        panic!(
            "docker build failed: {}",
            String::from_utf8_lossy(&docker_out.stderr)
        );
    }

    let prefixes = ["app", "onbuild.txt", "etc/motd", "src"];
    let ours = tree(&berth_export(&env, &tag), &prefixes);
    let theirs = tree(&docker_export(&tag), &prefixes);
    let ours_cfg = config(&env.ok(&["image", "inspect", &tag]));
    let theirs_cfg = config(&ok(&docker(&["image", "inspect", &tag]), "docker inspect"));
    let ours_hist = env.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", &tag]);
    let theirs_hist = ok(
        &docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", &tag]),
        "docker history",
    );

    // The image runs under berth, and under Docker after `berth save | docker load`.
    let ran = String::from_utf8_lossy(&env.berth(&["run", "--rm", &tag]).stdout).into_owned();
    let _ = docker(&["rmi", "-f", &tag]);
    let saved = env.berth(&["save", &tag]);
    let mut load = Command::new("docker")
        .args(["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&saved.stdout).unwrap();
    assert!(load.wait().unwrap().success());
    let docker_ran = docker(&["run", "--rm", &tag]);
    cleanup();

    assert_eq!(ours, theirs, "exported trees differ");
    assert!(
        !ours.contains_key("etc/motd"),
        "the whiteout of /etc/motd is lost"
    );
    assert!(ours.contains_key("app/ctx/keep.log") && !ours.contains_key("app/ctx/x.log"));
    assert!(!ours.keys().any(|k| k.starts_with("app/ctx/secret")));
    assert_eq!(ours_cfg, theirs_cfg, "configs differ");
    // Same history text, except for content hashes of COPY (`file:<hash>`) and the base.
    let strip = |h: &str| -> Vec<String> {
        h.lines()
            .map(|l| {
                l.split_whitespace()
                    .map(|w| match w.rsplit_once(':') {
                        Some((k, v)) if v.len() == 64 => format!("{k}:HASH"),
                        _ => w.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let (o, t) = (strip(&ours_hist), strip(&theirs_hist));
    assert_eq!(o[..o.len() - 1], t[..t.len() - 1], "history differs");
    assert_eq!(ran, "late=2\nhello\n");
    assert_eq!(
        String::from_utf8_lossy(&docker_ran.stdout),
        "late=2\nhello\n"
    );
}

fn plain(env: &ContainerEnv, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = build(env, &args);
    ok(&out, "berth build");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lines `Step N/M : …` each followed by its cache verdict.
fn verdicts(log: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("Step ") {
            let instr = rest.split_once(" : ").map_or(rest, |x| x.1).to_owned();
            if instr.starts_with("FROM") {
                continue;
            }
            let v = lines.get(i + 1).copied().unwrap_or_default().to_owned();
            out.push((instr, v));
        }
    }
    out
}

#[test]
fn cache_hits_misses_and_reasons() {
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM bb:1 AS one\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n\nFROM bb:1\nARG LATE\nCOPY --from=one /b.txt /b.txt\nRUN echo $LATE > /late\n",
            ),
            ("a.txt", "first\n"),
        ],
    );
    let first = plain(&env, &ctx, &["--build-arg", "LATE=1", "-t", "c:1"]);
    assert!(
        verdicts(&first)
            .iter()
            .all(|(_, v)| v.contains("cache miss")),
        "{first}"
    );
    let second = plain(&env, &ctx, &["--build-arg", "LATE=1", "-t", "c:1"]);
    assert!(
        verdicts(&second).iter().all(|(_, v)| v == " ---> CACHED"),
        "{second}"
    );
    // An mtime alone keeps the cache.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    let touched = plain(&env, &ctx, &["--build-arg", "LATE=1", "-t", "c:1"]);
    assert!(
        verdicts(&touched).iter().all(|(_, v)| v == " ---> CACHED"),
        "{touched}"
    );
    // A build arg used only in the second stage busts only that stage's steps that use it.
    let late = plain(&env, &ctx, &["--build-arg", "LATE=2", "-t", "c:1"]);
    let v = verdicts(&late);
    assert_eq!(v[0].1, " ---> CACHED", "{late}");
    assert_eq!(v[1].1, " ---> CACHED", "{late}");
    assert_eq!(v[2].1, " ---> CACHED", "{late}");
    assert!(
        v[3].1.contains("cache miss: build argument changed: LATE"),
        "{late}"
    );
    // Changed bytes miss from that COPY on.
    std::fs::write(ctx.join("a.txt"), "second\n").unwrap();
    let changed = plain(&env, &ctx, &["--build-arg", "LATE=2", "-t", "c:1"]);
    let v = verdicts(&changed);
    assert_eq!(v[0].1, " ---> CACHED", "{changed}");
    assert!(
        v[1].1.contains("cache miss: the files it copies changed"),
        "{changed}"
    );
    assert!(v[2].1.contains("cache miss"), "{changed}");
    assert_eq!(
        env.ok(&["run", "--rm", "c:1", "cat", "/b.txt", "/late"]),
        "second\n2\n"
    );
    // --no-cache rebuilds everything.
    let none = plain(&env, &ctx, &["--no-cache", "--build-arg", "LATE=2"]);
    assert!(
        verdicts(&none)
            .iter()
            .all(|(_, v)| v.contains("--no-cache")),
        "{none}"
    );
}

#[test]
fn heredocs_cache_mounts_user_and_reproducible_layers() {
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN <<EOF\necho from heredoc > /h.txt\necho second >> /h.txt\nEOF\nCOPY <<EOT /etc/greeting\nhello $HOSTNAME_X\nEOT\nRUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /seen\nCOPY --chmod=700 --chown=app <<EOT /home/app/run.sh\necho run\nEOT\nWORKDIR /home/app\nUSER app\nRUN id -u > uid.txt\nCMD [\"cat\", \"/h.txt\"]\n",
        )],
    );
    let q = build(&env, &["-q", "-t", "h:1", ctx.to_str().unwrap()]);
    let id = ok(&q, "berth build -q");
    assert!(
        id.trim().starts_with("sha256:") && id.lines().count() == 1,
        "{id}"
    );
    assert_eq!(env.ok(&["run", "--rm", "h:1"]), "from heredoc\nsecond\n");
    assert_eq!(
        env.ok(&["run", "--rm", "h:1", "cat", "/etc/greeting"]),
        "hello \n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "h:1", "cat", "/home/app/uid.txt"]),
        "1000\n"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "h:1",
            "stat",
            "-c",
            "%a %u %g",
            "/home/app/run.sh"
        ]),
        "700 1000 1000\n"
    );
    // The cache mount survives a --no-cache rebuild and stays out of the image.
    ok(
        &build(
            &env,
            &["-q", "--no-cache", "-t", "h:2", ctx.to_str().unwrap()],
        ),
        "rebuild",
    );
    assert_eq!(env.ok(&["run", "--rm", "h:2", "cat", "/seen"]).trim(), "2");
    let (code, _, _) = env.sh(&[], "true");
    assert_eq!(code, 0);
    let out = env.berth(&["run", "--rm", "h:2", "ls", "/cache"]);
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    // Same inputs and SOURCE_DATE_EPOCH: same layers.
    let layers = |tag: &str| -> Value {
        let v: Value = serde_json::from_str(&env.ok(&["image", "inspect", tag])).unwrap();
        v[0]["RootFS"]["Layers"].clone()
    };
    let ctx2 = env.tmp.path().join("ctx2");
    write(
        &ctx2,
        &[
            ("Dockerfile", "FROM bb:1\nCOPY f /f\nRUN echo x > /y\n"),
            ("f", "data\n"),
        ],
    );
    for t in ["r:1", "r:2"] {
        let out = env
            .cmd(&["build", "-q", "--no-cache", "-t", t, ctx2.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        ok(&out, "reproducible build");
    }
    assert_eq!(layers("r:1"), layers("r:2"));
}

#[test]
fn bad_input_is_refused_clearly() {
    let env = env();
    let dir = env.tmp.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(env.tmp.path().join("outside"), "secret").unwrap();
    std::os::unix::fs::symlink("../outside", dir.join("link")).unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "FROM bb:1\nRUN true\nFOO bar\n",
            "line 3, column 1: unknown instruction: FOO",
        ),
        ("FROM bb:1\nCOPY\n", "line 2"),
        (
            "FROM bb:1\nCOPY ../outside /x\n",
            "forbidden path outside the build context: ../outside",
        ),
        (
            "FROM bb:1\nCOPY link /x\n",
            "forbidden path outside the build context: link",
        ),
        (
            "FROM bb:1\nCOPY missing /x\n",
            "file not found in build context",
        ),
    ];
    for (dockerfile, want) in cases {
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        let out = build(&env, &["-t", "bad:1", dir.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{dockerfile}: {err}");
        assert!(err.contains(want), "{dockerfile}: {err}");
    }
    std::fs::write(dir.join("Dockerfile"), "FROM bb:1 AS a\nRUN true\n").unwrap();
    let out = build(&env, &["--target", "nope", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to reach build target nope"));

    // A failing RUN: its output and exit code, nothing tagged, no mount or directory left.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM bb:1\nRUN echo before && exit 3\n",
    )
    .unwrap();
    let out = build(&env, &["-t", "bad:1", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("before"), "{err}");
    assert!(
        err.contains("The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    assert!(!env.berth(&["image", "inspect", "bad:1"]).status.success());
    let root = env.data_root();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()), "{mounts}");
    let leftovers: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(env.container_ids().is_empty());
    // -q still shows a failing step's output.
    let out = build(&env, &["-q", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("before"));
    assert!(out.stdout.is_empty());
}

fn image_id_and_layers(env: &ContainerEnv, tag: &str) -> (Value, Value) {
    let v: Value = serde_json::from_str(&env.ok(&["image", "inspect", tag])).unwrap();
    (v[0]["Id"].clone(), v[0]["RootFS"]["Layers"].clone())
}

#[test]
fn registry_cache_exports_and_imports_in_a_fresh_data_root() {
    let env = env();
    let reg = berth_tests::Registry::start(&env.tmp.path().join("reg"), &[]);
    let base = format!("{}/base/bb:1", reg.addr);
    env.ok(&["tag", "bb:1", &base]);
    env.ok(&["push", &base]);
    let ctx = env.tmp.path().join("ctx");
    let dockerfile = format!(
        "FROM {base} AS build\nRUN echo built > /b.txt\n\nFROM {base}\nARG V=1\nCOPY a.txt /a.txt\nCOPY --from=build /b.txt /b.txt\nRUN cat /a.txt /b.txt > /ab.txt && rm /a.txt\nENV X=$V\nCMD [\"cat\", \"/ab.txt\"]\n"
    );
    write(&ctx, &[("Dockerfile", &dockerfile), ("a.txt", "from a\n")]);
    let cache = format!("{}/cache/app:build", reg.addr);
    let to = format!("type=registry,ref={cache},mode=max");
    let first = plain(&env, &ctx, &["--cache-to", &to, "-t", "app:1"]);
    assert!(first.contains("exported cache to"), "{first}");
    let want = image_id_and_layers(&env, "app:1");

    // A fresh data root: the base comes from the registry, every step from the cache (the bare
    // `--cache-from REF` form), and a cache reference that does not exist is only a warning.
    let fresh = ContainerEnv::new(&[]);
    let missing = format!("{}/cache/none:1", reg.addr);
    let from = format!("type=registry,ref={cache}");
    let second = plain(
        &fresh,
        &ctx,
        &[
            "--cache-from",
            &missing,
            "--cache-from",
            &from,
            "-t",
            "app:1",
        ],
    );
    assert!(
        second.contains(&format!("[Warning] failed to import cache from {missing}")),
        "{second}"
    );
    let v = verdicts(&second);
    assert_eq!(v.len(), 7, "{second}");
    assert!(v.iter().all(|(_, v)| v == " ---> CACHED"), "{second}");
    assert_eq!(image_id_and_layers(&fresh, "app:1"), want);
    assert_eq!(
        fresh.ok(&["run", "--rm", "app:1"]),
        "from a\nbuilt\n",
        "the imported layers are unpacked and run"
    );

    // mode=min (the default) leaves out the first stage: a fresh root rebuilds its RUN only.
    let min = format!("{}/cache/app:min", reg.addr);
    plain(
        &env,
        &ctx,
        &[
            "--cache-to",
            &format!("type=registry,ref={min}"),
            "-t",
            "app:1",
        ],
    );
    let third_root = ContainerEnv::new(&[]);
    let third = plain(&third_root, &ctx, &["--cache-from", &min, "-t", "app:1"]);
    let v = verdicts(&third);
    assert!(v[0].1.contains("cache miss"), "{third}");
    assert!(v[1..].iter().all(|(_, v)| v == " ---> CACHED"), "{third}");
    assert_eq!(image_id_and_layers(&third_root, "app:1"), want);

    // Bad values say what to write instead.
    let out = build(
        &env,
        &[
            "--cache-to",
            "type=local,dest=/tmp/x",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use type=registry,ref=HOST/REPO:TAG"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file of a tar, by path (`./` prefixes ignored).
fn tar_file(tar_bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        if path.trim_start_matches("./") == name {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            return Some(out);
        }
    }
    None
}

#[test]
fn outputs_docker_oci_rootfs_tar_and_directory() {
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN echo out > /out.txt && chmod 640 /out.txt && rm /etc/motd\nCMD [\"cat\", \"/out.txt\"]\n",
        )],
    );
    let ctx_s = ctx.to_str().unwrap();
    let dir = env.tmp.path().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    let at = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    // type=docker: `docker load` takes it, with the tag and the same image ID.
    let tag = format!("berthout-{}:1", nonce());
    let mut cleanup = berth_tests::DockerTags::default();
    cleanup.add(&tag);
    let iid = at("iid");
    let docker_tar = at("docker.tar");
    let out = build(
        &env,
        &[
            "-o",
            &format!("type=docker,dest={docker_tar}"),
            "-t",
            &tag,
            "--iidfile",
            &iid,
            ctx_s,
        ],
    );
    ok(&out, "berth build -o type=docker");
    let id = std::fs::read_to_string(&iid).unwrap();
    ok(&docker(&["load", "-i", &docker_tar]), "docker load");
    let inspect: Value =
        serde_json::from_str(&ok(&docker(&["image", "inspect", &tag]), "docker inspect")).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/out.txt"])
    );
    ok(&docker(&["rmi", &tag]), "docker rmi");

    // type=oci without -t: an OCI layout whose manifest's config is the image.
    let oci_tar = at("oci.tar");
    ok(
        &build(&env, &["-o", &format!("type=oci,dest={oci_tar}"), ctx_s]),
        "berth build -o type=oci",
    );
    let oci = std::fs::read(&oci_tar).unwrap();
    assert!(tar_file(&oci, "oci-layout").is_some());
    let index: Value = serde_json::from_slice(&tar_file(&oci, "index.json").unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| tar_file(&oci, &format!("blobs/sha256/{}", &d[7..])).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(manifest_digest)).unwrap();
    assert_eq!(manifest["config"]["digest"], id.as_str());
    for l in manifest["layers"].as_array().unwrap() {
        blob(l["digest"].as_str().unwrap());
    }

    // type=tar: the flattened root file system, the removed file gone.
    let fs_tar = at("fs.tar");
    ok(
        &build(&env, &["-o", &format!("type=tar,dest={fs_tar}"), ctx_s]),
        "berth build -o type=tar",
    );
    let fs = std::fs::read(&fs_tar).unwrap();
    assert_eq!(tar_file(&fs, "out.txt").unwrap(), b"out\n");
    let t = tree(&fs, &["out.txt", "etc"]);
    assert!(t["out.txt"].starts_with("Regular 640 0:0"), "{t:?}");
    assert!(
        t.contains_key("etc/passwd") && !t.contains_key("etc/motd"),
        "{t:?}"
    );

    // `-o DIR` (type=local), and `-o -` (a tar on STDOUT).
    let local = dir.join("rootfs");
    ok(
        &build(&env, &["-o", local.to_str().unwrap(), ctx_s]),
        "berth build -o DIR",
    );
    assert_eq!(
        std::fs::read_to_string(local.join("out.txt")).unwrap(),
        "out\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(local.join("out.txt"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o640);
    assert!(local.join("bin/busybox").is_file());
    assert!(!local.join("etc/motd").exists());
    let out = build(&env, &["-o", "-", ctx_s]);
    let stdout = out.stdout.clone();
    ok(&out, "berth build -o -");
    assert_eq!(tar_file(&stdout, "out.txt").unwrap(), b"out\n");

    // Bad values say what to write instead.
    let out = build(&env, &["-o", "type=registry,name=x", ctx_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("use type=oci, type=docker, type=tar or type=local"),
        "{err}"
    );
}

/// `python3 -m http.server` on 127.0.0.1 serving `dir`; killed on drop.
struct HttpServer {
    child: std::process::Child,
    addr: String,
}

impl HttpServer {
    fn start(dir: &Path) -> Self {
        let port = berth_tests::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Self { child, addr };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the HTTP server on {addr} did not start");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `path -> mtime` of the files in every layer of a `berth save` archive.
fn layer_mtimes(saved: &[u8]) -> BTreeMap<String, u64> {
    let manifest: Value =
        serde_json::from_slice(&tar_file(saved, "manifest.json").unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let blob = tar_file(saved, layer.as_str().unwrap()).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut raw).unwrap();
        let mut ar = tar::Archive::new(&raw[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            out.insert(
                path.trim_start_matches("./").to_owned(),
                e.header().mtime().unwrap(),
            );
        }
    }
    out
}

#[test]
fn add_downloads_urls_with_checksum_mode_and_mtime() {
    let env = env();
    let www = env.tmp.path().join("www");
    write(
        &www,
        &[("files/data.txt", "over http\n"), ("other.bin", "second\n")],
    );
    let set_mtime = |p: &Path, secs: u64| {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    };
    set_mtime(&www.join("files/data.txt"), 1_600_000_000);
    let server = HttpServer::start(&www);
    let url = format!("http://{}/files/data.txt", server.addr);
    let other = format!("http://{}/other.bin", server.addr);
    let sum = berth_tests::sha256(b"second\n");
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM bb:1\nADD {url} /dl/\nADD --checksum={sum} --chown=app {other} /named.bin\nADD --chmod=644 {url} /dl/644.txt\n"
            ),
        )],
    );
    let first = plain(&env, &ctx, &["-t", "add:1"]);
    assert!(
        verdicts(&first)
            .iter()
            .all(|(_, v)| v.contains("cache miss")),
        "{first}"
    );
    let stat = |path: &str| {
        env.ok(&["run", "--rm", "add:1", "stat", "-c", "%a %u %s", path])
            .trim()
            .to_owned()
    };
    assert_eq!(stat("/dl/data.txt"), "600 0 10");
    assert_eq!(stat("/dl/644.txt"), "644 0 10");
    assert_eq!(stat("/named.bin"), "600 1000 7");
    // The layer keeps Last-Modified as the mtime (berth's layer store does not restore mtimes
    // when it unpacks, so look in the saved layers rather than in a container).
    let mtimes = layer_mtimes(&env.berth(&["save", "add:1"]).stdout);
    assert_eq!(
        mtimes.get("dl/data.txt"),
        Some(&1_600_000_000),
        "{mtimes:?}"
    );
    assert_eq!(mtimes.get("dl/644.txt"), Some(&1_600_000_000), "{mtimes:?}");
    assert_eq!(
        env.ok(&["run", "--rm", "add:1", "cat", "/dl/data.txt", "/named.bin"]),
        "over http\nsecond\n"
    );

    // Unchanged downloads are cached; changed bytes miss from that ADD on.
    let again = plain(&env, &ctx, &["-t", "add:1"]);
    assert!(
        verdicts(&again).iter().all(|(_, v)| v == " ---> CACHED"),
        "{again}"
    );
    std::fs::write(www.join("files/data.txt"), "changed!!\n").unwrap();
    set_mtime(&www.join("files/data.txt"), 1_600_000_000);
    let changed = plain(&env, &ctx, &["-t", "add:1"]);
    let v = verdicts(&changed);
    assert!(
        v[0].1.contains("cache miss: the files it copies changed"),
        "{changed}"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "add:1", "cat", "/dl/data.txt"]),
        "changed!!\n"
    );

    // A wrong checksum, a missing file and COPY of a URL fail clearly, leaving no temp file.
    let bad = env.tmp.path().join("bad");
    let cases = [
        (
            format!(
                "FROM bb:1\nADD --checksum=sha256:{} {other} /x\n",
                "0".repeat(64)
            ),
            format!("digest mismatch: --checksum=sha256:{}", "0".repeat(64)),
        ),
        (
            format!("FROM bb:1\nADD http://{}/missing.txt /x\n", server.addr),
            "with status 404 Not Found".to_owned(),
        ),
        (
            format!("FROM bb:1\nCOPY {url} /x\n"),
            "source can't be a URL for COPY".to_owned(),
        ),
    ];
    for (dockerfile, want) in &cases {
        write(&bad, &[("Dockerfile", dockerfile)]);
        let out = build(&env, &[bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{dockerfile}: {err}");
        assert!(err.contains(want.as_str()), "{dockerfile}: {err}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.data_root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cache_mount_sharing_locked_waits_and_private_splits() {
    let env = env();
    // One RUN naming a locked cache twice gets one directory and does not wait for itself.
    let twice = env.tmp.path().join("twice");
    write(
        &twice,
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN --mount=type=cache,target=/a,id=t,sharing=locked --mount=type=cache,target=/b,id=t,sharing=locked touch /a/x && test -e /b/x\n",
        )],
    );
    let mut child = env
        .cmd(&["build", "-q", twice.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "a RUN with one locked cache mounted twice hung or failed: {status:?}"
    );
    let cases = [
        (
            "locked",
            "RUN --mount=type=cache,target=/c,id=l,sharing=locked (test -e /c/busy && echo overlap; touch /c/busy; sleep 3; rm -f /c/busy) > /seen",
        ),
        (
            "private",
            "RUN --mount=type=cache,target=/c,id=p,sharing=private touch /c/$N && sleep 3 && ls /c > /seen",
        ),
    ];
    for (sharing, run) in cases {
        let ctx = env.tmp.path().join(sharing);
        write(
            &ctx,
            &[("Dockerfile", &format!("FROM bb:1\nARG N\n{run}\n"))],
        );
        // Two builds of the same data root at once.
        let children: Vec<_> = ["1", "2"]
            .iter()
            .map(|n| {
                env.cmd(&[
                    "build",
                    "-q",
                    "--build-arg",
                    &format!("N={n}"),
                    "-t",
                    &format!("{sharing}:{n}"),
                    ctx.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            ok(&out, sharing);
        }
        for n in ["1", "2"] {
            let seen = env.ok(&["run", "--rm", &format!("{sharing}:{n}"), "cat", "/seen"]);
            match sharing {
                "locked" => {
                    assert_eq!(seen, "", "the second RUN ran while the first held the lock")
                }
                _ => assert_eq!(seen, format!("{n}\n"), "the private cache was shared"),
            }
        }
    }
}

#[test]
fn independent_stages_build_in_parallel() {
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    // Each of the first two stages waits (at most 10 s) for the other to show up in a shared
    // cache mount: built one after the other, the first would give up and fail.
    let meet = |me: &str, other: &str| {
        format!(
            "FROM bb:1 AS {me}\nARG T\nRUN --mount=type=cache,target=/c,id=meet touch /c/{me}-$T && i=0; while [ ! -e /c/{other}-$T ]; do i=$((i+1)); [ $i -gt 100 ] && exit 7; sleep 0.1; done; echo {me} > /{me}.txt\n"
        )
    };
    let dockerfile = format!(
        "{}{}FROM bb:1\nCOPY --from=a /a.txt /a.txt\nCOPY --from=b /b.txt /b.txt\nCMD [\"cat\", \"/a.txt\", \"/b.txt\"]\n",
        meet("a", "b"),
        meet("b", "a")
    );
    write(&ctx, &[("Dockerfile", &dockerfile)]);
    let token = format!("T={}", nonce());
    let log = plain(&env, &ctx, &["--build-arg", &token, "-t", "par:1"]);
    assert_eq!(env.ok(&["run", "--rm", "par:1"]), "a\nb\n");
    // The output reads as a sequential build: steps in Dockerfile order, each with its verdict.
    let steps: Vec<usize> = log
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .map(|l| l.split('/').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=10).collect::<Vec<_>>(), "{log}");
    // A stage failing while another runs: its exit code and output, the other stage's output
    // too, and no mount or scratch directory left.
    let bad = env.tmp.path().join("bad");
    write(
        &bad,
        &[(
            "Dockerfile",
            "FROM bb:1 AS a\nRUN echo failing && exit 3\nFROM bb:1 AS b\nRUN sleep 1 && echo other done\nFROM bb:1\nCOPY --from=a /etc/motd /a\nCOPY --from=b /etc/motd /b\n",
        )],
    );
    let out = build(&env, &["--no-cache", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("failing") && err.contains("other done"),
        "{err}"
    );
    assert!(
        err.contains("The command '/bin/sh -c echo failing && exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    let root = env.data_root();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()), "{mounts}");
    let leftovers: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // (The second stage's `ARG T` may be served from the first's, whichever stored it first.)
    let v = verdicts(&log);
    assert!(
        v.iter()
            .filter(|(i, _)| !i.starts_with("ARG"))
            .all(|(_, v)| v.contains("cache miss")),
        "{log}"
    );
}

#[test]
fn registry_cache_through_a_distribution_registry_with_basic_auth() {
    let env = env();
    let dir = env.tmp.path().join("dist");
    std::fs::create_dir_all(&dir).unwrap();
    let line = berth_tests::run(Command::new("htpasswd").args(["-Bbn", "user", "pass"]));
    std::fs::write(dir.join("htpasswd"), line).unwrap();
    let reg = berth_tests::Distribution::start(
        &dir,
        &format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            dir.join("htpasswd").display()
        ),
    );
    // One user's credentials (own config dirs), two data roots.
    let home = env.tmp.path().join("home");
    for d in ["berth-config", "home", "docker-config"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    let as_user = |e: &ContainerEnv, args: &[&str]| -> Output {
        let mut c = e.cmd(args);
        c.env("BERTH_CONFIG_DIR", home.join("berth-config"))
            .env("HOME", home.join("home"))
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .env("BERTH_NO_PROGRESS", "1");
        if args[0] == "login" {
            let mut child = c
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(b"pass").unwrap();
            child.wait_with_output().unwrap()
        } else {
            c.output().unwrap()
        }
    };
    let base = format!("{}/base/bb:1", reg.addr);
    let cache = format!("{}/cache/app:1", reg.addr);
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN echo cached > /c.txt\nCMD [\"cat\", \"/c.txt\"]\n"),
        )],
    );
    let ctx_s = ctx.to_str().unwrap();
    env.ok(&["tag", "bb:1", &base]);
    // Without credentials the export fails, saying so.
    let out = as_user(
        &env,
        &[
            "build",
            "--cache-to",
            &format!("type=registry,ref={cache}"),
            ctx_s,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("its cache could not be exported"), "{err}");
    assert!(err.contains("unauthorized"), "{err}");
    ok(
        &as_user(
            &env,
            &["login", &reg.addr, "-u", "user", "--password-stdin"],
        ),
        "login",
    );
    ok(&as_user(&env, &["push", &base]), "push");
    let to = format!("type=registry,ref={cache},mode=max");
    ok(
        &as_user(&env, &["build", "--cache-to", &to, "-t", "app:1", ctx_s]),
        "build --cache-to",
    );
    let fresh = ContainerEnv::new(&[]);
    let out = as_user(
        &fresh,
        &[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &cache,
            "-t",
            "app:1",
            ctx_s,
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out, "build --cache-from");
    let v = verdicts(&log);
    assert!(
        !v.is_empty() && v.iter().all(|(_, v)| v == " ---> CACHED"),
        "{log}"
    );
    assert_eq!(
        image_id_and_layers(&fresh, "app:1"),
        image_id_and_layers(&env, "app:1")
    );
    assert_eq!(fresh.ok(&["run", "--rm", "app:1"]), "cached\n");
}

#[test]
fn registry_cache_is_read_through_a_mirror() {
    let env = env();
    let upstream = berth_tests::Registry::start(&env.tmp.path().join("up"), &[]);
    let mirror = berth_tests::Registry::start(
        &env.tmp.path().join("mirror"),
        &["--mirror", &format!("{}={}", upstream.addr, upstream.url())],
    );
    let base = format!("{}/base/bb:1", upstream.addr);
    let cache = format!("{}/cache/app:1", upstream.addr);
    env.ok(&["tag", "bb:1", &base]);
    env.ok(&["push", &base]);
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN echo mirrored > /m.txt\n"),
        )],
    );
    let to = format!("type=registry,ref={cache}");
    plain(&env, &ctx, &["--cache-to", &to, "-t", "app:1"]);
    // A fresh data root that may reach the upstream only through the mirror.
    let fresh = ContainerEnv::new(&[]);
    let cfg = fresh.tmp.path().join("daemon.json");
    std::fs::write(
        &cfg,
        serde_json::to_vec(&serde_json::json!({
            "registry-mirror-map": {upstream.addr.clone(): [mirror.url()]},
            "registry-mirrors-only": true,
        }))
        .unwrap(),
    )
    .unwrap();
    let out = fresh
        .cmd(&[
            "--config-file",
            cfg.to_str().unwrap(),
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &cache,
            "-t",
            "app:1",
            ctx.to_str().unwrap(),
        ])
        .env("BERTH_NO_PROGRESS", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out, "build --cache-from through the mirror");
    let v = verdicts(&log);
    assert!(
        !v.is_empty() && v.iter().all(|(_, v)| v == " ---> CACHED"),
        "{log}"
    );
    let mirror_log = mirror.log_text();
    assert!(
        mirror_log.contains("/v2/cache/app/manifests/1"),
        "the cache manifest did not come through the mirror: {mirror_log}"
    );
    assert_eq!(
        image_id_and_layers(&fresh, "app:1"),
        image_id_and_layers(&env, "app:1")
    );
}

#[test]
fn add_downloads_go_through_the_http_proxy() {
    // A one-shot proxy: answers any request itself and remembers its request line.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let seen = std::thread::spawn(move || {
        // Gives up after 60 s, so a build that bypasses the proxy fails instead of hanging.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => return "no request reached the proxy".to_owned(),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            std::io::Read::read_exact(&mut conn, &mut byte).unwrap();
            head.push(byte[0]);
        }
        let body = "via proxy\n";
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap()
            .to_owned()
    });
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    // Port 9 on loopback: nothing listens there, so only the proxy can answer.
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb:1\nADD http://127.0.0.1:9/f.txt /f.txt\n",
        )],
    );
    let out = env
        .cmd(&["build", "-q", "-t", "proxied:1", ctx.to_str().unwrap()])
        .env("HTTP_PROXY", format!("http://{proxy}"))
        .env("http_proxy", format!("http://{proxy}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    ok(&out, "build through the proxy");
    assert_eq!(
        seen.join().unwrap(),
        "GET http://127.0.0.1:9/f.txt HTTP/1.1"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "proxied:1", "cat", "/f.txt"]),
        "via proxy\n"
    );
}
