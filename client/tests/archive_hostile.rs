//! `load` treats every archive as hostile: traversal, absolute names, writes through links,
//! digest mismatches, truncation and garbage are refused with nothing registered, nothing
//! written outside the store, and nothing left in the store's `tmp/`.

use std::path::Path;

use berth_client::archive::load::load;
use berth_client::archive::ArchiveError;
use berth_client::store::{Store, StoreError};
use rstest::rstest;
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An entry: name, kind, data (link target for links). Names are written raw, bypassing the
/// tar crate's own path checks, as an attacker's tool would.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
}

fn raw_name(h: &mut tar::Header, name: &str) {
    let bytes = name.as_bytes();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name = [0; 100];
    gnu.name[..bytes.len()].copy_from_slice(bytes);
}

fn archive(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        let data: &[u8] = match e {
            E::File(name, data) => {
                raw_name(&mut h, name);
                h.set_size(data.len() as u64);
                data
            }
            E::Symlink(name, target) | E::Hardlink(name, target) => {
                raw_name(&mut h, name);
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_link_name(target).unwrap_or_else(|_| {
                    let gnu = h.as_gnu_mut().unwrap();
                    gnu.linkname = [0; 100];
                    gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
                });
                h.set_size(0);
                &[]
            }
            E::Fifo(name) => {
                raw_name(&mut h, name);
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_size(0);
                &[]
            }
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A valid one-layer docker-archive's parts: (layer tar, config bytes).
fn image_parts() -> (Vec<u8>, Vec<u8>) {
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "hello", &b"world"[..]).unwrap();
    let layer = t.into_inner().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
    }))
    .unwrap();
    (layer, config)
}

fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!([{"Config": config, "RepoTags": ["evil:latest"], "Layers": layers}]))
        .unwrap()
}

/// Loads `data` into a fresh store under `dir`, expecting failure; checks nothing was kept.
fn refused(dir: &Path, data: &[u8]) -> ArchiveError {
    let store = Store::open(dir.join("store")).unwrap();
    let err = load(&store, data).expect_err("the archive must be refused");
    assert!(
        store.images().unwrap().is_empty(),
        "an image was registered"
    );
    assert!(store.tags().unwrap().is_empty(), "a tag was written");
    for sub in ["tmp", "blobs/sha256", "layers/sha256"] {
        let left: Vec<_> = std::fs::read_dir(dir.join("store").join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{sub}/ keeps {left:?} after: {err}");
    }
    let outside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "store")
        .collect();
    assert!(outside.is_empty(), "written outside the store: {outside:?}");
    err
}

#[test]
fn a_valid_archive_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, config) = image_parts();
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("l/layer.tar", &layer),
        E::File("manifest.json", &manifest("cfg.json", &["l/layer.tar"])),
    ]);
    let store = Store::open(dir.path()).unwrap();
    let loaded = load(&store, &data[..]).unwrap();
    assert_eq!(loaded[0].id, sha(&config));
    assert_eq!(loaded[0].tags[0].familiar(), "evil:latest");
    // Only the image's own blobs are kept (config, layer, the generated manifest).
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn legacy_layer_symlinks_inside_the_archive_are_followed() {
    // Docker < 25 and containers/image write `<id>/layer.tar` as links to one copy.
    let dir = tempfile::tempdir().unwrap();
    let (layer, config) = image_parts();
    let data = archive(&[
        E::File("abc.tar", &layer),
        E::Symlink("id1/layer.tar", "../abc.tar"),
        E::Hardlink("id2/layer.tar", "abc.tar"),
        E::File("cfg.json", &config),
        E::File("manifest.json", &manifest("cfg.json", &["id1/layer.tar"])),
    ]);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(load(&store, &data[..]).unwrap()[0].id, sha(&config));
}

#[rstest]
#[case::parent(vec![E::File("../x", b"boom")], "`..` in path")]
#[case::nested_parent(vec![E::File("a/../../x", b"boom")], "`..` in path")]
#[case::absolute(vec![E::File("/tmp/berth-evil", b"boom")], "absolute path")]
#[case::symlink_then_write(
    vec![E::Symlink("evil", "sub"), E::File("evil/passwd", b"boom")],
    "path goes through the link `evil`"
)]
#[case::symlink_out(vec![E::Symlink("escape", "../../etc")], "leaves the archive")]
#[case::symlink_absolute(vec![E::Symlink("escape", "/etc")], "symlink to absolute path")]
#[case::hardlink_out(vec![E::Hardlink("h", "../../etc/passwd")], "leaves the archive")]
#[case::duplicate(vec![E::File("a", b"1"), E::File("a", b"2")], "duplicate entry")]
#[case::fifo(vec![E::Fifo("pipe")], "unsupported entry type")]
fn hostile_entries_are_refused(#[case] entries: Vec<E<'static>>, #[case] reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (layer, config) = image_parts();
    let mut all = entries;
    all.push(E::File("cfg.json", &config));
    all.push(E::File("layer.tar", &layer));
    let m = manifest("cfg.json", &["layer.tar"]);
    all.push(E::File("manifest.json", &m));
    let err = refused(dir.path(), &archive(&all));
    assert!(
        matches!(&err, ArchiveError::UnsafeEntry { reason: r, .. } if r.contains(reason)),
        "{err:?}"
    );
    assert!(!Path::new("/tmp/berth-evil").exists());
}

#[test]
fn manifest_paths_are_hostile_too() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, config) = image_parts();
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("layer.tar", &layer),
        E::File(
            "manifest.json",
            &manifest("cfg.json", &["../../../etc/passwd"]),
        ),
    ]);
    assert!(matches!(
        refused(dir.path(), &data),
        ArchiveError::UnsafeEntry { .. }
    ));
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = image_parts();
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("manifest.json", &manifest("cfg.json", &["nope/layer.tar"])),
    ]);
    let err = refused(dir.path(), &data);
    assert_eq!(
        err.to_string(),
        "`nope/layer.tar` (referenced by `manifest.json`) is missing from the archive"
    );
}

#[test]
fn a_layer_that_is_not_its_diff_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = image_parts();
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_cksum();
    t.append_data(&mut h, "other", &b"bytes"[..]).unwrap();
    let other = t.into_inner().unwrap();
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("layer.tar", &other),
        E::File("manifest.json", &manifest("cfg.json", &["layer.tar"])),
    ]);
    let err = refused(dir.path(), &data);
    assert!(
        matches!(err, ArchiveError::Store(StoreError::DigestMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn a_hostile_layer_is_refused_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let layer = archive(&[E::File("../../outside", b"boom")]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
    }))
    .unwrap();
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("layer.tar", &layer),
        E::File("manifest.json", &manifest("cfg.json", &["layer.tar"])),
    ]);
    let err = refused(dir.path(), &data);
    assert!(
        matches!(err, ArchiveError::Store(StoreError::UnsafeEntry { .. })),
        "{err:?}"
    );
}

/// An OCI layout tar; `tamper` may replace a blob's content after its digest was taken.
fn oci(tamper: bool) -> Vec<u8> {
    let (layer, config) = image_parts();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&m), "size": m.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "example.com/oci:v1"}}],
    }))
    .unwrap();
    let mut bad_config = config.clone();
    if tamper {
        bad_config[2] ^= 1;
    }
    let names: Vec<String> = [&config, &layer, &m]
        .iter()
        .map(|d| format!("blobs/sha256/{}", &sha(d)[7..]))
        .collect();
    archive(&[
        E::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        E::File(&names[0], &bad_config),
        E::File(&names[1], &layer),
        E::File(&names[2], &m),
        E::File("index.json", &index),
    ])
}

#[test]
fn oci_layouts_load_and_tampered_blobs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("ok")).unwrap();
    let loaded = load(&store, &oci(false)[..]).unwrap();
    assert_eq!(loaded[0].tags[0].to_string(), "example.com/oci:v1");

    let err = refused(&dir.path().join("bad"), &{
        std::fs::create_dir_all(dir.path().join("bad")).unwrap();
        oci(true)
    });
    assert!(
        matches!(err, ArchiveError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[rstest]
#[case::empty(Vec::new())]
#[case::garbage((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect())]
#[case::text(b"this is not a tar archive at all\n".repeat(100))]
#[case::tar_without_images(archive(&[E::File("readme", b"hi")]))]
#[case::bad_manifest_json(archive(&[E::File("manifest.json", b"{not json")]))]
fn garbage_is_refused(#[case] data: Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    refused(dir.path(), &data);
}

#[test]
fn a_truncated_archive_is_refused_wherever_it_is_cut() {
    let (layer, config) = image_parts();
    let big = vec![7u8; 300_000];
    let data = archive(&[
        E::File("cfg.json", &config),
        E::File("big.bin", &big),
        E::File("layer.tar", &layer),
        E::File("manifest.json", &manifest("cfg.json", &["layer.tar"])),
    ]);
    for cut in [100, 700, 1024, 100_000, 300_000, data.len() - 2048] {
        let dir = tempfile::tempdir().unwrap();
        refused(dir.path(), &data[..cut]);
    }
}
