//! The machine's Docker Engine against berth-registry: `docker load`, `docker push`,
//! `docker pull`, cross-repository mounts. Everything this test tags is removed again, also when
//! it fails (`DockerTags`).

use std::path::Path;
use std::process::Command;

use berth_tests::*;
use serde_json::Value;

const V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

fn require_docker() {
    require(
        "docker",
        "the Docker CLI and a running Docker Engine are needed",
    );
    require("skopeo", "apt-get install skopeo");
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Docker Engine is not reachable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest digest `docker push` printed (`<tag>: digest: sha256:… size: N`).
fn pushed_digest(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in docker push output:\n{output}"));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

/// The digest of `reference` among the image's RepoDigests (`repo@sha256:…`).
fn repo_digest(reference: &str, repo: &str) -> String {
    let out = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ]);
    let digests: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    digests
        .iter()
        .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{reference} has no RepoDigest for {repo}: {digests:?}"))
}

fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference])
        .trim()
        .to_owned()
}

/// Checks what the registry serves for `repo:tag`: Docker schema 2, the digest Docker reported,
/// every referenced blob present with its digest.
fn assert_served(base: &str, repo: &str, tag: &str, digest: &str) -> Value {
    let r = get_manifest(base, repo, tag);
    assert_eq!(r.status, 200, "GET manifest {repo}:{tag}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(V2S2));
    assert_eq!(r.header("docker-content-digest"), Some(digest));
    assert_eq!(
        sha256(&r.body),
        digest,
        "served bytes do not hash to the digest Docker reported"
    );
    let doc = r.json();
    for d in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().unwrap()) {
        let blob = d["digest"].as_str().unwrap();
        let r = http("GET", &format!("{base}/v2/{repo}/blobs/{blob}"), &[], None);
        assert_eq!(r.status, 200, "blob {blob} of {repo}:{tag}");
        assert_eq!(sha256(&r.body), blob);
        assert_eq!(r.body.len() as u64, d["size"].as_u64().unwrap());
    }
    doc
}

fn load_archive(layout: &Path, tag: &str, reference: &str, archive: &Path) {
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker-archive:{}:{reference}", archive.display())));
    let out = docker(&["load", "-i", &archive.display().to_string()]);
    assert!(
        out.contains(reference),
        "docker load did not report {reference}: {out}"
    );
}

#[test]
fn docker_load_push_rmi_pull_keeps_the_digest() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let base = reg.url();
    let mut tags = DockerTags::default();

    // busybox + 5 small layers + a unique layer.
    let (layout, _) = unique_busybox_image(&tmp.path().join("img"), 5, "v1");
    let repo = format!("{}/dock/app", reg.addr);
    let reference = format!("{repo}:v1");
    tags.add(&reference);
    load_archive(&layout.dir, "v1", &reference, &tmp.path().join("app.tar"));
    let loaded_id = image_id(&reference);

    let out = docker(&["push", &reference]);
    let digest = pushed_digest(&out);
    assert_eq!(
        repo_digest(&reference, &repo),
        digest,
        "RepoDigest after push"
    );
    let doc = assert_served(&base, "dock/app", "v1", &digest);
    assert_eq!(doc["layers"].as_array().unwrap().len(), 7);
    let by_digest = get_manifest(&base, "dock/app", &digest);
    assert_eq!(by_digest.status, 200);
    assert_eq!(sha256(&by_digest.body), digest);

    // A second tag of the same image in another repository: layers are mounted, not re-sent.
    let other = format!("{}/dock/other:v2", reg.addr);
    tags.add(&other);
    docker(&["tag", &reference, &other]);
    let out = docker(&["push", &other]);
    let other_digest = pushed_digest(&out);
    assert_eq!(
        other_digest, digest,
        "the same image must have the same manifest digest"
    );
    assert_served(&base, "dock/other", "v2", &digest);
    let log = reg.log_text();
    for layer in doc["layers"].as_array().unwrap() {
        let encoded = layer["digest"].as_str().unwrap().replace(':', "%3A");
        assert!(
            log.lines()
                .any(|l| l.contains("POST /v2/dock/other/blobs/uploads/?")
                    && l.contains("from=dock%2Fapp")
                    && l.contains(&format!("mount={encoded}"))
                    && l.contains(" 201 ")),
            "layer {} was not mounted from dock/app into dock/other:\n{log}",
            layer["digest"]
        );
    }
    // Only the config (which Docker never mounts) may be uploaded again.
    let patches = log
        .lines()
        .filter(|l| l.contains("PATCH /v2/dock/other/blobs/uploads/"))
        .count();
    assert!(
        patches <= 1,
        "layer bytes were uploaded again to dock/other ({patches} PATCHes):\n{log}"
    );

    // Pushing the same tag again sends nothing: Docker sees every blob with HEAD.
    let out = docker(&["push", &reference]);
    assert_eq!(pushed_digest(&out), digest);
    assert!(
        out.contains("Layer already exists"),
        "second push re-sent layers:\n{out}"
    );

    // Remove every local reference so the pull really downloads, then pull both back.
    docker(&["rmi", &reference, &other]);
    let gone = Command::new("docker")
        .args(["image", "inspect", &loaded_id])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "image {loaded_id} still present after rmi"
    );
    let out = docker(&["pull", &reference]);
    assert!(
        out.contains(&digest),
        "docker pull did not report {digest}:\n{out}"
    );
    assert_eq!(
        image_id(&reference),
        loaded_id,
        "pulled image has another config"
    );
    assert_eq!(
        repo_digest(&reference, &repo),
        digest,
        "RepoDigest after pull"
    );
    docker(&["pull", &other]);
    assert_eq!(image_id(&other), loaded_id);

    // The pulled image's filesystem is the one we built.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "/bin/busybox",
        "cat",
        "/etc/layer-4",
    ]);
    assert_eq!(out, "layer 4\n");
}

#[test]
fn docker_pull_by_digest_of_a_skopeo_pushed_oci_image() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let mut tags = DockerTags::default();
    let (layout, m) = unique_busybox_image(&tmp.path().join("img"), 2, "v1");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/dock/oci:v1", reg.addr)));
    // Docker pulls the OCI manifest as pushed; its RepoDigest is the OCI manifest's digest.
    let by_digest = format!("{}/dock/oci@{}", reg.addr, m.digest);
    tags.add(&by_digest);
    tags.add(&format!("{}/dock/oci:v1", reg.addr));
    let out = docker(&["pull", &by_digest]);
    assert!(out.contains(&m.digest), "{out}");
    assert_eq!(
        repo_digest(&by_digest, &format!("{}/dock/oci", reg.addr)),
        m.digest
    );
    let out = docker(&["pull", &format!("{}/dock/oci:v1", reg.addr)]);
    assert!(
        out.contains(&m.digest),
        "pull by tag reports another digest:\n{out}"
    );
}

#[test]
fn docker_pulls_the_amd64_child_of_a_multi_arch_index() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let mut tags = DockerTags::default();
    let mut layout = Layout::new(&tmp.path().join("multi"));
    let (bb, bb_diff) = busybox_layer();
    let id = nonce();
    let (amd, amd_diff) = layer(&[("etc/arch", format!("amd64 {id}\n").as_bytes(), 0o644)]);
    let (arm, arm_diff) = layer(&[("etc/arch", format!("arm64 {id}\n").as_bytes(), 0o644)]);
    let amd64 = layout.add_image(
        &[bb.clone(), amd],
        &[bb_diff.clone(), amd_diff],
        "amd64",
        None,
    );
    layout.add_image(&[bb, arm], &[bb_diff, arm_diff], "arm64", None);
    let index = layout.wrap_in_index("multi");
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.dir.display()))
        .arg(format!("docker://{}/dock/multi:multi", reg.addr)));

    let reference = format!("{}/dock/multi:multi", reg.addr);
    tags.add(&reference);
    let out = docker(&["pull", &reference]);
    assert!(
        out.contains(&index.digest),
        "docker pull should report the index digest:\n{out}"
    );
    assert_eq!(
        repo_digest(&reference, &format!("{}/dock/multi", reg.addr)),
        index.digest
    );
    let amd64_manifest: Value =
        serde_json::from_slice(&layout_blob(&layout.dir, &amd64.digest)).unwrap();
    assert_eq!(
        image_id(&reference),
        amd64_manifest["config"]["digest"].as_str().unwrap()
    );
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "/bin/busybox",
        "cat",
        "/etc/arch",
    ]);
    assert_eq!(out, format!("amd64 {id}\n"));
}
