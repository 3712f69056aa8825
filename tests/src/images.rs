//! OCI images built locally (no network): layers, busybox images, layouts and their blobs.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::*;

/// Blob written into an OCI layout.
#[derive(Debug, Clone)]
pub struct Blob {
    /// `sha256:…`
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) built locally.
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
    manifests: Vec<Value>,
}

impl Layout {
    /// Creates an empty layout in `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir: dir.to_owned(),
            manifests: Vec::new(),
        }
    }

    /// Stores a blob; returns its descriptor fields.
    pub fn add_blob(&self, data: &[u8]) -> Blob {
        let digest = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&digest[7..]), data).unwrap();
        Blob {
            digest,
            size: data.len() as u64,
        }
    }

    /// Adds a single-platform image from layer tarballs (already gzipped) and records it in
    /// `index.json` under `tag` (if any). Returns the manifest's blob.
    pub fn add_image(
        &mut self,
        layers: &[Vec<u8>],
        diff_ids: &[String],
        arch: &str,
        tag: Option<&str>,
    ) -> Blob {
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": diff_ids.iter().map(|_| json!({"created_by": "berth test"})).collect::<Vec<_>>(),
        });
        let config = self.add_blob(serde_json::to_vec(&config).unwrap().as_slice());
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|l| {
                let b = self.add_blob(l);
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b.digest, "size": b.size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
            "layers": layer_descs,
        });
        let m = self.add_blob(serde_json::to_vec(&manifest).unwrap().as_slice());
        let mut desc = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.digest, "size": m.size,
            "platform": {"architecture": arch, "os": "linux"},
        });
        if let Some(t) = tag {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": t});
        }
        self.manifests.push(desc);
        self.write_index();
        m
    }

    /// Replaces the entries added so far by one image index under `tag`; returns its blob.
    pub fn wrap_in_index(&mut self, tag: &str) -> Blob {
        let children: Vec<Value> = self
            .manifests
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("annotations");
                d
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        });
        let b = self.add_blob(serde_json::to_vec(&index).unwrap().as_slice());
        self.manifests = vec![json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": b.digest, "size": b.size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })];
        self.write_index();
        b
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "manifests": self.manifests});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A tar layer holding `files` (path, content, mode); returns (gzipped bytes, diff id).
#[must_use]
pub fn layer(files: &[(&str, &[u8], u32)]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// A layer with `/bin/busybox` (Debian's busybox-static) and `/bin/sh` as a copy of it.
#[must_use]
pub fn busybox_layer() -> (Vec<u8>, String) {
    let path = Path::new("/bin/busybox");
    assert!(
        path.exists(),
        "/bin/busybox is missing; install it with `apt-get install busybox-static`"
    );
    let data = std::fs::read(path).unwrap();
    layer(&[("bin/busybox", &data, 0o755), ("bin/sh", &data, 0o755)])
}

/// Pseudo-random, incompressible bytes (xorshift), so layer sizes stay what is asked for.
#[must_use]
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Builds the standard test image in `dir`: busybox plus `extra_layers` small layers, tagged.
#[must_use]
pub fn busybox_image(dir: &Path, extra_layers: usize, tag: &str) -> (Layout, Blob) {
    busybox_image_with(dir, extra_layers, tag, None)
}

/// Busybox plus `extra_layers` small layers, plus a layer holding `marker` when given.
fn busybox_image_with(
    dir: &Path,
    extra_layers: usize,
    tag: &str,
    marker: Option<&str>,
) -> (Layout, Blob) {
    let mut layout = Layout::new(dir);
    let (mut layers, mut diffs) = (Vec::new(), Vec::new());
    let (l, d) = busybox_layer();
    layers.push(l);
    diffs.push(d);
    for i in 0..extra_layers {
        let content = format!("layer {i}\n");
        let (l, d) = layer(&[(&format!("etc/layer-{i}"), content.as_bytes(), 0o644)]);
        layers.push(l);
        diffs.push(d);
    }
    if let Some(id) = marker {
        let (l, d) = layer(&[("etc/berth-test-id", id.as_bytes(), 0o644)]);
        layers.push(l);
        diffs.push(d);
    }
    let m = layout.add_image(&layers, &diffs, "amd64", Some(tag));
    (layout, m)
}

/// A value unique to this process and call, to make images and tags that no other test or run
/// shares (the Docker Engine and the containers blob-info cache are machine-wide).
#[must_use]
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{t}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builds a busybox image with `extra_layers` small layers plus one layer holding a nonce, so
/// its image ID is unique on this machine; tagged `tag` in a new layout at `dir`.
#[must_use]
pub fn unique_busybox_image(dir: &Path, extra_layers: usize, tag: &str) -> (Layout, Blob) {
    busybox_image_with(dir, extra_layers, tag, Some(&nonce()))
}

/// Reads a blob of an OCI layout.
#[must_use]
pub fn layout_blob(layout_dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(layout_dir.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", layout_dir.display()))
}

/// The digests of every blob in an OCI layout, each checked against its content.
#[must_use]
pub fn layout_blobs(layout_dir: &Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(layout_dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let digest = format!("sha256:{}", e.file_name().into_string().unwrap());
        assert_eq!(
            sha256(&std::fs::read(e.path()).unwrap()),
            digest,
            "corrupt blob in {}",
            layout_dir.display()
        );
        out.insert(digest);
    }
    out
}
