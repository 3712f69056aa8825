//! `run`/`create --pull missing|always|never` (issue 12, item 1): an image that is not in the
//! store is pulled first, with Docker's `Unable to find image` line, also through a
//! `registry-mirrors` mirror for Docker Hub names; stdout carries only the container's output.

use berth_tests::{ContainerEnv, Registry};

fn text(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn run_pulls_a_missing_image_and_honours_the_policy() {
    let env = ContainerEnv::new(&[]);
    let registry = Registry::start(&env.tmp.path().join("reg"), &[]);
    let image = format!("{}/team/bb:1", registry.addr);
    env.ok(&["tag", "bb:1", &image]);
    env.ok(&["push", &image]);
    env.ok(&["rmi", &image]);
    // never: not pulled.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &image,
        "true",
    ]));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No such image"), "{err}");
    // missing (the default): pulled, then run; stdout is the container's alone.
    let (code, out, err) =
        text(&env.berth(&["run", "--rm", "--network", "none", &image, "echo", "hi"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hi\n");
    assert!(
        err.contains(&format!("Unable to find image '{image}' locally")),
        "{err}"
    );
    assert!(err.contains("Status: Downloaded newer image"), "{err}");
    // Present now: no pull.
    let (code, _, err) = text(&env.berth(&["run", "--rm", "--network", "none", &image, "true"]));
    assert_eq!(code, 0);
    assert!(!err.contains("Pulling from"), "{err}");
    // always: pulled although present (up to date), no `Unable to find` line.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--network",
        "none",
        &image,
        "true",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Image is up to date"), "{err}");
    assert!(!err.contains("Unable to find"), "{err}");
    // create pulls too and prints only the ID on stdout.
    env.ok(&["rmi", &image]);
    let (code, out, err) = text(&env.berth(&["create", "--network", "none", &image, "true"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 64, "{out}");
    // An image nobody has: 125 with the pull's reason.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        &format!("{}/team/nope:1", registry.addr),
        "true",
    ]));
    assert_eq!(code, 125);
    assert!(err.contains("Unable to find image"), "{err}");
    let bad = env.berth(&["run", "--pull", "sometimes", "bb:1", "true"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn run_pulls_docker_hub_names_through_a_mirror() {
    let env = ContainerEnv::new(&[]);
    let mirror = Registry::start(&env.tmp.path().join("mirror"), &[]);
    // Docker Hub content on a mirror lives under library/.
    let on_mirror = format!("{}/library/tiny:latest", mirror.addr);
    env.ok(&["tag", "bb:1", &on_mirror]);
    env.ok(&["push", &on_mirror]);
    let config = env.tmp.path().join("daemon.json");
    std::fs::write(
        &config,
        serde_json::json!({"registry-mirrors": [mirror.url()]}).to_string(),
    )
    .unwrap();
    let out = env.berth(&[
        "--config-file",
        config.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "none",
        "tiny",
        "echo",
        "mirrored",
    ]);
    let (code, out, err) = text(&out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "mirrored\n");
    assert!(
        err.contains("Unable to find image 'tiny:latest' locally"),
        "{err}"
    );
    assert!(
        err.contains(&format!("Pulled from mirror {}", mirror.url())),
        "{err}"
    );
}

/// Pushes every blob of `layout`, its image manifests by digest, then its index as `repo:tag`.
fn push_layout(
    base: &str,
    layout: &berth_tests::Layout,
    index: &berth_tests::Blob,
    repo: &str,
    tag: &str,
) {
    use berth_tests::{layout_blob, layout_blobs, push_blob, push_manifest};
    let index_bytes = layout_blob(&layout.dir, &index.digest);
    let parsed: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let children: Vec<String> = parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    for digest in layout_blobs(&layout.dir) {
        if digest != index.digest && !children.contains(&digest) {
            push_blob(base, repo, &layout_blob(&layout.dir, &digest));
        }
    }
    for child in &children {
        let bytes = layout_blob(&layout.dir, child);
        let media = "application/vnd.oci.image.manifest.v1+json";
        push_manifest(base, repo, child, media, &bytes);
    }
    let media = "application/vnd.oci.image.index.v1+json";
    push_manifest(base, repo, tag, media, &index_bytes);
}

#[test]
fn platform_picks_the_image_of_an_index_and_refuses_another() {
    let env = ContainerEnv::new(&[]);
    let registry = Registry::start(&env.tmp.path().join("reg"), &[]);
    // An index of a runnable linux/amd64 busybox image and a linux/arm64 one.
    let mut layout = berth_tests::Layout::new(&env.tmp.path().join("layout"));
    let (bb, bb_diff) = berth_tests::busybox_layer();
    layout.add_image(&[bb], &[bb_diff], "amd64", None);
    let (arm, arm_diff) = berth_tests::layer(&[("etc/arch", b"arm64\n", 0o644)]);
    layout.add_image(&[arm], &[arm_diff], "arm64", None);
    let index = layout.wrap_in_index("multi");
    push_layout(&registry.url(), &layout, &index, "team/multi", "1");
    let image = format!("{}/team/multi:1", registry.addr);
    let arch = |env: &ContainerEnv| {
        env.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            &image,
        ])
        .trim()
        .to_owned()
    };

    // The arm64 image of the index is pulled for --platform linux/arm64 (created, not run).
    let (code, _, err) = text(&env.berth(&[
        "create",
        "--platform",
        "linux/arm64",
        "--network",
        "none",
        &image,
        "true",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(arch(&env), "linux/arm64");
    // A local image of another platform counts as missing: the amd64 one is pulled, and runs.
    let (code, out, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo hi",
    ]));
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    assert!(
        err.contains(&format!("Unable to find image '{image}' locally")),
        "{err}"
    );
    assert_eq!(arch(&env), "linux/amd64");
    // --pull never: refused with Docker's message, nothing pulled.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        "linux/arm64",
        &image,
        "true",
    ]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!(
            "image with reference {image} was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64"
        )),
        "{err}"
    );
    assert_eq!(arch(&env), "linux/amd64");
    // A platform the index lacks, and a malformed one.
    let (code, _, err) =
        text(&env.berth(&["run", "--rm", "--platform", "linux/s390x", &image, "true"]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );
    let (code, _, err) =
        text(&env.berth(&["run", "--rm", "--platform", "linux//x", &image, "true"]));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid platform"), "{err}");

    // A single-platform image of another platform: pulled, then refused.
    let single = format!("{}/team/bb:1", registry.addr);
    env.ok(&["tag", "bb:1", &single]);
    env.ok(&["push", &single]);
    env.ok(&["rmi", &single]);
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--network",
        "none",
        &single,
        "true",
    ]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(
            "does not match the specified platform: wanted linux/arm64, actual: linux/amd64"
        ),
        "{err}"
    );
    // The host's platform, as Docker users on other machines write it: accepted as it is.
    let (code, out, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        "--network",
        "none",
        &single,
        "echo",
        "ok",
    ]));
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
}
