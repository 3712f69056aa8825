//! `berth build` with things that come from elsewhere, end to end as root: the build cache
//! exported to and imported from registries (berth-registry, the CNCF registry with auth, a
//! mirror), `ADD` of URLs (directly and through a proxy), and build contexts given by URL (a tar
//! over HTTP, a Dockerfile over HTTP, a Git repository served over HTTP).

mod build_common;

use berth_tests::ContainerEnv;
use build_common::*;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
    // Last-Modified is the file's mtime, in the layer and in a container.
    assert_eq!(
        env.ok(&["run", "--rm", "add:1", "stat", "-c", "%Y", "/dl/data.txt"])
            .trim(),
        "1600000000"
    );
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

/// `git -c user…` in `dir`.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=berth-test",
            "-c",
            "user.email=test@berth.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn contexts_from_urls_a_tar_a_dockerfile_and_a_git_repository() {
    berth_tests::require("git", "apt-get install git");
    berth_tests::require("python3", "apt-get install python3");
    let env = env();
    let www = env.tmp.path().join("www");
    // A context as a tar.gz.
    let ctx = env.tmp.path().join("ctx");
    write(
        &ctx,
        &[
            ("Dockerfile", "FROM bb:1\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", "from a tar\n"),
        ],
    );
    std::fs::create_dir_all(&www).unwrap();
    let tar = Command::new("tar")
        .arg("czf")
        .arg(www.join("ctx.tar.gz"))
        .arg("-C")
        .arg(&ctx)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    // A Dockerfile alone.
    write(
        &www,
        &[("remote.Dockerfile", "FROM bb:1\nRUN echo remote > /r.txt\n")],
    );
    // A Git repository, served over HTTP as a bare clone (git's "dumb" HTTP).
    let repo = env.tmp.path().join("repo");
    write(
        &repo,
        &[
            ("sub/Dockerfile", "FROM bb:1\nCOPY v.txt /v.txt\n"),
            ("sub/v.txt", "one\n"),
            ("secret.txt", "outside the sub-directory\n"),
        ],
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("sub/v.txt"), "two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    git(
        env.tmp.path(),
        &["clone", "-q", "--bare", "repo", "www/repo.git"],
    );
    git(&www.join("repo.git"), &["update-server-info"]);
    let server = HttpServer::start(&www);
    let url = |path: &str| format!("http://{}/{path}", server.addr);
    let cat = |image: &str, file: &str| env.ok(&["run", "--rm", image, "cat", file]);

    ok(
        &build(&env, &["-q", "-t", "url:tar", &url("ctx.tar.gz")]),
        "tar context",
    );
    assert_eq!(cat("url:tar", "/hello.txt"), "from a tar\n");
    ok(
        &build(&env, &["-q", "-t", "url:df", &url("remote.Dockerfile")]),
        "Dockerfile by URL",
    );
    assert_eq!(cat("url:df", "/r.txt"), "remote\n");
    ok(
        &build(&env, &["-q", "-t", "url:v1", &url("repo.git#v1:sub")]),
        "Git context at a tag",
    );
    assert_eq!(cat("url:v1", "/v.txt"), "one\n");
    ok(
        &build(&env, &["-q", "-t", "url:main", &url("repo.git#:sub")]),
        "Git context at the default branch",
    );
    assert_eq!(cat("url:main", "/v.txt"), "two\n");

    // Bad input: a sub-directory leaving the clone, a missing tar, a missing ref.
    let err = |args: &[&str]| {
        let out = build(&env, args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err(&["-t", "url:bad", &url("repo.git#v1:../..")]);
    assert!(e.contains("inside the repository"), "{e}");
    let e = err(&["-t", "url:bad", &url("missing.tar.gz")]);
    assert!(e.contains("404"), "{e}");
    let e = err(&["-t", "url:bad", &url("repo.git#no-such-ref")]);
    assert!(e.contains("unable to prepare context: git"), "{e}");
    // Nothing is left in the store's scratch space.
    let tmp = env.data_root().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
}
