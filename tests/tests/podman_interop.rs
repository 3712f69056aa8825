//! podman against berth-registry with private containers configuration and storage:
//! `podman pull oci:`, `podman push`, `podman rmi`, `podman pull` back, `podman run`.

use std::process::Command;

use berth_tests::*;

fn podman(env: &PodmanEnv, args: &[&str]) -> String {
    run(env.podman().args(args))
}

/// `podman pull oci:img:v1`, relative to the layout's parent: podman names the image after the
/// path, and temporary directory names are not valid (lowercase) repository names.
fn pull_layout(env: &PodmanEnv, layout: &Layout) -> String {
    let parent = layout.dir.parent().unwrap();
    let name = layout.dir.file_name().unwrap().to_str().unwrap();
    run(env
        .podman()
        .current_dir(parent)
        .args(["pull", "--quiet", &format!("oci:{name}:v1")]))
}

#[test]
fn podman_push_rmi_pull_keeps_the_digest() {
    require("podman", "apt-get install podman");
    require("runc", "apt-get install runc");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let env = PodmanEnv::new(&tmp.path().join("podman"));
    let (layout, m) = unique_busybox_image(&tmp.path().join("img"), 3, "v1");

    // Into podman's storage from the OCI layout.
    let out = pull_layout(&env, &layout);
    let id = out
        .lines()
        .last()
        .expect("podman pull prints the image id")
        .trim()
        .to_owned();
    let reference = format!("{}/pod/app:v1", reg.addr);
    podman(&env, &["tag", &id, &reference]);

    // Push, recording the manifest digest podman wrote.
    let digest_file = tmp.path().join("digest");
    podman(
        &env,
        &[
            "push",
            "--tls-verify=false",
            "--digestfile",
            &digest_file.display().to_string(),
            &reference,
        ],
    );
    let pushed = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let served = get_manifest(&reg.url(), "pod/app", "v1");
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(
        served.header("docker-content-digest"),
        Some(pushed.as_str())
    );
    assert_eq!(
        sha256(&served.body),
        pushed,
        "registry serves other bytes than podman pushed"
    );
    let doc = served.json();
    assert_eq!(doc["layers"].as_array().unwrap().len(), 5);
    // podman keeps the config as it is; layers may be recompressed.
    let original: serde_json::Value =
        serde_json::from_slice(&layout_blob(&layout.dir, &m.digest)).unwrap();
    assert_eq!(doc["config"]["digest"], original["config"]["digest"]);

    // Remove it locally and pull it back from the registry.
    podman(&env, &["rmi", "--force", &id]);
    let images = podman(&env, &["images", "--quiet"]);
    assert!(images.trim().is_empty(), "images left after rmi: {images}");
    podman(&env, &["pull", "--quiet", "--tls-verify=false", &reference]);
    let digest = podman(
        &env,
        &["image", "inspect", "--format", "{{.Digest}}", &reference],
    );
    assert_eq!(
        digest.trim(),
        pushed,
        "podman reports another digest after pull"
    );
    let repo_digests = podman(
        &env,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &reference,
        ],
    );
    assert!(
        repo_digests.contains(&format!("{}/pod/app@{pushed}", reg.addr)),
        "RepoDigests {repo_digests} lack {pushed}"
    );
    let new_id = podman(
        &env,
        &["image", "inspect", "--format", "{{.Id}}", &reference],
    );
    assert_eq!(new_id.trim(), id, "pulled image has another config");

    // skopeo sees the same digest.
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}")));
    assert_eq!(sha256(raw.as_bytes()), pushed);

    // And the pulled image runs.
    let out = podman(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &reference,
            "/bin/busybox",
            "cat",
            "/etc/layer-2",
        ],
    );
    assert_eq!(out, "layer 2\n");
}

#[test]
fn podman_push_docker_format_and_pull_by_digest() {
    require("podman", "apt-get install podman");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let env = PodmanEnv::new(&tmp.path().join("podman"));
    let (layout, _) = unique_busybox_image(&tmp.path().join("img"), 1, "v1");
    let out = pull_layout(&env, &layout);
    let id = out.lines().last().unwrap().trim().to_owned();
    let reference = format!("{}/pod/v2s2:v1", reg.addr);
    let digest_file = tmp.path().join("digest");
    podman(
        &env,
        &[
            "push",
            "--tls-verify=false",
            "--format",
            "v2s2",
            "--digestfile",
            &digest_file.display().to_string(),
            &id,
            &format!("docker://{reference}"),
        ],
    );
    let pushed = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let served = get_manifest(&reg.url(), "pod/v2s2", "v1");
    assert_eq!(
        served.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        served.header("docker-content-digest"),
        Some(pushed.as_str())
    );
    podman(&env, &["rmi", "--force", &id]);
    let by_digest = format!("{}/pod/v2s2@{pushed}", reg.addr);
    podman(&env, &["pull", "--quiet", "--tls-verify=false", &by_digest]);
    let digest = podman(
        &env,
        &["image", "inspect", "--format", "{{.Digest}}", &by_digest],
    );
    assert_eq!(digest.trim(), pushed);
}
