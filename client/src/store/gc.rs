//! Removing images and the content only they used.

use std::collections::HashSet;

use super::{ImageRecord, Result, Store, StoreError};

/// What removing an image freed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Tags removed (full references).
    pub untagged: Vec<String>,
    /// Bytes of blobs and unpacked layers freed.
    pub reclaimed: u64,
}

impl Store {
    /// Deletes an image: its tags, its record, and its blobs and unpacked layers that no other
    /// image uses. Takes the store lock.
    ///
    /// # Errors
    /// `NotFound`, I/O failures.
    pub fn delete_image(&self, id: &str) -> Result<Removed> {
        let _lock = self.lock()?;
        let image = self.image(id)?;
        let mut tags = self.tags()?;
        let untagged: Vec<String> = tags
            .iter()
            .filter(|(_, v)| **v == image.id)
            .map(|(k, _)| k.clone())
            .collect();
        for t in &untagged {
            tags.remove(t);
        }
        self.save_tags(&tags)?;
        self.remove_image(&image.id)?;
        let reclaimed = self.collect(&image)?;
        Ok(Removed {
            untagged,
            reclaimed,
        })
    }

    /// Removes `gone`'s content that remaining images don't reference; returns bytes freed.
    fn collect(&self, gone: &ImageRecord) -> Result<u64> {
        let mut keep_blobs = HashSet::new();
        let mut keep_layers = HashSet::new();
        for other in self.images()? {
            keep_blobs.insert(other.manifest.clone());
            keep_blobs.insert(other.id.clone());
            for l in &other.layers {
                keep_blobs.insert(l.digest.clone());
                keep_layers.insert(l.diff_id.clone());
            }
        }
        let mut freed = 0;
        let blobs = std::iter::once(&gone.manifest)
            .chain(std::iter::once(&gone.id))
            .chain(gone.layers.iter().map(|l| &l.digest));
        for b in blobs {
            if keep_blobs.contains(b) {
                continue;
            }
            let Ok(d) = b.parse() else { continue };
            let p = self.blob_path(&d);
            if let Ok(m) = std::fs::metadata(&p) {
                std::fs::remove_file(&p).map_err(|e| StoreError::Io {
                    path: p.clone(),
                    source: e,
                })?;
                freed += m.len();
            }
        }
        for l in &gone.layers {
            if keep_layers.contains(&l.diff_id) {
                continue;
            }
            let Ok(d) = l.diff_id.parse() else { continue };
            let size = self.layer_size(&d).unwrap_or(0);
            let p = self.layer_path(&d);
            if p.exists() {
                // Rename first so a crash never leaves a half-deleted layer under its real name.
                let trash = self
                    .root
                    .join("tmp")
                    .join(format!("gc-{}", uuid::Uuid::new_v4()));
                std::fs::rename(&p, &trash).map_err(|e| StoreError::Io {
                    path: p.clone(),
                    source: e,
                })?;
                std::fs::remove_dir_all(&trash).map_err(|e| StoreError::Io {
                    path: trash.clone(),
                    source: e,
                })?;
                freed += size;
            }
        }
        Ok(freed)
    }
}
