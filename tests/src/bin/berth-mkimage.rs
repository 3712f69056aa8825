//! Writes a synthetic OCI image layout for benchmarks: `layers` gzip layers, each one tar entry
//! of `layer_kib` KiB of incompressible bytes (gzip "stored" blocks, so building is fast and
//! the transferred size is what was asked for).
//!
//! Usage: `berth-mkimage DIR TAG LAYERS LAYER_KIB`

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("usage: berth-mkimage DIR TAG LAYERS LAYER_KIB");
        }
        std::process::exit(2);
    }
    let dir = Path::new(&args[1]);
    let tag = &args[2];
    let layers: u64 = args[3].parse().expect("LAYERS is a number");
    let kib: usize = args[4].parse().expect("LAYER_KIB is a number");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |data: &[u8]| {
        let d = berth_tests::sha256(data);
        std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for i in 0..layers {
        let data = berth_tests::noise(kib * 1024, 0x9e37_79b9 + i);
        let mut tar = tar::Builder::new(Vec::with_capacity(data.len() + 4096));
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, format!("data/layer-{i}.bin"), data.as_slice())
            .unwrap();
        let raw = tar.into_inner().unwrap();
        diffs.push(berth_tests::sha256(&raw));
        let mut gz = GzEncoder::new(Vec::with_capacity(raw.len() + 4096), Compression::none());
        gz.write_all(&raw).unwrap();
        let (d, size) = put(&gz.finish().unwrap());
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size}));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diffs},
    });
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
    });
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}
