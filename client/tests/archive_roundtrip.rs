//! In-process round trips: `import` builds images into a store, `save` writes them, `load` reads
//! them into a fresh store with the same image IDs, manifests and tags.

use std::io::{Read, Write};

use berth_client::archive::import::{import, ImportOptions};
use berth_client::archive::load::load;
use berth_client::archive::save::{save, select};
use berth_client::store::Store;
use berth_client::Reference;
use serde_json::Value;

fn rootfs(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

fn opts(reference: Option<&str>, changes: &[&str]) -> ImportOptions {
    ImportOptions::new(
        reference,
        changes.iter().map(|s| (*s).to_owned()).collect(),
        Some("imported in a test".into()),
        Some("linux/amd64"),
    )
    .unwrap()
}

fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in tar::Archive::new(archive).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

fn tmp_empty(store: &Store) {
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "files left in tmp/"
    );
}

#[test]
fn import_save_load_keeps_ids_manifests_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let fs = rootfs(&[
        ("bin/tool", b"#!/bin/sh\necho hi\n"),
        ("etc/motd", b"hello\n"),
    ]);
    let rec = import(
        &a,
        &fs[..],
        &opts(
            Some("example.com/team/app:v1"),
            &["CMD [\"/bin/tool\"]", "ENV X=1"],
        ),
    )
    .unwrap();
    let config: Value =
        serde_json::from_slice(&a.read_blob(&rec.id.parse().unwrap()).unwrap()).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Cmd"][0], "/bin/tool");
    assert_eq!(config["config"]["Env"][0], "X=1");
    assert_eq!(config["history"][0]["created_by"], "berth import");
    assert_eq!(config["history"][0]["comment"], "imported in a test");
    let diff = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&fs))
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        diff.as_str(),
        "diff ID of the uncompressed tar"
    );
    assert_eq!(
        rec.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let images = select(&a, &["example.com/team/app:v1".to_owned()]).unwrap();
    let mut archive = Vec::new();
    save(&a, &images, &mut archive).unwrap();
    let names: Vec<String> = entries(&archive).into_iter().map(|e| e.0).collect();
    for n in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
    }
    let manifest_json: Value = serde_json::from_slice(
        &entries(&archive)
            .into_iter()
            .find(|e| e.0 == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(manifest_json[0]["RepoTags"][0], "example.com/team/app:v1");
    assert_eq!(
        manifest_json[0]["Config"],
        format!("blobs/sha256/{}", &rec.id[7..]).as_str()
    );

    let b = Store::open(dir.path().join("b")).unwrap();
    let loaded = load(&b, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, rec.id);
    assert_eq!(
        loaded[0].tags,
        vec![Reference::parse("example.com/team/app:v1").unwrap()]
    );
    let back = b.image(&rec.id).unwrap();
    assert_eq!(
        back.manifest, rec.manifest,
        "manifest digest survives the round trip"
    );
    assert_eq!(back.layers, rec.layers);
    assert_eq!(b.tags().unwrap()["example.com/team/app:v1"], rec.id);
    tmp_empty(&a);
    tmp_empty(&b);

    // Saving again from the loaded store gives the same bytes.
    let mut again = Vec::new();
    save(
        &b,
        &select(&b, &["example.com/team/app:v1".to_owned()]).unwrap(),
        &mut again,
    )
    .unwrap();
    assert_eq!(again, archive);
}

#[test]
fn shared_layers_are_written_once_and_bare_names_save_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let fs = rootfs(&[("data", b"shared")]);
    let one = import(&a, &fs[..], &opts(Some("app:one"), &["CMD [\"one\"]"])).unwrap();
    let two = import(&a, &fs[..], &opts(Some("app:two"), &["CMD [\"two\"]"])).unwrap();
    let three = import(&a, &fs[..], &opts(None, &["CMD [\"three\"]"])).unwrap();
    assert_eq!(one.layers[0].diff_id, two.layers[0].diff_id);

    // `app` means every tag of the repository; an ID prefix means that image, untagged.
    let images = select(&a, &["app".to_owned(), three.id[7..19].to_owned()]).unwrap();
    assert_eq!(images.len(), 3);
    let mut archive = Vec::new();
    save(&a, &images, &mut archive).unwrap();
    // gzip output is deterministic, so the three images share one layer blob.
    assert_eq!(one.layers[0].digest, two.layers[0].digest);
    assert_eq!(one.layers[0].digest, three.layers[0].digest);
    let layer_blob = format!("blobs/sha256/{}", &one.layers[0].digest[7..]);
    let copies = entries(&archive)
        .iter()
        .filter(|e| e.0 == layer_blob)
        .count();
    assert_eq!(copies, 1, "a shared layer is written once");

    let b = Store::open(dir.path().join("b")).unwrap();
    let loaded = load(&b, &archive[..]).unwrap();
    let mut ids: Vec<&str> = loaded.iter().map(|l| l.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![one.id.as_str(), two.id.as_str(), three.id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let untagged = loaded.iter().find(|l| l.id == three.id).unwrap();
    assert!(untagged.tags.is_empty());
    let tags = b.tags().unwrap();
    assert_eq!(tags["docker.io/library/app:one"], one.id);
    assert_eq!(tags["docker.io/library/app:two"], two.id);
    assert_eq!(tags.len(), 2);
}

#[test]
fn compressed_inputs_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let fs = rootfs(&[("f", b"content")]);
    let diff = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&fs))
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&fs).unwrap();
    let rec = import(&a, &gz.finish().unwrap()[..], &opts(Some("gz"), &[])).unwrap();
    assert_eq!(
        rec.layers[0].diff_id, diff,
        "diff ID is of the decompressed tar"
    );
    let zst = zstd::encode_all(&fs[..], 3).unwrap();
    let rec2 = import(&a, &zst[..], &opts(Some("zst"), &[])).unwrap();
    assert_eq!(rec2.layers[0].diff_id, diff);

    // `save | gzip` and `save | zstd` load too.
    let mut archive = Vec::new();
    save(&a, &select(&a, &["gz".to_owned()]).unwrap(), &mut archive).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    assert_eq!(load(&b, &gz.finish().unwrap()[..]).unwrap()[0].id, rec.id);
    let c = Store::open(dir.path().join("c")).unwrap();
    let zst = zstd::encode_all(&archive[..], 3).unwrap();
    assert_eq!(load(&c, &zst[..]).unwrap()[0].id, rec.id);
}

#[test]
fn import_refuses_bad_references_and_changes_before_reading() {
    assert!(ImportOptions::new(Some("UPPER"), vec![], None, None).is_err());
    let e = ImportOptions::new(
        Some("busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        vec![],
        None,
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("cannot import digest reference"),
        "{e}"
    );
    let e = ImportOptions::new(None, vec!["RUN x".into()], None, None).unwrap_err();
    assert_eq!(e.to_string(), "run is not a valid change command");
    assert!(ImportOptions::new(None, vec![], None, Some("linux//x")).is_err());
}

#[test]
fn import_of_garbage_or_nothing_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    assert!(import(&a, &b""[..], &opts(Some("x"), &[])).is_err());
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(import(&a, &noise[..], &opts(Some("x"), &[])).is_err());
    assert!(a.images().unwrap().is_empty());
    assert!(a.tags().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    tmp_empty(&a);
}

/// An OCI layout tar whose index.json names an image index of two platforms.
fn multi_platform_layout() -> (Vec<u8>, String, String) {
    use sha2::Digest as _;
    let sha = |d: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(d)));
    let layer = rootfs(&[("f", b"x")]);
    let mut blobs: Vec<Vec<u8>> = vec![layer.clone()];
    let mut children = Vec::new();
    let mut configs = Vec::new();
    for arch in ["arm64", "amd64"] {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&layer), "size": layer.len()}],
        }))
        .unwrap();
        children.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest), "size": manifest.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        configs.push(sha(&config));
        blobs.push(config);
        blobs.push(manifest);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children,
    }))
    .unwrap();
    let top = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&index), "size": index.len(),
                       "annotations": {"io.containerd.image.name": "example.com/multi:v1", "org.opencontainers.image.ref.name": "v1"}}],
    }))
    .unwrap();
    blobs.push(index);
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for b in &blobs {
        add(&format!("blobs/sha256/{}", &sha(b)[7..]), b);
    }
    add("index.json", &top);
    (
        tar.into_inner().unwrap(),
        configs[1].clone(),
        configs[0].clone(),
    )
}

#[test]
fn nested_indexes_pick_the_platform() {
    use berth_client::archive::load::load_for;
    use berth_client::archive::{ArchiveError, Platform};

    let (data, amd64, arm64) = multi_platform_layout();
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let loaded = load_for(&a, &data[..], &Platform::parse("linux/amd64").unwrap()).unwrap();
    assert_eq!(loaded[0].id, amd64);
    assert_eq!(loaded[0].tags[0].to_string(), "example.com/multi:v1");
    let b = Store::open(dir.path().join("b")).unwrap();
    let loaded = load_for(&b, &data[..], &Platform::parse("linux/arm64").unwrap()).unwrap();
    assert_eq!(loaded[0].id, arm64);
    let c = Store::open(dir.path().join("c")).unwrap();
    let err = load_for(&c, &data[..], &Platform::parse("linux/s390x").unwrap()).unwrap_err();
    assert!(matches!(err, ArchiveError::Platform { .. }), "{err:?}");
    assert!(c.images().unwrap().is_empty());
    tmp_empty(&c);
}
