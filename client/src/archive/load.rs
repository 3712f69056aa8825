//! `load`: reads a docker-archive (Docker's, podman's and skopeo's flavours, `<id>/layer.tar`
//! ones included) or an OCI image layout tar, possibly gzip- or zstd-compressed, from a stream.
//!
//! The tar is read once, front to back. Tar paths are never used as file system paths: each
//! regular file is either kept in memory (small files and JSON documents, bounded) or streamed
//! into the store's blob ingestion, and its cleaned name becomes a key. Entries with `..`,
//! absolute names, names under a link, duplicate names, links pointing outside the archive, and
//! device or FIFO entries are refused. Blobs named `blobs/<alg>/<hex>` must hash to `<hex>` and
//! match their descriptor's size; layers are checked against the config's diff IDs when the store
//! unpacks them. Every layer of every image is unpacked before the first image is registered, so
//! a bad archive registers nothing; blobs it added that no image references are removed again.

use std::io::{BufReader, Read};

use oci_spec::image::Digest;
use serde::Deserialize;
use serde_json::{json, Value};

use super::contents::{read_entries, Contents};
use super::{
    decompressed, media, put_blob, ArchiveError, NewBlobs, Platform, Result, ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
};
use crate::reference::Reference;
use crate::store::{LayerRecord, NewImage, Store};

/// An image registered by [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Image ID (config digest).
    pub id: String,
    /// Tags it was given.
    pub tags: Vec<Reference>,
}

/// What to register for one image.
struct Candidate {
    config: String,
    manifest: Option<(String, String)>,
    layers: Vec<(String, String)>,
    diff_ids: Vec<String>,
    tags: Vec<Reference>,
}

/// Reads an archive from `input` and registers its images in `store`, for the host platform.
///
/// # Errors
/// Hostile or malformed archives, digest mismatches, I/O. Nothing is registered then.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<LoadedImage>> {
    load_for(store, input, &Platform::host())
}

/// [`load`] picking `platform` from multi-platform indexes.
///
/// # Errors
/// As [`load`].
pub fn load_for(store: &Store, input: impl Read, platform: &Platform) -> Result<Vec<LoadedImage>> {
    let mut new = NewBlobs::new(store);
    let reader = decompressed(BufReader::with_capacity(1 << 20, input))?;
    let contents = read_entries(store, &mut new, reader)?;
    let candidates = if contents.resolve("manifest.json").is_some() {
        docker_images(&contents)?
    } else if contents.resolve("index.json").is_some() {
        oci_images(&contents, platform)?
    } else {
        return Err(ArchiveError::NotAnArchive {
            reason: if contents.files.is_empty() {
                "the input holds no files (empty, or not a tar)".into()
            } else {
                "neither `manifest.json` (docker-archive) nor `index.json` (OCI layout) found"
                    .into()
            },
        });
    };
    if candidates.is_empty() {
        return Err(ArchiveError::NotAnArchive {
            reason: "it lists no images".into(),
        });
    }

    let mut images = Vec::new();
    for c in &candidates {
        images.push((stage(&contents, &mut new, c)?, c.tags.clone()));
    }
    // Unpack (and verify against the diff IDs) everything before registering anything.
    for (image, _) in &images {
        for l in &image.layers {
            store.unpack_layer(
                &store.blob_path(&l.digest.parse().expect("stored digest")),
                &l.media_type,
                &l.diff_id.parse().map_err(|_| ArchiveError::Invalid {
                    path: image.config.clone(),
                    what: "image config",
                    reason: format!("diff ID `{}` is not a digest", l.diff_id),
                })?,
            )?;
        }
    }
    let mut out = Vec::new();
    for (image, tags) in images {
        let rec = store.add_image(&image)?;
        out.push(LoadedImage { id: rec.id, tags });
    }
    drop(new);
    Ok(out)
}

/// Puts an image's blobs into the store (a manifest is written when the archive has none).
fn stage(contents: &Contents<'_>, new: &mut NewBlobs<'_>, c: &Candidate) -> Result<NewImage> {
    let config = contents.materialize(&c.config, new)?;
    let mut layers = Vec::new();
    for ((path, media_type), diff_id) in c.layers.iter().zip(&c.diff_ids) {
        let f = &contents.files[path];
        let digest = contents.materialize(path, new)?;
        layers.push(LayerRecord {
            digest: digest.to_string(),
            media_type: media_type.clone(),
            size: f.size,
            diff_id: diff_id.clone(),
        });
    }
    let (manifest, manifest_media_type) = match &c.manifest {
        Some((path, media_type)) => (contents.materialize(path, new)?, media_type.clone()),
        None => {
            let doc = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {
                    "mediaType": media::OCI_CONFIG,
                    "digest": config.to_string(),
                    "size": contents.files[&c.config].size,
                },
                "layers": layers.iter().map(|l| json!({
                    "mediaType": l.media_type, "digest": l.digest, "size": l.size,
                })).collect::<Vec<_>>(),
            });
            let bytes = serde_json::to_vec(&doc).expect("serializable");
            (
                put_blob(contents.store, new, &bytes)?,
                media::OCI_MANIFEST.to_owned(),
            )
        }
    };
    Ok(NewImage {
        manifest: manifest.to_string(),
        manifest_media_type,
        config: config.to_string(),
        layers,
        repo_digest: None,
        tags: c.tags.iter().map(ToString::to_string).collect(),
    })
}

/// Layer media type from the blob's first bytes (docker-archives have no descriptors).
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        media::OCI_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media::OCI_LAYER_ZSTD
    } else {
        media::OCI_LAYER
    }
}

/// `rootfs.diff_ids` of a config, checked against the number of layers.
fn diff_ids(config: &Value, path: &str, layers: usize) -> Result<Vec<String>> {
    let invalid = |reason: String| ArchiveError::Invalid {
        path: path.to_owned(),
        what: "image config",
        reason,
    };
    let ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| invalid("no `rootfs.diff_ids`".into()))?
        .iter()
        .map(|d| {
            d.as_str()
                .filter(|s| s.parse::<Digest>().is_ok())
                .map(ToOwned::to_owned)
                .ok_or_else(|| invalid(format!("diff ID {d} is not a digest")))
        })
        .collect::<Result<_>>()?;
    if ids.len() != layers {
        return Err(invalid(format!(
            "{} diff IDs for {layers} layers",
            ids.len()
        )));
    }
    Ok(ids)
}

fn parse_tag(input: &str) -> Result<Reference> {
    Reference::parse(input).map_err(|source| ArchiveError::Reference {
        input: input.to_owned(),
        source,
    })
}

/// One entry of a docker-archive `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_images(contents: &Contents<'_>) -> Result<Vec<Candidate>> {
    let (name, _) = contents.get("manifest.json", "the archive")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&contents.bytes(&name)?).map_err(|source| ArchiveError::Json {
            path: name.clone(),
            what: "docker-archive manifest",
            source,
        })?;
    // Docker ≥ 25 and `berth save` also write an OCI index: reuse its manifests when they
    // describe the same blobs, so the manifest digest survives the round trip.
    let oci = if contents.resolve("index.json").is_some() {
        oci_images(contents, &Platform::host()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out: Vec<Candidate> = Vec::new();
    for e in entries {
        let (config, _) = contents.get(&e.config, "manifest.json")?;
        let doc = contents.json(&config, "image config")?;
        let diff_ids = diff_ids(&doc, &config, e.layers.len())?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let (path, file) = contents.get(l, "manifest.json")?;
            layers.push((path, layer_media_type(&file.head).to_owned()));
        }
        let tags = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>>>()?;
        let digest_of = |p: &String| contents.files[p].digest.clone();
        let manifest = oci
            .iter()
            .find(|c| {
                digest_of(&c.config) == digest_of(&config)
                    && c.layers.len() == layers.len()
                    && c.layers
                        .iter()
                        .zip(&layers)
                        .all(|(a, b)| digest_of(&a.0) == digest_of(&b.0))
            })
            .and_then(|c| c.manifest.clone());
        let layers = match oci
            .iter()
            .find(|c| c.manifest == manifest && manifest.is_some())
        {
            Some(c) => c.layers.clone(),
            None => layers,
        };
        merge(
            &mut out,
            Candidate {
                config,
                manifest,
                layers,
                diff_ids,
                tags,
            },
            contents,
        );
    }
    Ok(out)
}

/// Adds `c`, or its tags to an equal image already listed.
fn merge(out: &mut Vec<Candidate>, c: Candidate, contents: &Contents<'_>) {
    let digest_of = |p: &String| contents.files[p].digest.clone();
    if let Some(existing) = out.iter_mut().find(|o| {
        digest_of(&o.config) == digest_of(&c.config)
            && o.manifest.as_ref().map(|m| digest_of(&m.0))
                == c.manifest.as_ref().map(|m| digest_of(&m.0))
    }) {
        for t in c.tags {
            if !existing.tags.contains(&t) {
                existing.tags.push(t);
            }
        }
    } else {
        out.push(c);
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST
}

fn is_manifest(media_type: &str) -> bool {
    media_type == media::OCI_MANIFEST || media_type == media::DOCKER_MANIFEST
}

fn oci_images(contents: &Contents<'_>, platform: &Platform) -> Result<Vec<Candidate>> {
    let (name, _) = contents.get("index.json", "the archive")?;
    let index = contents.json(&name, "OCI image index")?;
    let descs = index["manifests"]
        .as_array()
        .ok_or_else(|| ArchiveError::Invalid {
            path: name.clone(),
            what: "OCI image index",
            reason: "no `manifests` list".into(),
        })?;
    let mut out = Vec::new();
    for desc in descs {
        let Some((manifest, media_type, doc)) = pick(contents, desc, &name, platform, 0)? else {
            continue;
        };
        let config_desc = &doc["config"];
        let (config, _) = contents.descriptor(config_desc, &manifest)?;
        let layer_descs = doc["layers"].as_array().cloned().unwrap_or_default();
        let mut layers = Vec::new();
        for l in &layer_descs {
            let (path, file) = contents.descriptor(l, &manifest)?;
            let mt = l["mediaType"].as_str().map_or_else(
                || layer_media_type(&file.head).to_owned(),
                ToOwned::to_owned,
            );
            layers.push((path, mt));
        }
        let diff_ids = diff_ids(
            &contents.json(&config, "image config")?,
            &config,
            layers.len(),
        )?;
        let annotations = &desc["annotations"];
        let tag = match (
            annotations[ANNOTATION_IMAGE_NAME].as_str(),
            annotations[ANNOTATION_REF_NAME].as_str(),
        ) {
            (Some(full), _) => Some(parse_tag(full)?),
            // A bare tag (`latest`) names no repository: such images load untagged.
            (None, Some(r)) if r.contains(['/', ':']) => Some(parse_tag(r)?),
            _ => None,
        };
        merge(
            &mut out,
            Candidate {
                config,
                manifest: Some((manifest, media_type)),
                layers,
                diff_ids,
                tags: tag.into_iter().collect(),
            },
            contents,
        );
    }
    Ok(out)
}

/// Follows a descriptor to an image manifest, choosing `platform` in indexes. `None` for
/// artifacts that are not images.
fn pick(
    contents: &Contents<'_>,
    desc: &Value,
    referenced_by: &str,
    platform: &Platform,
    depth: usize,
) -> Result<Option<(String, String, Value)>> {
    if depth > 4 {
        return Err(ArchiveError::Invalid {
            path: referenced_by.to_owned(),
            what: "OCI image index",
            reason: "indexes nested too deep".into(),
        });
    }
    let (path, _) = contents.descriptor(desc, referenced_by)?;
    let doc = contents.json(&path, "OCI manifest or index")?;
    let media_type = desc["mediaType"]
        .as_str()
        .or_else(|| doc["mediaType"].as_str())
        .unwrap_or(if doc.get("manifests").is_some() {
            media::OCI_INDEX
        } else {
            media::OCI_MANIFEST
        })
        .to_owned();
    if is_manifest(&media_type) {
        return Ok(Some((path, media_type, doc)));
    }
    if !is_index(&media_type) {
        return Ok(None);
    }
    let children = doc["manifests"].as_array().cloned().unwrap_or_default();
    let fits = |c: &Value| {
        let p = &c["platform"];
        p.is_object()
            && platform.matches(
                p["os"].as_str().unwrap_or_default(),
                p["architecture"].as_str().unwrap_or_default(),
                p["variant"].as_str(),
            )
    };
    let chosen = children.iter().find(|c| fits(c)).or_else(|| {
        // An index whose only image has no platform (single-image layouts).
        let images: Vec<&Value> = children
            .iter()
            .filter(|c| c["mediaType"].as_str().is_none_or(is_manifest))
            .collect();
        (images.len() == 1 && !images[0]["platform"].is_object()).then(|| images[0])
    });
    match chosen {
        Some(c) => pick(contents, c, &path, platform, depth + 1),
        None => Err(ArchiveError::Platform {
            path,
            platform: platform.to_string(),
        }),
    }
}
