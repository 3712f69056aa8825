//! `berth save`, `berth load` and `berth import` against the real peers: archives Berth writes
//! load into Docker, podman and skopeo; archives they write load into Berth with the same image
//! ID. Every `berth` runs with its own `--data-root`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_tests::*;
use serde_json::Value;

/// `berth --data-root ROOT …`, without inherited Berth settings.
fn berth(root: &Path) -> Command {
    let mut c = Command::new(bin("berth"));
    for var in ["BERTH_CONFIG", "BERTH_DATA_ROOT", "BERTH_DEFAULT_PLATFORM"] {
        c.env_remove(var);
    }
    c.env("BERTH_NO_PROGRESS", "1").arg("--data-root").arg(root);
    c
}

/// Runs `cmd` with `input` on stdin; returns the output whatever the status.
fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
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

/// A plain tar of a busybox root file system (`/bin/busybox`, `/bin/sh`, `/etc/hostname`).
fn rootfs_tar() -> Vec<u8> {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing; install it with `apt-get install busybox-static`"
    );
    let data = std::fs::read(busybox).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["bin/", "etc/", "tmp/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        tar.append_data(&mut h, dir, std::io::empty()).unwrap();
    }
    let hostname = nonce();
    for (path, content, mode) in [
        ("bin/busybox", &data[..], 0o755),
        ("bin/sh", &data[..], 0o755),
        ("etc/hostname", hostname.as_bytes(), 0o644),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, content).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A tag no other run shares (the Docker Engine is machine-wide).
fn unique_tag() -> String {
    nonce().replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

/// The image record file Berth keeps for `id`.
fn record(root: &Path, id: &str) -> PathBuf {
    root.join("images/sha256")
        .join(format!("{}.json", id.trim_start_matches("sha256:")))
}

fn tmp_is_empty(root: &Path) {
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left in tmp/: {left:?}");
}

/// `podman pull oci:NAME:v1` run from the layout's parent (podman names the image after the
/// path); returns the image ID.
fn podman_pull_layout(env: &PodmanEnv, layout: &Layout) -> String {
    let parent = layout.dir.parent().unwrap();
    let name = layout.dir.file_name().unwrap().to_str().unwrap();
    let out =
        run(env
            .podman()
            .current_dir(parent)
            .args(["pull", "--quiet", &format!("oci:{name}:v1")]));
    out.lines()
        .last()
        .expect("podman prints the ID")
        .trim()
        .to_owned()
}

fn config_digest(layout: &Layout, manifest: &Blob) -> String {
    let m: Value = serde_json::from_slice(&layout_blob(&layout.dir, &manifest.digest)).unwrap();
    m["config"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn import_from_stdin_then_save_loads_into_podman_skopeo_and_docker() {
    for tool in ["docker", "podman", "skopeo"] {
        require(tool, &format!("apt-get install {tool}"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("berth");
    let name = format!("berth-archive-test/imported:{}", unique_tag());

    let out = with_stdin(
        berth(&root).args([
            "import",
            "-c",
            "CMD [\"/bin/busybox\", \"sh\"]",
            "-c",
            "ENV GREETING=hello",
            "-m",
            "from a test",
            "-",
            &name,
        ]),
        &rootfs_tar(),
    );
    let id = ok(&out, "berth import -").trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the image ID: {id:?}"
    );
    assert!(record(&root, &id).is_file());

    let archive = tmp.path().join("out.tar");
    ok(
        &berth(&root)
            .args(["save", "-o"])
            .arg(&archive)
            .arg(&name)
            .output()
            .unwrap(),
        "berth save -o",
    );
    // The same archive on stdout, byte for byte.
    let streamed = berth(&root).args(["save", &name]).output().unwrap();
    ok(&streamed, "berth save > pipe");
    assert_eq!(
        streamed.stdout,
        std::fs::read(&archive).unwrap(),
        "`save` to stdout and `save -o` differ"
    );

    // skopeo reads both views of the same tar.
    let docker_view: Value =
        serde_json::from_str(&run(Command::new("skopeo")
            .args(["inspect", &format!("docker-archive:{}", archive.display())])))
        .unwrap();
    assert_eq!(docker_view["Architecture"], "amd64");
    assert!(docker_view["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hello"));
    let oci_view: Value = serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", archive.display())])
    ))
    .unwrap();
    assert_eq!(oci_view["Layers"].as_array().unwrap().len(), 1);

    // podman (private storage).
    let env = PodmanEnv::new(&tmp.path().join("podman"));
    let loaded = run(env.podman().args(["load", "-i"]).arg(&archive));
    assert!(loaded.contains("Loaded image"), "podman load: {loaded}");
    let podman_id = run(env
        .podman()
        .args(["image", "inspect", "--format", "{{.Id}}", &name]));
    assert_eq!(format!("sha256:{}", podman_id.trim()), id);

    // Docker: load, run, clean up.
    let mut guard = DockerTags::default();
    guard.add(&name);
    let loaded = run(Command::new("docker").args(["load", "-i"]).arg(&archive));
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "docker load: {loaded}"
    );
    let docker_id =
        run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &name]));
    assert_eq!(docker_id.trim(), id);
    let comment =
        run(Command::new("docker").args(["image", "inspect", "--format", "{{.Comment}}", &name]));
    assert_eq!(comment.trim(), "from a test");
    run(Command::new("docker").args(["run", "--rm", &name, "/bin/busybox", "true"]));
    tmp_is_empty(&root);
}

#[test]
fn podman_save_in_both_formats_loads_into_berth() {
    require("podman", "apt-get install podman");
    let tmp = tempfile::tempdir().unwrap();
    let env = PodmanEnv::new(&tmp.path().join("podman"));
    let (layout, manifest) = busybox_image(&tmp.path().join("img"), 2, "v1");
    let config = config_digest(&layout, &manifest);
    let id = podman_pull_layout(&env, &layout);
    assert_eq!(format!("sha256:{id}"), config, "podman keeps the config");
    let name = "localhost/archive/pod:v1";
    run(env.podman().args(["tag", &id, name]));

    for format in ["docker-archive", "oci-archive"] {
        let archive = tmp.path().join(format!("{format}.tar"));
        run(env
            .podman()
            .args(["save", "--format", format, "-o"])
            .arg(&archive)
            .arg(name));
        let root = tmp.path().join(format!("berth-{format}"));
        let out = ok(
            &berth(&root)
                .args(["load", "-i"])
                .arg(&archive)
                .output()
                .unwrap(),
            &format!("berth load of podman's {format}"),
        );
        assert_eq!(
            out.trim(),
            "Loaded image: localhost/archive/pod:v1",
            "{format}"
        );
        assert!(record(&root, &config).is_file(), "{format}: image ID");
        let tags: Value =
            serde_json::from_slice(&std::fs::read(root.join("repositories.json")).unwrap())
                .unwrap();
        assert_eq!(
            tags["localhost/archive/pod:v1"],
            config.as_str(),
            "{format}"
        );
        tmp_is_empty(&root);
    }
}

#[test]
fn docker_save_loads_into_berth() {
    require("docker", "apt-get install docker.io");
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("berth-archive-test/docker:{}", unique_tag());
    let rootfs = tmp.path().join("rootfs.tar");
    std::fs::write(&rootfs, rootfs_tar()).unwrap();
    let mut guard = DockerTags::default();
    guard.add(&name);
    let id = run(Command::new("docker")
        .args(["import", "-c", "CMD [\"/bin/sh\"]"])
        .arg(&rootfs)
        .arg(&name))
    .trim()
    .to_owned();
    let archive = tmp.path().join("docker.tar");
    run(Command::new("docker")
        .args(["save", "-o"])
        .arg(&archive)
        .arg(&name));

    let root = tmp.path().join("berth");
    let out = with_stdin(berth(&root).arg("load"), &std::fs::read(&archive).unwrap());
    let out = ok(&out, "berth load < docker save");
    assert_eq!(out.trim(), format!("Loaded image: {name}"));
    assert!(record(&root, &id).is_file(), "same image ID as Docker's");
    tmp_is_empty(&root);

    // Compressed the way users do it (`docker save | gzip`).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&archive).unwrap()).unwrap();
    let root2 = tmp.path().join("berth-gz");
    let out = with_stdin(berth(&root2).args(["load", "-q"]), &gz.finish().unwrap());
    assert_eq!(
        ok(&out, "berth load < docker save | gzip").trim(),
        format!("Loaded image: {name}")
    );
    assert!(record(&root2, &id).is_file());
}

#[test]
fn skopeo_docker_archive_loads_with_the_config_digest_as_id() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifest) = busybox_image(&tmp.path().join("img"), 3, "v1");
    let config = config_digest(&layout, &manifest);
    let archive = tmp.path().join("skopeo.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:v1", layout.dir.display()),
        &format!("docker-archive:{}", archive.display()),
    ]));
    let root = tmp.path().join("berth");
    let out = ok(
        &berth(&root)
            .args(["load", "-i"])
            .arg(&archive)
            .output()
            .unwrap(),
        "berth load of skopeo's docker-archive",
    );
    assert_eq!(out.trim(), format!("Loaded image ID: {config}"));
    assert!(record(&root, &config).is_file());

    // And the OCI layout itself, as a tar.
    let oci_tar = tmp.path().join("layout.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout.dir)
        .arg("-cf")
        .arg(&oci_tar)
        .arg("."));
    let root2 = tmp.path().join("berth-oci");
    let out = ok(
        &berth(&root2)
            .args(["load", "-i"])
            .arg(&oci_tar)
            .output()
            .unwrap(),
        "berth load of an OCI layout tar",
    );
    assert_eq!(out.trim(), format!("Loaded image ID: {config}"));
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record(&root2, &config)).unwrap()).unwrap();
    assert_eq!(rec["manifest"], manifest.digest.as_str(), "manifest kept");
}

#[test]
fn bad_input_is_refused_with_nothing_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("berth");
    let garbage = noise(300_000, 7);
    let out = with_stdin(berth(&root).arg("load"), &garbage);
    assert_eq!(out.status.code(), Some(1), "garbage must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot load images from STDIN"),
        "{err}"
    );
    tmp_is_empty(&root);
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.join("images/sha256"))
            .unwrap()
            .count(),
        0
    );

    // A save that cannot find its image leaves no output file.
    let target = tmp.path().join("never.tar");
    let out = berth(&root)
        .args(["save", "-o"])
        .arg(&target)
        .arg("nope:latest")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("never.tar"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn import_from_an_http_url_with_platform_and_changes() {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&rootfs_tar()).unwrap();
    let body = gz.finish().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rootfs.tar.gz", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
        }
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        conn.write_all(&body).unwrap();
        request_line
    });

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("berth");
    let out = berth(&root)
        .args([
            "import",
            "--platform",
            "linux/arm64/v8",
            "-c",
            "ENTRYPOINT /bin/busybox",
            "-c",
            "EXPOSE 8080",
            &url,
            "example.com/fromurl:v2",
        ])
        .output()
        .unwrap();
    let id = ok(&out, "berth import URL").trim().to_owned();
    assert!(server.join().unwrap().starts_with("GET /rootfs.tar.gz "));
    let config: Value =
        serde_json::from_slice(&std::fs::read(root.join("blobs/sha256").join(&id[7..])).unwrap())
            .unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "/bin/busybox"])
    );
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
    let tags: Value =
        serde_json::from_slice(&std::fs::read(root.join("repositories.json")).unwrap()).unwrap();
    assert_eq!(tags["example.com/fromurl:v2"], id.as_str());
    tmp_is_empty(&root);
}
