//! The build cache in a registry (`--cache-to type=registry,ref=…`, `--cache-from …`): the
//! format, and the entries a build imports. Moving the bytes is `commands::build`'s job (it owns
//! the registry client); this module only turns cache entries into documents and back.
//!
//! A cache is one OCI image manifest, pushed under the cache reference's tag:
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json
//!   config  application/vnd.berth.build.cache.config.v1+json    (the entries, below)
//!   layers  every layer any entry needs, once each, base layers included, in first-use
//!           order; each descriptor carries the layer's diff ID in the annotation
//!           `dev.berth.build.cache.diff-id`
//!
//! config    {"version": 1,
//!            "entries": [{"key": "<64 hex: the step's cache key, see super::cache>",
//!                         "config": {<the image config the step produced>},
//!                         "layers": [<indexes into manifest.layers, base first>]}, …]}
//! ```
//!
//! Keys are the local cache's keys ([`super::cache::KeyInputs::key`]): the parent's image ID,
//! the normalised instruction, the build arguments it uses and the content hash of copied files,
//! so they mean the same on every host that has the same base image. An entry is the whole
//! state after the step (config document with its history and `created` times, layers), so a
//! build served entirely from an imported cache gives the same image ID as the build that
//! exported it. Because the layers are ordinary manifest layers, the registry keeps them as
//! long as the cache tag exists (garbage collection sees them) and a pull-through mirror serves
//! them like any artifact's; the manifest is not an image (its config is not an image config),
//! so `pull` refuses it. Entries are sorted by key, so exporting the same build twice pushes the
//! same manifest. Like any image layer, a COPY step's layer holds the files it copied: a cache
//! is as confidential as the images built with it.
//!
//! `mode=min` (the default, as buildx) exports the steps of the target stage and the stages it
//! is built `FROM`; `mode=max` exports every step of every stage built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::state::ImageState;
use crate::archive::media;
use crate::store::LayerRecord;

/// Media type of the cache's config blob (the entries).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.berth.build.cache.config.v1+json";

/// Annotation of a layer descriptor holding the layer's diff ID.
pub const DIFF_ID_ANNOTATION: &str = "dev.berth.build.cache.diff-id";

/// Which steps `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// The target stage and its `FROM` ancestors.
    #[default]
    Min,
    /// Every stage built.
    Max,
}

/// A step the build went through (served from a cache or run), for `--cache-to`.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Index of the stage in the Dockerfile.
    pub stage: usize,
    /// The step's cache key.
    pub key: String,
    /// The state after the step.
    pub state: ImageState,
}

/// A cache ready to push: blobs first (layers from the store, then `config`), the manifest last.
#[derive(Debug, Clone)]
pub struct CacheExport {
    /// The layers to upload (each once).
    pub layers: Vec<LayerRecord>,
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    config: Value,
    layers: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct Config {
    version: u32,
    entries: Vec<Entry>,
}

/// Builds the cache documents for the `records` of the stages `keep` accepts.
#[must_use]
pub fn export(records: &[StepRecord], keep: impl Fn(usize) -> bool) -> CacheExport {
    let mut layers: Vec<LayerRecord> = Vec::new();
    let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
    for r in records.iter().filter(|r| keep(r.stage)) {
        let idx = r
            .state
            .layers
            .iter()
            .map(|l| match layers.iter().position(|x| x.digest == l.digest) {
                Some(i) => i,
                None => {
                    layers.push(l.clone());
                    layers.len() - 1
                }
            })
            .collect();
        entries.insert(
            &r.key,
            Entry {
                key: r.key.clone(),
                config: r.state.doc.clone(),
                layers: idx,
            },
        );
    }
    let config = serde_json::to_vec(&Config {
        version: 1,
        entries: entries.into_values().collect(),
    })
    .expect("serializable");
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest, "size": config.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.size,
            "annotations": {DIFF_ID_ANNOTATION: l.diff_id},
        })).collect::<Vec<_>>(),
    });
    CacheExport {
        layers,
        config,
        manifest: serde_json::to_vec(&manifest).expect("serializable"),
    }
}

/// Why a cache document was not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheFormatError {
    /// Not JSON, or not the shape above.
    #[error("not a berth build cache: {reason}")]
    Shape {
        /// What is wrong.
        reason: String,
    },
}

/// The config blob's digest and the layer descriptors of a cache manifest.
///
/// # Errors
/// The manifest is not a berth build cache.
pub fn parse_manifest(manifest: &[u8]) -> Result<(String, Vec<LayerRecord>), CacheFormatError> {
    let shape = |reason: &str| CacheFormatError::Shape {
        reason: reason.to_owned(),
    };
    let m: Value =
        serde_json::from_slice(manifest).map_err(|_| shape("the manifest is not JSON"))?;
    if m["config"]["mediaType"] != CONFIG_MEDIA_TYPE {
        return Err(shape(&format!(
            "its config media type is not `{CONFIG_MEDIA_TYPE}`"
        )));
    }
    let config = m["config"]["digest"]
        .as_str()
        .ok_or_else(|| shape("the manifest has no config digest"))?
        .to_owned();
    let mut layers = Vec::new();
    for l in m["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let field = |k: &str| l[k].as_str().map(str::to_owned);
        let (Some(digest), Some(media_type), Some(size), Some(diff_id)) = (
            field("digest"),
            field("mediaType"),
            l["size"].as_u64(),
            l["annotations"][DIFF_ID_ANNOTATION].as_str(),
        ) else {
            return Err(shape(
                "a layer descriptor lacks its digest, size or diff ID",
            ));
        };
        layers.push(LayerRecord {
            digest,
            media_type,
            size,
            diff_id: diff_id.to_owned(),
        });
    }
    Ok((config, layers))
}

/// The entries of a cache config blob: key → state after the step. Entries whose layers do not
/// match their config's `rootfs.diff_ids` are dropped.
///
/// # Errors
/// The blob is not a version 1 cache config.
pub fn parse_config(
    config: &[u8],
    layers: &[LayerRecord],
) -> Result<BTreeMap<String, ImageState>, CacheFormatError> {
    let c: Config = serde_json::from_slice(config).map_err(|e| CacheFormatError::Shape {
        reason: format!("its config does not parse: {e}"),
    })?;
    if c.version != 1 {
        return Err(CacheFormatError::Shape {
            reason: format!("cache format version {} is not supported (1 is)", c.version),
        });
    }
    let mut out = BTreeMap::new();
    for e in c.entries {
        let Some(ls) = e
            .layers
            .iter()
            .map(|i| layers.get(*i).cloned())
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let diff_ids =
            super::state::strings(e.config.get("rootfs").and_then(|r| r.get("diff_ids")));
        let consistent =
            diff_ids.len() == ls.len() && diff_ids.iter().zip(&ls).all(|(d, l)| *d == l.diff_id);
        if consistent && e.key.len() == 64 && e.key.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.insert(
                e.key,
                ImageState {
                    doc: e.config,
                    layers: ls,
                },
            );
        }
    }
    Ok(out)
}

/// Fetches one layer (blob and unpacked tree) into the store.
pub type FetchLayer<'a> = dyn Fn(&LayerRecord) -> anyhow::Result<()> + Send + Sync + 'a;

/// Entries imported with `--cache-from`, consulted after the local cache.
#[derive(Default)]
pub struct Imported<'a> {
    /// Key → state after the step.
    pub entries: BTreeMap<String, ImageState>,
    /// Downloads a layer an entry needs and the store lacks.
    pub fetch: Option<Box<FetchLayer<'a>>>,
}

impl Imported<'_> {
    /// Adds the entries of a cache config blob whose manifest lists `layers`; returns how many.
    /// Entries of an earlier cache win.
    ///
    /// # Errors
    /// The blob is not a version 1 cache config.
    pub fn add(
        &mut self,
        config: &[u8],
        layers: &[LayerRecord],
    ) -> Result<usize, CacheFormatError> {
        let entries = parse_config(config, layers)?;
        let n = entries.len();
        for (k, v) in entries {
            self.entries.entry(k).or_insert(v);
        }
        Ok(n)
    }
}

impl std::fmt::Debug for Imported<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imported")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(layers: &[(&str, &str)]) -> ImageState {
        let mut s = ImageState::scratch();
        for (digest, diff) in layers {
            s.record(
                "1970-01-01T00:00:00Z",
                "x",
                Some((
                    LayerRecord {
                        digest: (*digest).into(),
                        media_type: media::OCI_LAYER_GZIP.into(),
                        size: 3,
                        diff_id: (*diff).into(),
                    },
                    (*diff).into(),
                )),
            );
        }
        s
    }

    #[test]
    fn export_then_import_gives_the_same_states() {
        let a = state(&[("sha256:a", "sha256:da")]);
        let b = state(&[("sha256:a", "sha256:da"), ("sha256:b", "sha256:db")]);
        let (ka, kb) = ("a".repeat(64), "b".repeat(64));
        let records = vec![
            StepRecord {
                stage: 0,
                key: kb.clone(),
                state: b.clone(),
            },
            StepRecord {
                stage: 1,
                key: ka.clone(),
                state: a.clone(),
            },
        ];
        let all = export(&records, |_| true);
        assert_eq!(all.layers.len(), 2, "each layer once");
        let (config, layers) = parse_manifest(&all.manifest).unwrap();
        assert_eq!(
            config,
            format!("sha256:{}", hex::encode(Sha256::digest(&all.config)))
        );
        let entries = parse_config(&all.config, &layers).unwrap();
        assert_eq!(entries.get(&ka), Some(&a));
        assert_eq!(entries.get(&kb), Some(&b));
        let min = export(&records, |s| s == 1);
        let (_, layers) = parse_manifest(&min.manifest).unwrap();
        assert_eq!(parse_config(&min.config, &layers).unwrap().len(), 1);
        assert_eq!(layers.len(), 1);
    }

    #[test]
    fn foreign_or_inconsistent_documents_are_refused() {
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:x","size":1},"layers":[]}"#;
        assert!(parse_manifest(image).is_err());
        let layers = vec![LayerRecord {
            digest: "sha256:a".into(),
            media_type: media::OCI_LAYER_GZIP.into(),
            size: 1,
            diff_id: "sha256:other".into(),
        }];
        let s = state(&[("sha256:a", "sha256:da")]);
        let cfg = json!({"version": 1, "entries": [
            {"key": "c".repeat(64), "config": s.doc, "layers": [0]},
            {"key": "d".repeat(64), "config": s.doc, "layers": [7]},
        ]});
        let entries = parse_config(&serde_json::to_vec(&cfg).unwrap(), &layers).unwrap();
        assert!(
            entries.is_empty(),
            "wrong diff ID and bad index are dropped"
        );
        let v2 = br#"{"version":2,"entries":[]}"#;
        assert!(parse_config(v2, &[]).is_err());
    }
}
