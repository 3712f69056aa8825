//! `import`: a filesystem tarball (plain, gzip or zstd) becomes a one-layer image. The layer is
//! stored gzip-compressed; the diff ID of the uncompressed tar is computed while compressing, in
//! one streaming pass. The config gets the platform, `--change` instructions and a history entry
//! (`created_by` = `berth import`, `comment` = the message); the manifest is OCI.

use std::io::{BufReader, Read, Write};

use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::change::{self, ContainerConfig};
use super::{
    decompressed, media, put_blob, sha256_digest, ArchiveError, HashingWriter, NewBlobs, Platform,
    Result,
};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, NewImage, Store, StoreError};

/// What `import` builds.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub reference: Option<Reference>,
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `--message`: the history entry's comment.
    pub message: Option<String>,
    /// The image's platform.
    pub platform: Platform,
}

impl ImportOptions {
    /// Checks the reference and the changes before any byte is read.
    ///
    /// # Errors
    /// Invalid reference (or one with a digest), invalid platform, invalid `--change`.
    pub fn new(
        reference: Option<&str>,
        changes: Vec<String>,
        message: Option<String>,
        platform: Option<&str>,
    ) -> Result<Self> {
        let reference = reference
            .map(|r| {
                let parsed = Reference::parse(r).map_err(|source| ArchiveError::Reference {
                    input: r.to_owned(),
                    source,
                })?;
                if parsed.digest.is_some() {
                    return Err(ArchiveError::Invalid {
                        path: r.to_owned(),
                        what: "reference",
                        reason: "cannot import digest reference".into(),
                    });
                }
                Ok(parsed)
            })
            .transpose()?;
        let platform = platform.map_or_else(|| Ok(Platform::host()), Platform::parse)?;
        change::apply(&mut ContainerConfig::default(), &changes)?;
        Ok(Self {
            reference,
            changes,
            message,
            platform,
        })
    }
}

/// Imports the tarball read from `input` into `store`; returns the new image's record.
///
/// # Errors
/// Unreadable or empty input, a layer the store refuses (hostile entries, not a tar), I/O. On
/// error nothing is registered and the blobs written are removed again.
pub fn import(store: &Store, input: impl Read, opts: &ImportOptions) -> Result<ImageRecord> {
    let mut new = NewBlobs::new(store);
    let (layer, diff_id) = write_layer(store, &mut new, input)?;
    // Unpack (and so validate) the layer before writing any metadata.
    let blob = layer.digest.parse().expect("stored digest");
    store
        .unpack_layer(
            &store.blob_path(&blob),
            &layer.media_type,
            &diff_id.parse().expect("computed digest"),
        )
        .map_err(|e| match e {
            // The tar reader's errors surface as I/O errors on the blob.
            StoreError::Io { .. } => ArchiveError::NotATar { source: e },
            e => e.into(),
        })?;

    let mut config = ContainerConfig::default();
    change::apply(&mut config, &opts.changes)?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut history = json!({"created": created, "created_by": "berth import"});
    let mut doc = json!({
        "architecture": opts.platform.architecture,
        "os": opts.platform.os,
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    if let Some(v) = &opts.platform.variant {
        doc["variant"] = json!(v);
    }
    if let Some(m) = &opts.message {
        history["comment"] = json!(m);
        doc["comment"] = json!(m);
    }
    doc["history"] = json!([history]);
    let config_bytes = serde_json::to_vec(&doc).expect("serializable");
    let config_digest = put_blob(store, &mut new, &config_bytes)?;

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": layer.media_type,
            "digest": layer.digest,
            "size": layer.size,
        }],
    });
    let manifest_digest = put_blob(
        store,
        &mut new,
        &serde_json::to_vec(&manifest).expect("serializable"),
    )?;

    let rec = store.add_image(&NewImage {
        manifest: manifest_digest.to_string(),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config: config_digest.to_string(),
        layers: vec![layer],
        repo_digest: None,
        tags: opts.reference.iter().map(ToString::to_string).collect(),
    })?;
    Ok(rec)
}

/// Streams `input` (decompressed) through a sha256 (the diff ID) into a gzip encoder writing a
/// new blob; returns the layer and its diff ID.
pub(crate) fn write_layer(
    store: &Store,
    new: &mut NewBlobs<'_>,
    input: impl Read,
) -> Result<(LayerRecord, String)> {
    let mut reader = decompressed(BufReader::with_capacity(1 << 20, input))?;
    let writer = store.ingest(None)?;
    let mut blob = HashingWriter::new(writer);
    let mut diff = Sha256::new();
    let mut total = 0u64;
    let copied = (|| {
        let mut gz = GzEncoder::new(&mut blob, flate2::Compression::default());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ArchiveError::Read { source }),
            };
            diff.update(&buf[..n]);
            total += n as u64;
            gz.write_all(&buf[..n])
                .map_err(|source| ArchiveError::Write { source })?;
        }
        gz.finish()
            .map_err(|source| ArchiveError::Write { source })?;
        Ok(())
    })();
    if let Err(e) = copied {
        blob.inner.discard();
        return Err(e);
    }
    if total == 0 {
        blob.inner.discard();
        return Err(ArchiveError::NotAnArchive {
            reason: "the tarball is empty".into(),
        });
    }
    let digest = blob.digest();
    let size = blob.written;
    let existed = store.has_blob(&digest);
    let stored = blob.inner.commit()?;
    new.note(&stored, existed);
    let diff_id = sha256_digest(diff.finalize().as_slice()).to_string();
    Ok((
        LayerRecord {
            digest: stored.to_string(),
            media_type: media::OCI_LAYER_GZIP.into(),
            size,
            diff_id: diff_id.clone(),
        },
        diff_id,
    ))
}

/// Downloads an `http(s)` URL into a temporary file under the store's `tmp/`.
///
/// # Errors
/// HTTP or I/O failures.
pub async fn download(store: &Store, url: &str) -> Result<super::TempPath> {
    use futures_util::StreamExt as _;

    let http_err = |source| ArchiveError::Download {
        url: url.to_owned(),
        source,
    };
    let tmp = super::TempPath::at(
        store
            .root()
            .join("tmp")
            .join(format!("import-{}", uuid::Uuid::new_v4().simple())),
    );
    let resp = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(http_err)?;
    let io_err = |source| ArchiveError::Io {
        path: tmp.path().to_owned(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(tmp.path()).map_err(io_err)?);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.map_err(http_err)?).map_err(io_err)?;
    }
    file.flush().map_err(io_err)?;
    Ok(tmp)
}
