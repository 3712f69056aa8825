//! skopeo against berth-registry: OCI layouts in and out, multi-arch indexes, docker-archive,
//! and Docker schema 2 conversion. Digests must survive every round trip byte for byte.

use std::path::Path;
use std::process::Command;

use berth_tests::*;
use serde_json::Value;

fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo").args(args))
}

/// `skopeo inspect --raw` of a registry reference: the exact bytes the registry serves.
fn inspect_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", reference])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The single entry of a layout's `index.json`.
fn layout_top(dir: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(
        manifests.len(),
        1,
        "{} should hold one entry: {index}",
        dir.display()
    );
    manifests[0].clone()
}

#[test]
fn multi_layer_image_round_trips_through_oci_and_docker_archive() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    // busybox + 4 small layers + a unique layer = 6 layers.
    let (layout, m) = unique_busybox_image(&tmp.path().join("img"), 4, "v1");
    let manifest: Value = serde_json::from_slice(&layout_blob(&layout.dir, &m.digest)).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 6);
    let remote = format!("docker://{}/interop/busybox:v1", reg.addr);

    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.dir.display()),
        &remote,
    ]);

    let raw = inspect_raw(&remote);
    assert_eq!(
        sha256(&raw),
        m.digest,
        "registry must serve the pushed manifest byte for byte"
    );
    let by_digest = inspect_raw(&format!(
        "docker://{}/interop/busybox@{}",
        reg.addr, m.digest
    ));
    assert_eq!(raw, by_digest);
    let served = get_manifest(&reg.url(), "interop/busybox", "v1");
    assert_eq!(served.status, 200);
    assert_eq!(
        served.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        served.header("docker-content-digest"),
        Some(m.digest.as_str())
    );

    // Pull back into a new OCI layout: same top-level digest, same set of blobs.
    let back = tmp.path().join("back");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", back.display()),
    ]);
    assert_eq!(layout_top(&back)["digest"], m.digest.as_str());
    assert_eq!(layout_blobs(&back), layout_blobs(&layout.dir));

    // Pull into a docker-archive: config identical, layers decompressed to their diff ids.
    let archive = tmp.path().join("busybox.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("docker-archive:{}:interop/busybox:v1", archive.display()),
    ]);
    let mut files = std::collections::HashMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(path, data);
    }
    let docker_manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let entry = &docker_manifest[0];
    assert_eq!(
        entry["RepoTags"][0], "docker.io/interop/busybox:v1",
        "skopeo normalizes the tag"
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = &files[entry["Config"].as_str().unwrap()];
    assert_eq!(
        sha256(config),
        config_digest,
        "config in the docker-archive must be unchanged"
    );
    let config: Value = serde_json::from_slice(config).unwrap();
    let layers: Vec<String> = entry["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| sha256(&files[l.as_str().unwrap()]))
        .collect();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        layers, diff_ids,
        "docker-archive layers must decompress to the image's diff ids"
    );
}

#[test]
fn multi_arch_index_round_trips_with_all_children() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
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
    let arm64 = layout.add_image(&[bb, arm], &[bb_diff, arm_diff], "arm64", None);
    let index = layout.wrap_in_index("multi");
    let remote = format!("docker://{}/interop/multi:multi", reg.addr);

    skopeo(&[
        "copy",
        "--multi-arch",
        "all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.dir.display()),
        &remote,
    ]);

    let raw = inspect_raw(&remote);
    assert_eq!(
        sha256(&raw),
        index.digest,
        "index must be served byte for byte"
    );
    let served = get_manifest(&reg.url(), "interop/multi", "multi");
    assert_eq!(
        served.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert_eq!(
        served.header("docker-content-digest"),
        Some(index.digest.as_str())
    );
    for child in [&amd64, &arm64] {
        let raw = inspect_raw(&format!(
            "docker://{}/interop/multi@{}",
            reg.addr, child.digest
        ));
        assert_eq!(sha256(&raw), child.digest);
        assert_eq!(raw, layout_blob(&layout.dir, &child.digest));
    }

    // `--all` pull back: identical index, children and blobs.
    let back = tmp.path().join("back");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:multi", back.display()),
    ]);
    let top = layout_top(&back);
    assert_eq!(top["digest"], index.digest.as_str());
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(layout_blobs(&back), layout_blobs(&layout.dir));

    // A single-platform pull of the index picks the arm64 child when asked for it.
    let arm_back = tmp.path().join("arm");
    skopeo(&[
        "copy",
        "--override-arch",
        "arm64",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:arm", arm_back.display()),
    ]);
    assert_eq!(layout_top(&arm_back)["digest"], arm64.digest.as_str());
}

#[test]
fn v2s2_push_is_served_as_docker_schema2() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let (layout, m) = unique_busybox_image(&tmp.path().join("img"), 2, "v1");
    let remote = format!("docker://{}/interop/schema2:v1", reg.addr);
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.dir.display()),
        &remote,
    ]);

    const V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
    let raw = inspect_raw(&remote);
    let doc: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["mediaType"], V2S2);
    assert_eq!(
        doc["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    for l in doc["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    // Converted manifest, same layers.
    let oci: Value = serde_json::from_slice(&layout_blob(&layout.dir, &m.digest)).unwrap();
    let digests = |v: &Value| -> Vec<String> {
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(digests(&doc), digests(&oci));

    let digest = sha256(&raw);
    for method in ["GET", "HEAD"] {
        let r = http(
            method,
            &format!("{}/v2/interop/schema2/manifests/v1", reg.url()),
            &[("Accept", V2S2)],
            None,
        );
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(V2S2), "{method}");
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "{method}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(raw.len().to_string().as_str()),
            "{method}"
        );
        if method == "GET" {
            assert_eq!(r.body, raw);
        }
    }

    // And skopeo can pull the schema 2 image back into an OCI layout.
    let back = tmp.path().join("back");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", back.display()),
    ]);
    let _ = layout_blobs(&back);
}

#[test]
fn copies_between_berth_and_cncf_distribution_keep_every_digest() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let dist = Distribution::start(tmp.path(), "");
    let mut layout = Layout::new(&tmp.path().join("multi"));
    let (bb, bb_diff) = busybox_layer();
    let (extra, extra_diff) = layer(&[("etc/id", nonce().as_bytes(), 0o644)]);
    let amd64 = layout.add_image(
        &[bb.clone(), extra.clone()],
        &[bb_diff.clone(), extra_diff.clone()],
        "amd64",
        None,
    );
    let arm64 = layout.add_image(&[extra, bb], &[extra_diff, bb_diff], "arm64", None);
    let index = layout.wrap_in_index("multi");

    let hops = [
        format!("oci:{}:multi", layout.dir.display()),
        format!("docker://{}/hop/one:multi", reg.addr),
        format!("docker://{}/hop/two:multi", dist.addr),
        format!("docker://{}/hop/three:multi", reg.addr),
    ];
    for pair in hops.windows(2) {
        skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &pair[0],
            &pair[1],
        ]);
    }
    for hop in &hops[1..] {
        assert_eq!(
            sha256(&inspect_raw(hop)),
            index.digest,
            "index digest at {hop}"
        );
        let repo = hop.rsplit_once(':').unwrap().0;
        for child in [&amd64, &arm64] {
            assert_eq!(
                sha256(&inspect_raw(&format!("{repo}@{}", child.digest))),
                child.digest,
                "{repo}"
            );
        }
    }
}
