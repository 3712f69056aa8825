//! Image records and tags.
//!
//! An image's ID is its config digest, as in Docker. Its record lists the manifest it came
//! from, its layers (compressed blob + diff ID) and the repository digests it is known by. Tags
//! live in one `repositories.json` map from full reference to image ID; both are rewritten
//! atomically and only under [`super::Store::lock`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{io, Result, Store, StoreError};

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (usually gzip).
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: String,
}

/// What the store knows about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Config digest: the image ID.
    pub id: String,
    /// Digest of the manifest it was pulled or built with.
    pub manifest: String,
    /// That manifest's media type.
    pub manifest_media_type: String,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// `registry/repo@sha256:…` references this image was pulled by or pushed to.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The config's `created` time (RFC 3339), if any.
    #[serde(default)]
    pub created: Option<String>,
    /// Sum of the unpacked layer sizes, in bytes.
    pub size: u64,
}

impl Store {
    fn image_path(&self, id: &str) -> PathBuf {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        self.root.join("images/sha256").join(format!("{hex}.json"))
    }

    /// Writes (or replaces) an image record. Call with the store lock held.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save_image(&self, rec: &ImageRecord) -> Result<()> {
        let data = serde_json::to_vec_pretty(rec).expect("serializable");
        Self::write_atomic(&self.image_path(&rec.id), &data)
    }

    /// Reads an image record by full ID.
    ///
    /// # Errors
    /// `NotFound`, `Corrupt`.
    pub fn image(&self, id: &str) -> Result<ImageRecord> {
        let p = self.image_path(id);
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!("No such image: {id}")))
            }
            Err(e) => return Err(StoreError::Io { path: p, source: e }),
        };
        serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Every image record, in no particular order.
    ///
    /// # Errors
    /// I/O failures or corrupt records.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images/sha256");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".json") {
                if !name.starts_with('.') {
                    out.push(self.image(&format!("sha256:{hex}"))?);
                }
            }
        }
        Ok(out)
    }

    /// Removes an image record (its blobs and layers stay until pruned). Call with the lock held.
    ///
    /// # Errors
    /// `NotFound`, I/O failures.
    pub fn remove_image(&self, id: &str) -> Result<()> {
        let p = self.image_path(id);
        std::fs::remove_file(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound(format!("No such image: {id}"))
            } else {
                StoreError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    /// All tags: full reference (`docker.io/library/busybox:latest`) to image ID.
    ///
    /// # Errors
    /// I/O failures or a corrupt file.
    pub fn tags(&self) -> Result<BTreeMap<String, String>> {
        let p = self.root.join("repositories.json");
        match std::fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| StoreError::Corrupt {
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Replaces the tag map. Call with the lock held.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save_tags(&self, tags: &BTreeMap<String, String>) -> Result<()> {
        let data = serde_json::to_vec_pretty(tags).expect("serializable");
        Self::write_atomic(&self.root.join("repositories.json"), &data)
    }

    /// Resolves an image by full ID, unique ID prefix (`sha256:` optional), or tag reference
    /// (already normalised by the caller).
    ///
    /// # Errors
    /// `NotFound` when nothing or more than one image matches.
    pub fn resolve(&self, reference_or_id: &str, normalised: Option<&str>) -> Result<ImageRecord> {
        if let Some(full) = normalised {
            if let Some(id) = self.tags()?.get(full) {
                return self.image(id);
            }
        }
        let hex = reference_or_id
            .strip_prefix("sha256:")
            .unwrap_or(reference_or_id);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<ImageRecord> = self
                .images()?
                .into_iter()
                .filter(|i| i.id[7..].starts_with(hex))
                .collect();
            if matches.len() == 1 {
                return Ok(matches.into_iter().next().expect("one"));
            }
        }
        Err(StoreError::NotFound(format!(
            "No such image: {reference_or_id}"
        )))
    }
}

/// An image whose blobs (manifest, config, layers) are already in the store, to be registered.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Manifest digest (its bytes are a stored blob).
    pub manifest: String,
    /// Manifest media type.
    pub manifest_media_type: String,
    /// Config digest (a stored blob): the image ID.
    pub config: String,
    /// Layers, base first; blobs stored, diff IDs from the config.
    pub layers: Vec<LayerRecord>,
    /// `registry/repo@digest` to remember, if any.
    pub repo_digest: Option<String>,
    /// Full references to point at the image (`docker.io/library/busybox:latest`).
    pub tags: Vec<String>,
}

impl Store {
    /// Unpacks the layers (each once), writes the image record, and moves the tags to it, all
    /// under the store lock. Layers unpack before the record exists, so a crash leaves at most
    /// unreferenced layers, never a record pointing at a missing one.
    ///
    /// # Errors
    /// Unpack failures (hostile tar, diff ID mismatch), corrupt config, I/O.
    pub fn add_image(&self, new: &NewImage) -> Result<ImageRecord> {
        let config_digest: oci_spec::image::Digest = new.config.parse().map_err(|e| {
            StoreError::NotFound(format!("invalid config digest {}: {e}", new.config))
        })?;
        let config_bytes = self.read_blob(&config_digest)?;
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| StoreError::Corrupt {
                path: self.blob_path(&config_digest),
                reason: format!("image config: {e}"),
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != new.layers.len() {
            return Err(StoreError::Corrupt {
                path: self.blob_path(&config_digest),
                reason: format!(
                    "config lists {} layers, manifest {}",
                    diff_ids.len(),
                    new.layers.len()
                ),
            });
        }
        let mut size = 0;
        for layer in &new.layers {
            let blob: oci_spec::image::Digest = layer.digest.parse().map_err(|e| {
                StoreError::NotFound(format!("invalid layer digest {}: {e}", layer.digest))
            })?;
            let diff: oci_spec::image::Digest = layer.diff_id.parse().map_err(|e| {
                StoreError::NotFound(format!("invalid diff ID {}: {e}", layer.diff_id))
            })?;
            size += self.unpack_layer(&self.blob_path(&blob), &layer.media_type, &diff)?;
        }
        let _lock = self.lock()?;
        let mut rec = match self.image(&new.config) {
            Ok(existing) => existing,
            Err(StoreError::NotFound(_)) => ImageRecord {
                id: new.config.clone(),
                manifest: new.manifest.clone(),
                manifest_media_type: new.manifest_media_type.clone(),
                layers: new.layers.clone(),
                repo_digests: Vec::new(),
                created: config.created().clone(),
                size,
            },
            Err(e) => return Err(e),
        };
        if let Some(rd) = &new.repo_digest {
            // One digest per repository, as Docker keeps it.
            let repo = rd.split('@').next().unwrap_or(rd);
            rec.repo_digests
                .retain(|d| d.split('@').next() != Some(repo));
            rec.repo_digests.push(rd.clone());
            rec.repo_digests.sort();
        }
        self.save_image(&rec)?;
        if !new.tags.is_empty() {
            let mut tags = self.tags()?;
            for t in &new.tags {
                tags.insert(t.clone(), rec.id.clone());
            }
            self.save_tags(&tags)?;
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            manifest: "sha256:m".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            layers: vec![],
            repo_digests: vec![],
            created: None,
            size: 0,
        }
    }

    #[test]
    fn records_tags_and_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = format!("sha256:{}", "ab".repeat(32));
        let b = format!("sha256:{}", "cd".repeat(32));
        s.save_image(&rec(&a)).unwrap();
        s.save_image(&rec(&b)).unwrap();
        assert_eq!(s.images().unwrap().len(), 2);
        let mut tags = BTreeMap::new();
        tags.insert("docker.io/library/x:latest".to_owned(), a.clone());
        s.save_tags(&tags).unwrap();
        assert_eq!(
            s.resolve("x", Some("docker.io/library/x:latest"))
                .unwrap()
                .id,
            a
        );
        assert_eq!(s.resolve("cdcd", None).unwrap().id, b);
        assert!(s.resolve("ef", None).is_err());
        s.remove_image(&a).unwrap();
        assert!(matches!(s.image(&a), Err(StoreError::NotFound(_))));
    }
}
