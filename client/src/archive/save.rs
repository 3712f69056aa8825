//! `save`: one tar that is both a docker-archive and an OCI image layout, like Docker ≥ 25 writes.
//!
//! ```text
//! blobs/sha256/<config>      the image config (its digest is the image ID)
//! blobs/sha256/<layer>…      layer blobs exactly as stored (usually gzip)
//! blobs/sha256/<manifest>    the image's manifest as stored (OCI or Docker schema 2)
//! index.json                 one descriptor per tag: io.containerd.image.name (full reference)
//!                            and org.opencontainers.image.ref.name (the tag)
//! manifest.json              docker-archive: Config, RepoTags, Layers (paths into blobs/)
//! oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! repositories               legacy docker-archive tag map
//! ```
//!
//! Every file is stored once and referenced from both views. Layers are streamed from the store;
//! only manifests and metadata are held in memory. Docker's, podman's and skopeo's loaders accept
//! compressed layers in a docker-archive (they decompress by content), so no layer is rewritten.
//! Every entry has mtime 0 and owner 0:0, so saving the same images twice gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use oci_spec::image::Digest;
use serde_json::{json, Value};
use sha2::Digest as _;

use super::{media, ArchiveError, Result, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store, StoreError};

/// One image to save and the tags to record for it.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// The image.
    pub record: ImageRecord,
    /// Its tags to write (none for an image named by ID).
    pub tags: Vec<Reference>,
}

/// Resolves `save` arguments as Docker does: `repo:tag` saves that tag, a bare `repo` saves
/// every tag of the repository, an ID (or ID prefix) saves the image untagged. Images named
/// twice are saved once with the union of their tags.
///
/// # Errors
/// `No such image` ([`StoreError::NotFound`]).
pub fn select(store: &Store, names: &[String]) -> Result<Vec<SaveImage>> {
    let tags = store.tags()?;
    let mut out: Vec<SaveImage> = Vec::new();
    let add = |out: &mut Vec<SaveImage>, record: ImageRecord, tag: Option<Reference>| {
        let entry = match out.iter().position(|s| s.record.id == record.id) {
            Some(i) => &mut out[i],
            None => {
                out.push(SaveImage {
                    record,
                    tags: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        if let Some(t) = tag {
            if !entry.tags.contains(&t) {
                entry.tags.push(t);
            }
        }
    };
    for name in names {
        let explicit =
            name.contains('@') || name.rsplit('/').next().is_some_and(|l| l.contains(':'));
        let mut found = false;
        if let Ok(r) = Reference::parse(name) {
            if let Some(digest) = &r.digest {
                // `repo@sha256:…`: the image pulled or pushed by that digest.
                let wanted = format!("{}@{digest}", r.name());
                if let Some(rec) = store
                    .images()?
                    .into_iter()
                    .find(|i| i.repo_digests.contains(&wanted) || i.manifest == digest.as_ref())
                {
                    add(&mut out, rec, None);
                    found = true;
                }
            } else if explicit {
                if let Some(id) = tags.get(&r.to_string()) {
                    add(&mut out, store.image(id)?, Some(r));
                    found = true;
                }
            } else {
                for (full, id) in &tags {
                    match Reference::parse(full) {
                        Ok(t) if t.name() == r.name() => {
                            add(&mut out, store.image(id)?, Some(t));
                            found = true;
                        }
                        _ => {}
                    }
                }
            }
        }
        if !found {
            add(&mut out, store.resolve(name, None)?, None);
        }
    }
    Ok(out)
}

/// What goes into the tar for one image.
struct Plan {
    config: Digest,
    manifest: (Digest, String, Vec<u8>),
    layers: Vec<Digest>,
}

fn parse_digest(s: &str, what: &'static str) -> Result<Digest> {
    s.parse().map_err(|_| ArchiveError::Invalid {
        path: s.to_owned(),
        what,
        reason: "not a digest".into(),
    })
}

fn plan(store: &Store, rec: &ImageRecord) -> Result<Plan> {
    let config = parse_digest(&rec.id, "image ID")?;
    let layers = rec
        .layers
        .iter()
        .map(|l| parse_digest(&l.digest, "layer digest"))
        .collect::<Result<Vec<_>>>()?;
    for d in std::iter::once(&config).chain(&layers) {
        if !store.has_blob(d) {
            return Err(StoreError::NotFound(format!(
                "blob {d} of image {} is not in the store",
                rec.id
            ))
            .into());
        }
    }
    let stored = parse_digest(&rec.manifest, "manifest digest")
        .ok()
        .and_then(|d| store.read_blob(&d).ok().map(|b| (d, b)));
    let manifest = match stored {
        Some((d, bytes)) if manifest_matches(&bytes, &config, &layers) => {
            (d, rec.manifest_media_type.clone(), bytes)
        }
        // No usable manifest (or one describing other blobs): write an OCI one.
        _ => {
            let size = |d: &Digest| {
                std::fs::metadata(store.blob_path(d))
                    .map(|m| m.len())
                    .map_err(|source| ArchiveError::Io {
                        path: store.blob_path(d),
                        source,
                    })
            };
            let doc = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": config.to_string(), "size": size(&config)?},
                "layers": rec.layers.iter().zip(&layers).map(|(l, d)| Ok(json!({
                    "mediaType": l.media_type, "digest": d.to_string(), "size": size(d)?,
                }))).collect::<Result<Vec<_>>>()?,
            });
            let bytes = serde_json::to_vec(&doc).expect("serializable");
            let d = super::sha256_digest(sha2::Sha256::digest(&bytes).as_slice());
            (d, media::OCI_MANIFEST.to_owned(), bytes)
        }
    };
    Ok(Plan {
        config,
        manifest,
        layers,
    })
}

fn manifest_matches(bytes: &[u8], config: &Digest, layers: &[Digest]) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let listed: Vec<&str> = doc["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["digest"].as_str()).collect())
        .unwrap_or_default();
    doc["config"]["digest"].as_str() == Some(config.as_ref())
        && listed.len() == layers.len()
        && listed.iter().zip(layers).all(|(a, b)| *a == b.as_ref())
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_ref(), d.digest())
}

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn write_err(source: std::io::Error) -> ArchiveError {
    ArchiveError::Write { source }
}

/// Writes the archive for `images` to `out`, streaming layers from the store.
///
/// # Errors
/// Missing blobs, I/O on the store or the output.
pub fn save(store: &Store, images: &[SaveImage], out: impl Write) -> Result<()> {
    let plans = images
        .iter()
        .map(|i| plan(store, &i.record))
        .collect::<Result<Vec<_>>>()?;
    let mut tar = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(&mut header(0, true), dir, std::io::empty())
            .map_err(write_err)?;
    }
    let mut written = BTreeSet::new();
    for p in &plans {
        for d in std::iter::once(&p.config).chain(&p.layers) {
            if written.insert(d.to_string()) {
                let path = store.blob_path(d);
                let io_err = |source| ArchiveError::Io {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(&path).map_err(io_err)?;
                let len = file.metadata().map_err(io_err)?.len();
                tar.append_data(&mut header(len, false), blob_name(d), file)
                    .map_err(write_err)?;
            }
        }
        let (d, _, bytes) = &p.manifest;
        if written.insert(d.to_string()) {
            tar.append_data(
                &mut header(bytes.len() as u64, false),
                blob_name(d),
                &bytes[..],
            )
            .map_err(write_err)?;
        }
    }

    let mut index = Vec::new();
    let mut docker = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, p) in images.iter().zip(&plans) {
        let (d, media_type, bytes) = &p.manifest;
        let desc = json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()});
        if image.tags.is_empty() {
            index.push(desc.clone());
        }
        for t in &image.tags {
            let mut desc = desc.clone();
            let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
            desc["annotations"] = json!({
                ANNOTATION_IMAGE_NAME: t.to_string(),
                ANNOTATION_REF_NAME: tag,
            });
            index.push(desc);
            // The legacy map points at the top layer; loaders that read manifest.json ignore it.
            if let Some(top) = image.record.layers.last() {
                let familiar = t.familiar();
                let repo = familiar
                    .rsplit_once(':')
                    .map_or(familiar.as_str(), |(r, _)| r);
                repositories
                    .entry(repo.to_owned())
                    .or_default()
                    .insert(tag, top.diff_id.trim_start_matches("sha256:").to_owned());
            }
        }
        let repo_tags: Vec<String> = image.tags.iter().map(Reference::familiar).collect();
        docker.push(json!({
            "Config": blob_name(&p.config),
            "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
            "Layers": p.layers.iter().map(blob_name).collect::<Vec<_>>(),
        }));
    }
    let files = [
        (
            "index.json",
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index}),
        ),
        ("manifest.json", Value::Array(docker)),
        ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
        ("repositories", json!(repositories)),
    ];
    for (name, doc) in files {
        let bytes = serde_json::to_vec(&doc).expect("serializable");
        tar.append_data(&mut header(bytes.len() as u64, false), name, &bytes[..])
            .map_err(write_err)?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(write_err)
}
