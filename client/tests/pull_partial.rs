//! A partial download left in `tmp/` must not poison later pulls. An aborted pull (another
//! layer refused as hostile, Ctrl-C after the last byte) can leave `tmp/partial-<hex>` at the
//! blob's full size, or with wrong bytes; resuming it asks for a range at or past the blob's end,
//! which registries refuse with 416. The client then downloads the blob whole and the store
//! throws the partial file away. Against the fake registry, through the `berth` binary.

mod remote_support;

use std::path::Path;
use std::process::Command;

use berth_client::remote::Client;
use remote_support::{options, sha256, AuthMode, Fake};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An uncompressed layer with one file of `len` bytes.
fn layer_tar(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len)
        .map(|i| u8::try_from(i * 31 % 251).unwrap())
        .collect();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "data.bin", data.as_slice()).unwrap();
    b.into_inner().unwrap()
}

/// Puts `a/b:v1` (one layer) on the fake; returns the layer.
fn image(fake: &Fake) -> Vec<u8> {
    let layer = layer_tar(200_000);
    let layer_digest = fake.put_blob(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "config": {"Cmd": ["sh"]},
    })
    .to_string();
    let config_digest = fake.put_blob(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string();
    fake.put_manifest("a/b", "v1", MANIFEST, manifest.as_bytes());
    layer
}

fn partial(root: &Path, blob: &[u8]) -> std::path::PathBuf {
    let hex = sha256(blob);
    root.join("tmp")
        .join(format!("partial-{}", hex.trim_start_matches("sha256:")))
}

/// `berth --data-root ROOT pull REF` on a blocking thread; (exit code, stderr).
async fn pull(root: &Path, reference: String) -> (i32, String) {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--data-root")
            .arg(&root)
            .args(["pull", "-q", &reference])
            .env("HOME", &root)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Every blob in the store hashes to its name; no partial file is left.
fn assert_store_verifies(root: &Path, layer: &[u8]) {
    let blobs = root.join("blobs/sha256");
    let mut n = 0;
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(
            sha256(&bytes),
            format!("sha256:{}", e.file_name().to_string_lossy()),
            "{}",
            e.path().display()
        );
        n += 1;
    }
    assert_eq!(n, 3, "manifest, config and layer");
    assert_eq!(
        std::fs::read(blobs.join(&sha256(layer)[7..])).unwrap(),
        layer
    );
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

async fn pull_with_planted_partial(plant: impl Fn(&[u8]) -> Vec<u8>) {
    let fake = Fake::start(AuthMode::None).await;
    let layer = image(&fake);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::write(partial(root.path(), &layer), plant(&layer)).unwrap();
    let (code, stderr) = pull(root.path(), format!("{}/a/b:v1", fake.host())).await;
    assert_eq!(code, 0, "{stderr}");
    assert_store_verifies(root.path(), &layer);
    // The resume was tried (a range) and then the blob came whole (no range).
    let gets: Vec<_> = fake
        .log()
        .into_iter()
        .filter(|r| r.path_and_query.ends_with(&sha256(&layer)))
        .map(|r| {
            r.headers
                .get("range")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(gets.last(), Some(&None), "{gets:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_size_partial_does_not_poison_the_pull() {
    pull_with_planted_partial(<[u8]>::to_vec).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_size_corrupt_partial_is_discarded() {
    pull_with_planted_partial(|layer| vec![0xAA; layer.len()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_longer_than_the_blob_is_discarded() {
    pull_with_planted_partial(|layer| [layer, b"trailing junk"].concat()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_range_downloads_the_blob_whole() {
    let fake = Fake::start(AuthMode::None).await;
    let data: Vec<u8> = (0..10_000u32)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    let d = fake.put_blob(&data);
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    for offset in [data.len() as u64, data.len() as u64 + 100] {
        let mut s = client
            .blob("a/b", &d.parse().unwrap(), offset)
            .await
            .unwrap();
        assert_eq!(s.start, 0, "offset {offset}");
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, data);
    }
    // A range inside the blob still resumes.
    let s = client.blob("a/b", &d.parse().unwrap(), 100).await.unwrap();
    assert_eq!(s.start, 100);
}
