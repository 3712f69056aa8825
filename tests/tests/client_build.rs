//! `berth build` end to end, as root: the same Dockerfiles built by berth and by the Docker
//! Engine's classic builder (`DOCKER_BUILDKIT=0`, from `bb:1` loaded into Docker under a unique
//! name) give the same files, modes, owners, env, cmd and entrypoint; the image runs under
//! `berth run` and, after `berth save | docker load`, under Docker; the cache; bad input.

mod build_common;

use berth_tests::{nonce, ContainerEnv};
use build_common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

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
